"""End to end through the ``gml`` CLI with the shipped configs (digits, 1 epoch), only gml-nas loaded:
train a supernet, search under a FLOPs budget, export, fine-tune the export through ``init_from``."""

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "nas"
QUIET = ["runtime.progress=false", "runtime.log_interval=1000", "runtime.max_keep_ckpts=1", "train.epochs=1"]


def gml(*args: str) -> int:
    from gml_core._internal import plugins
    from gml_core._internal.cli import main

    plugins.set_host(None)
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(autouse=True)
def only_nas(monkeypatch):
    monkeypatch.setenv("GML_LOAD_PLUGINS", "nas")


@pytest.fixture(scope="module")
def bignas_run(tmp_path_factory):
    import os

    old = os.environ.get("GML_LOAD_PLUGINS")
    os.environ["GML_LOAD_PLUGINS"] = "nas"
    wd = tmp_path_factory.mktemp("bignas")
    code = gml("run", str(CONFIGS / "bignas_digits.toml"), "--work-dir", str(wd), *QUIET)
    if old is None:
        os.environ.pop("GML_LOAD_PLUGINS", None)
    else:
        os.environ["GML_LOAD_PLUGINS"] = old
    assert code == 0
    return wd


def test_bignas_run_reports_subnets_and_saves_the_supernet(bignas_run):
    summary = json.loads((bignas_run / "summary.json").read_text())
    assert (bignas_run / "supernet.pth").is_file()
    assert "max subnet (BN calibrated)" in summary["extra"] and "min subnet (BN calibrated)" in summary["extra"]
    assert summary["metrics"]["accuracy/top1"] > 20.0


def test_search_export_and_init_from(bignas_run, tmp_path, capsys):
    cfg = str(CONFIGS / "bignas_digits.toml")
    assert gml("nas", "search", cfg, "--work-dir", str(bignas_run), "--flops", "1M", "--population-size", "4",
               "--generations", "2", "--top-k", "2") == 0
    results = bignas_run / "search" / "best_subnets.toml"
    import tomllib

    best = tomllib.loads(results.read_text())["subnets"]
    assert len(best) == 2
    assert gml("nas", "export", cfg, "--work-dir", str(bignas_run), "--subnet", str(results),
               "--out", str(tmp_path / "export")) == 0
    exported = json.loads((tmp_path / "export" / "subnet.json").read_text())
    assert exported["flops"] == best[0]["flops"] and exported["params"] == best[0]["params"]
    # three splits: the search scored on the held-out search split, the export reports the untouched test split
    assert "top-1 % on the search split (held out of training)" in results.read_text()
    assert exported["split"] == "test split"
    front = json.loads((bignas_run / "search" / "front.json").read_text())["front"]
    assert front and (bignas_run / "search" / "front.md").is_file()
    assert [p["flops"] for p in front] == sorted(p["flops"] for p in front)
    assert all(a["score"] < b["score"] for a, b in zip(front, front[1:]))
    assert all(0.85e6 <= s["flops"] <= 1e6 for s in best)  # min_ratio 0.85: candidates spend the budget
    assert abs(exported["torchscript_top1"] - exported["accuracy/top1"]) < 1e-6
    out = capsys.readouterr().out
    assert "subnets on the search split (held out of training); best first" in out
    assert "standalone top-1" in out and "on the test split" in out

    finetune = tmp_path / "finetune.toml"
    finetune.write_text(f"""
[data]
type = "digits"
resize = 12
[train]
epochs = 1
optimizer = "AdamW"
lr = 0.001
[algorithm]
type = "Supervised"
model = {{ type = "gml.SmallCNN", init_from = "{tmp_path / 'export' / 'subnet.pth'}" }}
""")
    assert gml("run", str(finetune), "--work-dir", str(tmp_path / "ft"), "runtime.progress=false") == 0
    summary = json.loads((tmp_path / "ft" / "summary.json").read_text())
    assert summary["params"] == exported["params"] and summary["flops"] == exported["flops"]


def test_spos_run_and_export(tmp_path):
    cfg = str(CONFIGS / "spos_digits.toml")
    assert gml("run", cfg, "--work-dir", str(tmp_path), *QUIET) == 0
    # SPOS's keys name ops: "max" / "min" are the last / first listed ops, and the summary says so
    extra = json.loads((tmp_path / "summary.json").read_text())["extra"]
    assert {"max subnet (last listed choices) (BN calibrated)",
            "min subnet (first listed choices) (BN calibrated)"} <= set(extra)
    assert gml("nas", "export", cfg, "--work-dir", str(tmp_path), "--subnet", "min", "--no-eval") == 0
    assert (tmp_path / "export" / "subnet.torchscript.pt").is_file()


@pytest.mark.parametrize("override, expected", [
    ('algorithm.model.backbone.search_space.MB_kernel_sizes=[3]',
     "algorithm.model.backbone.search_space.MB_kernel_sizes: unknown search-space key (did you mean 'MB_kernel_size'?)"),
    ('algorithm.model.resize_process.resolution.upper=7',
     "algorithm.model.resize_process.resolution.upper: upper (7) must be at least lower (8); both bounds are inclusive"),
    ('algorithm.model.backbone.search_space.MB_out_channels[0].default=10',
     "algorithm.model.backbone.search_space.MB_out_channels[0].default: default 10 is not one of 8, 12"),
    ('algorithm.strategy="sandwitch4"', "sandwichN"),
    ('algorithm.mutator.type="StateslessMutator"', None),
])
def test_bad_configs_fail_with_the_key_path(tmp_path, capsys, override, expected):
    if expected is None:  # the legacy mutator spelling is accepted
        assert gml("config", "check", str(CONFIGS / "bignas_digits.toml"), "--cfg-options", override) == 0
        return
    code = gml("run", str(CONFIGS / "bignas_digits.toml"), "--work-dir", str(tmp_path), *QUIET, override)
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err, err


def test_subnet_file_mismatch_is_reported(bignas_run, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[arch.backbone]\nMB_out_channels = [8, 8, 16, 24, 40]\n")
    code = gml("nas", "export", str(CONFIGS / "bignas_digits.toml"), "--work-dir", str(bignas_run),
               "--subnet", str(bad), "--no-eval", "--out", str(tmp_path / "x"))
    err = capsys.readouterr().err
    assert code == 2
    assert "arch.backbone.MB_out_channels[4]: 40 is not one of 48, 64" in err
    assert "arch.resize_process: missing from the subnet" in err


def test_runtime_seed_makes_a_run_reproducible(tmp_path, monkeypatch):
    """Issue 13: the same ``runtime.seed`` samples the same paths, so two SPOS runs end identically."""
    from gml_nas.mutator import StatelessMutator

    sampled: list[dict] = []
    draw = StatelessMutator.random_subnet
    monkeypatch.setattr(StatelessMutator, "random_subnet", lambda self: sampled.append(draw(self)) or sampled[-1])
    cfg = str(CONFIGS / "spos_digits.toml")
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        sampled.clear()
        assert gml("run", cfg, "--work-dir", str(tmp_path / name), *QUIET, f"runtime.seed={seed}") == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        runs[name] = (list(sampled), summary["metrics"])
    assert len(runs["a"][0]) >= 18  # one path per step (1,149 training images after the search split, batch 64)
    assert runs["a"] == runs["b"]
    assert runs["a"][0] != runs["c"][0]
