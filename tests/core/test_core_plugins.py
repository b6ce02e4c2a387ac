"""Plugin host: discovery, broken plugins, duplicates, unknown hooks, env controls, CLI listing."""

import json
import re
import sys
import types
from pathlib import Path

import pytest

from gml_core._internal import hookspecs
from gml_core._internal.errors import GmlUserError
from gml_core._internal.plugins import PluginHost

REPO = Path(__file__).resolve().parents[2]


def module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(mod, key, value)
    return mod


def registrar(kind: str, *names: str):
    @hookspecs.hookimpl
    def impl(register):
        for n in names:
            register(n, f"builtins:{n}")

    impl.__name__ = f"gml_register_{kind}"
    return impl


def test_builtins_are_a_plugin_with_provenance():
    host = PluginHost(autoload=False)
    entry = host.registry("algorithm").entry("Supervised")
    assert (entry.plugin, entry.distribution) == ("gml-core builtin", "gml-core")
    assert "SmallCNN" in host.provides("gml-core builtin")["model"]


def test_duplicate_name_fails_only_its_lookup_naming_both_distributions():
    a = module("pa", gml_register_loss=registrar("loss", "DupLoss", "OnlyA"))
    b = module("pb", gml_register_loss=registrar("loss", "DupLoss"))
    host = PluginHost(autoload=False, extra_plugins={"a": a, "b": b})
    assert host.registry("loss").entry("OnlyA").plugin == "a"  # other names keep working
    with pytest.raises(GmlUserError, match=r"loss name 'DupLoss' is registered by \(local\) \(plugin a\) "
                                           r"and by \(local\) \(plugin b\)"):
        host.registry("loss").get("DupLoss")
    assert host.clashes("a") == host.clashes("b") == host.clashes()


def test_unknown_hook_implementation_marks_plugin_broken():
    bad = module("pbad", gml_register_losss=registrar("loss", "X"))
    host = PluginHost(autoload=False, extra_plugins={"bad": bad})
    info = host.plugin_info("bad")
    assert info.broken and "unknown hook implementation 'gml_register_losss'" in info.error
    assert "did you mean 'gml_register_loss'" in info.error


def _documented_signatures() -> dict[str, list[str]]:
    text = (REPO / "docs" / "hooks.md").read_text()
    return {m.group(1): [a.strip() for a in m.group(2).split(",") if a.strip()]
            for m in re.finditer(r"`(gml_\w+)\(([^)]*)\)`", text)}


def _plugin_hookspec_modules():
    import importlib

    for name in ("gml_hpo.hookspecs", "gml_qat.hookspecs", "gml_kd.hookspecs"):
        try:
            yield importlib.import_module(name)
        except ImportError:
            continue


def test_every_hookspec_is_documented_with_its_signature_and_typed():
    import inspect

    documented = _documented_signatures()
    for mod in (hookspecs, *_plugin_hookspec_modules()):
        for name in [n for n in dir(mod) if n.startswith("gml_")]:
            fn = getattr(mod, name)
            if not hasattr(fn, "gml_spec"):
                continue
            params = inspect.signature(fn).parameters
            assert name in documented, f"{mod.__name__}.{name} has no entry in docs/hooks.md"
            assert documented[name] == list(params), (name, documented[name], list(params))
            untyped = [p for p, v in params.items() if v.annotation is inspect.Parameter.empty]
            assert not untyped and fn.__doc__, f"{name}: every parameter annotated and documented ({untyped})"


def _dist(tmp: Path, name: str, ep_name: str, target: str) -> None:
    info = tmp / f"{name.replace('-', '_')}-0.3.dist-info"  # wheel naming: dashes become underscores
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[gml]\n{ep_name} = {target}\n")


def _plugins_json(gml, tmp_path, env=None):
    import os

    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    result = gml("plugins", "--json", env={"PYTHONPATH": path, **(env or {})})
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def test_broken_plugin_is_listed_and_others_load(gml, tmp_path):
    _dist(tmp_path, "gml-broken", "broken", "gml_broken_mod")
    (tmp_path / "gml_broken_mod.py").write_text("raise ImportError('needs libfoo 2.0')\n")
    rows = _plugins_json(gml, tmp_path)
    assert rows["broken"]["status"] == "broken"
    assert rows["broken"]["distribution"] == "gml-broken" and rows["broken"]["version"] == "0.3"
    assert rows["broken"]["error"] == "ImportError: needs libfoo 2.0"
    assert rows["gml-core builtin"]["status"] == "ok"
    text = gml("plugins", env={"PYTHONPATH": str(tmp_path)}).stdout
    assert re.search(r"broken:\n\s+broken\s+\(gml-broken 0.3\): ImportError: needs libfoo 2.0", text)


