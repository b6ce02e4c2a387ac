"""IAO configs: the shipped ones validate, bad input is reported with its key path, CLI exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from qat_helpers import REPO, run_gml

from gml_core._internal.config.loader import load_config
from gml_core._internal.errors import ConfigError

CONFIGS = REPO / "configs" / "qat"


@pytest.mark.parametrize("name", ["iao_digits.toml", "iao_digits_fx.toml", "iao_kd_digits.toml"])
def test_shipped_configs_validate(name):
    if name == "iao_kd_digits.toml":
        pytest.importorskip("gml_kd", reason="optional dependency gml-kd")
    cfg = load_config(CONFIGS / name)
    assert cfg.algorithm.type == "IAO"


def test_freeze_periods_parse():
    from gml_qat.schedule import Period

    cfg = load_config(CONFIGS / "iao_digits.toml",
                      ['algorithm.freeze_bn_after="200 iters"', 'algorithm.freeze_observer_after="never"'])
    assert cfg.algorithm.freeze_bn_after == Period(200, "iter")
    assert cfg.algorithm.freeze_observer_after.iteration(10) == float("inf")
    assert load_config(CONFIGS / "iao_digits.toml", ["algorithm.freeze_bn_after=3"]).algorithm.freeze_bn_after \
        == Period(3, "epoch")


@pytest.mark.parametrize("override, path, message", [
    ('algorithm.freeze_bn_after="3 weeks"', "algorithm.freeze_bn_after", "iterations with a unit"),
    ("algorithm.freeze_observer_after=2.5", "algorithm.freeze_observer_after", "2.5"),
    ('algorithm.quantizer.backend="fbgem"', "algorithm.quantizer.backend", "fbgemm"),
    ('algorithm.quantizer.type="TorchDefaultQuantiser"', "algorithm.quantizer.type",
     "did you mean 'TorchDefaultQuantizer'"),
    ("algorithm.latency_runs=0", "algorithm.latency_runs", "must be >= 1"),
    ('algorithm.quantizer.custom_qconfig.x={weight={dtype="int8"}}',
     "algorithm.quantizer.custom_qconfig.x.weight.dtype", "qint8"),
    ("algorithm.quantizer.custom_qconfig.x={weight={bits=12}}",
     "algorithm.quantizer.custom_qconfig.x.weight", "between 2 and 8"),
    ("algorithm.quantizer.custom_qconfig.x={weight={qscheme=1}}",
     "algorithm.quantizer.custom_qconfig.x.weight.qscheme", "1"),
])
def test_bad_values_name_their_key(override, path, message):
    with pytest.raises(ConfigError) as exc:
        load_config(CONFIGS / "iao_digits.toml", [override])
    found = dict(exc.value.problems)
    assert path in found, exc.value.problems
    assert message in found[path]


def test_fx_quantizer_has_no_fuse_config():
    with pytest.raises(ConfigError) as exc:
        load_config(CONFIGS / "iao_digits_fx.toml", ['algorithm.quantizer.fuse_config={a=[["b", "c"]]}'])
    assert "unknown argument" in dict(exc.value.problems)["algorithm.quantizer.fuse_config"]


def test_cli_reports_a_wrong_layer_name_in_one_line_and_exit_code_2(tmp_path):
    work_dir = tmp_path / "run"
    proc = run_gml("run", str(CONFIGS / "iao_digits_fx.toml"), "--work-dir", str(work_dir), "--cfg-options",
                   'algorithm.model.init_from=""', "algorithm.quantizer.output_layer=backbone.layer5")
    assert proc.returncode == 2, proc.stderr
    assert "algorithm.quantizer.output_layer: no module named 'backbone.layer5'" in proc.stderr
    assert "did you mean 'backbone.layer" in proc.stderr and "Traceback" not in proc.stderr
    assert not (work_dir / "model_int8.pth").exists()


def test_plugin_module_is_import_light():
    code = "import sys, gml_qat.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_qat_report_command(tmp_path):
    import json

    from click.testing import CliRunner

    from gml_core._internal import cli

    report = {"quantizer": {"type": "FxQuantizer", "backend": "x86"},
              "fp32": {"top1": 98.5, "torchscript_bytes": 409600, "state_dict_bytes": 409000},
              "int8": {"top1": 98.25, "torchscript_bytes": 102400, "state_dict_bytes": 102000},
              "latency": {"batch_size": 1, "threads": 1, "fp32_ms": 0.3, "int8_ms": 0.1}}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "qat_report.json").write_text(json.dumps(report))
    cli._add_plugin_commands()
    result = CliRunner().invoke(cli.cli, ["qat", "report", str(tmp_path / "run")], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "98.25" in result.output and "400.0 KiB -> 100.0 KiB" in result.output and "3.0x" in result.output
    assert "sequential" in result.output  # a report written before interleaved timing
    report["latency"].update(speedup=2.8, paired_quartiles=[2.0, 2.8, 3.9], stable=False)
    (tmp_path / "run" / "qat_report.json").write_text(json.dumps(report))
    result = CliRunner().invoke(cli.cli, ["qat", "report", str(tmp_path / "run")], terminal_width=200)
    assert "2.8x" in result.output and "UNSTABLE" in result.output, result.output
    missing = CliRunner().invoke(cli.cli, ["qat", "report", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "no qat_report.json" in missing.output
