"""End to end through ``gml run``: DMCP and magnitude pruning, export, fine-tuning the export."""

import json
from pathlib import Path

import pytest
import torch

COMMON = """
[data]
type = "digits"
[train]
epochs = 2
batch_size = 128
lr = 0.05
[runtime]
work_dir = "{work_dir}"
progress = false
log_interval = 5
"""

DMCP = COMMON + """
[algorithm]
type = "DMCP"
arch_start_training = 4
arch_sample_num = 3
calib_batches = 3
score_batches = 2
latency_batches = [1]
model = { type = "gml.SmallCNN", width = 4 }
[algorithm.mutator]
type = "DMCPMutator"
num_sample = 3
arch_sample_type = ["max", "min", "scheduled_random"]
width = { max = 1.0, min = 0.25, offset = 0.25 }
target_flops = 0.5
sample_prob_decay = 0.9
"""

L1 = COMMON + """
[algorithm]
type = "MagnitudePruning"
criterion = "l1"
allocation = "global"
target_flops = "50%"
steps = 2
latency_batches = [1]
model = { type = "gml.SmallCNN", width = 4 }
"""

FINETUNE = COMMON.replace("epochs = 2", "epochs = 1") + """
[algorithm]
type = "Supervised"
model = { type = "gml.SmallCNN", init_from = "{ckpt}" }
"""


def cli(*args):
    """The gml CLI in-process (for commands that do not start a training run)."""
    from click.testing import CliRunner

    from gml_core._internal.cli import _add_plugin_commands
    from gml_core._internal.cli import cli as group

    _add_plugin_commands()
    return CliRunner().invoke(group, [str(a) for a in args])


def fill(text, **values):
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def run(gml, tmp_path, name, text, **values):
    path = tmp_path / f"{name}.toml"
    path.write_text(fill(text, work_dir=tmp_path / name, **values))
    result = gml("run", path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return path, tmp_path / name, result.stdout


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_dmcp_run_export_and_finetune(gml, tmp_path):
    config, wd, out = run(gml, tmp_path, "dmcp", DMCP)
    assert "pruned checkpoint" in out and "DMCP expected FLOPs / target" in out
    report = json.loads((wd / "prune_report.json").read_text())
    assert report["ratio"]["flops"] <= 0.5 * 1.05 and report["after"]["params"] < report["before"]["params"]
    assert report["after"]["accuracy/top1"] > 20
    assert len(report["candidates"]) == 4
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["flops"] == report["after"]["flops"]          # the run's summary counts the pruned model
    ckpt = torch.load(wd / "pruned.pth", weights_only=True)
    assert ckpt["model_spec"]["type"] == "gml.PrunedModel"
    scripted = torch.jit.load(str(wd / "pruned_torchscript.pt"))
    assert scripted(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert Path(summary["last_checkpoint"]).is_file()

    _, ft_wd, out = run(gml, tmp_path, "finetune", FINETUNE, ckpt=wd / "pruned.pth")
    tuned = json.loads((ft_wd / "summary.json").read_text())
    assert tuned["params"] == report["after"]["params"] and tuned["flops"] == report["after"]["flops"]

    # re-export from the training checkpoint with the CLI
    result = cli("prune", "export", config, summary["last_checkpoint"], "--out", tmp_path / "again")
    assert result.exit_code == 0, result.output[-3000:]
    assert (tmp_path / "again" / "pruned.pth").is_file() and "pruned FLOPs" in result.output


def test_iterative_l1_run(gml, tmp_path):
    _, wd, out = run(gml, tmp_path, "l1", L1)
    report = json.loads((wd / "prune_report.json").read_text())
    assert report["ratio"]["flops"] <= 0.5
    assert "accuracy/top1" in report["before"] and "accuracy/top1" in report["after"]
    assert "accuracy/top1 before -> pruned" in out


def test_analyze_command_and_bad_config(tmp_path):
    result = cli("prune", "analyze", "--model", "gml.SmallCNN", "--input-shape", "1,1,8,8")
    assert result.exit_code == 0 and "5 prunable groups" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(fill(DMCP, work_dir=tmp_path / "bad").replace("target_flops = 0.5", "target_flops = 0.01"))
    result = cli("run", bad)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "algorithm.mutator.target_flops: " in result.stderr
    assert "minimum width allows" in result.stderr and "Traceback" not in result.output