def test_hello_plugin_discovered_through_entry_points_and_usable(gml, tmp_path):
    _dist(tmp_path, "gml-hello", "hello", "gml_hello.plugin")
    src = str(REPO / "examples" / "gml_hello_plugin")
    env = {"PYTHONPATH": f"{tmp_path}:{src}"}
    rows = _plugins_json(gml, tmp_path, env)
    assert rows["hello"]["provides"] == {"algorithm": ["HelloMixup"], "loss": ["HelloFocalLoss"],
                                       "searcher": ["HelloLocalSearcher"]}
    config = tmp_path / "hello.toml"
    config.write_text('[data]\ntype = "digits"\n[train]\nepochs = 1\n[runtime]\nprogress = false\n'
                      f'work_dir = "{tmp_path / "wd"}"\n'
                      '[algorithm]\ntype = "HelloMixup"\nalpha = 0.4\nloss = { type = "HelloFocalLoss", gamma = 1.0 }\n'
                      'model = { type = "gml.SmallCNN", width = 4 }\n')
    result = gml("run", str(config), env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "wd" / "summary.json").read_text())
    assert summary["metrics"]["accuracy/top1"] > 30
    # the same name disabled: the config then fails with the known list
    off = gml("config", "check", str(config), env={**env, "GML_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert off.returncode == 2 and "unknown algorithm 'HelloMixup'" in off.stderr


def test_disable_autoload_and_load_list(gml, tmp_path):
    _dist(tmp_path, "gml-a", "a_plugin", "gml_a_mod")
    _dist(tmp_path / "x", "gml-b", "b_plugin", "gml_b_mod")
    (tmp_path / "gml_a_mod.py").write_text("")
    (tmp_path / "x" / "gml_b_mod.py").write_text("")
    path = f"{tmp_path}:{tmp_path / 'x'}"
    assert {"a_plugin", "b_plugin"} <= set(_plugins_json(gml, tmp_path, {"PYTHONPATH": path}))
    only = _plugins_json(gml, tmp_path, {"PYTHONPATH": path, "GML_LOAD_PLUGINS": "b_plugin"})
    assert "b_plugin" in only and "a_plugin" not in only
    none = _plugins_json(gml, tmp_path, {"PYTHONPATH": path, "GML_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert set(none) == {"gml-core builtin"}


def test_plugins_and_help_do_not_import_torch(tmp_path):
    import subprocess

    code = ("import sys; from gml_core._internal.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO_TORCH', file=sys.stderr)")
    for args in (["plugins"], ["--help"]):
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert out.stderr.strip().endswith("NO_TORCH"), (args, out.stderr[-500:])


def test_cli_user_errors_exit_2_with_one_line(gml, tmp_path):
    missing = gml("run", str(tmp_path / "none.toml"))
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: config file not found")
    assert "Traceback" not in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[train]\nepochs = 3.7\nlrr = 1\n[algorithm]\ntype = "Supervised"\n'
                   'model = { type = "gml.SmallCNN" }\n')
    result = gml("config", "check", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()[1:]
    assert lines == [f"{bad}: train.epochs: expected an integer, got 3.7 (float)",
                     f"{bad}: train.lrr: unknown key (did you mean 'lr'?); accepted keys: batch_size, epochs, "
                     "grad_clip, label_smoothing, lr, lr_schedule, lr_steps, momentum, nesterov, num_workers, "
                     "optimizer, val_batch_size, val_interval, warmup_iters, weight_decay"]


def test_config_show_prints_resolved_defaults(gml, repo):
    result = gml("config", "show", "configs/baseline/digits_cnn.toml", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["train"]["momentum"] == 0.9 and data["algorithm"]["model"]["type"] == "gml.SmallCNN"


def test_plugin_whose_hook_crashes_is_marked_broken():
    @hookspecs.hookimpl
    def gml_register_loss(register):
        raise RuntimeError("registry exploded")

    good = module("pgood", gml_register_loss=registrar("loss", "GoodLoss"))
    host = PluginHost(autoload=False, extra_plugins={"crash": module("pcrash", gml_register_loss=gml_register_loss),
                                                     "good": good})
    assert "GoodLoss" in host.registry("loss")
    info = host.plugin_info("crash")
    assert info.broken and info.error == "gml_register_loss: RuntimeError: registry exploded"


def test_hello_searcher_follows_the_searcher_contract(monkeypatch):
    """The example plugin's searcher works inside gml-hpo: valid suggestions, local moves near the best."""
    pytest.importorskip("gml_hpo")
    monkeypatch.syspath_prepend(str(REPO / "examples" / "gml_hello_plugin"))
    from gml_hello.local_search import HelloLocalSearcher
    from gml_hpo.space import Dim, SearchSpace

    space = SearchSpace([Dim("x", "Real", 0.0, 1.0), Dim("n", "Int", 1, 8, values=tuple(range(1, 9)))])
    searcher = HelloLocalSearcher(space, seed=0)
    for _ in range(40):
        params = searcher.suggest([])
        assert space.contains(params)
        searcher.observe(params, -(params["x"] - 0.3) ** 2 - 0.01 * (params["n"] - 4) ** 2)
    best = max(searcher.history, key=lambda h: h[1])[0]
    assert abs(best["x"] - 0.3) < 0.1
