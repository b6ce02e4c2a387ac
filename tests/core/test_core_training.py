"""End-to-end training through mmengine: summary, checkpoints, resume, trust flag, distributed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gml_core._internal.checkpoint import load_file, load_weights
from gml_core._internal.errors import GmlUserError

REPO = Path(__file__).resolve().parents[2]

CONFIG = """
[data]
type = "digits"
[train]
epochs = {epochs}
batch_size = 128
lr = 0.1
[runtime]
work_dir = "{work_dir}"
progress = false
log_interval = 5
[algorithm]
type = "Supervised"
model = {{ type = "gml.SmallCNN", width = 4 }}
"""


def config(tmp_path: Path, epochs: int = 2, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(CONFIG.format(epochs=epochs, work_dir=tmp_path / "wd"))
    return path


def test_run_summary_checkpoints_and_resume(gml, tmp_path):
    first = gml("run", str(config(tmp_path, 2)))
    assert first.returncode == 0, first.stderr[-3000:]
    assert "gml run summary" in first.stdout and "accuracy/top1" in first.stdout and "FLOPs" in first.stdout
    wd = tmp_path / "wd"
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["metrics"]["accuracy/top1"] > 50
    assert summary["params"] > 0 and summary["flops"] > 0
    assert Path(summary["log"]).is_file()
    for name in ("best.pth", "epoch_2.pth"):
        ckpt = torch.load(wd / name, map_location="cpu", weights_only=True)  # plain data only
        assert "state_dict" in ckpt
    assert summary["last_checkpoint"] == str(wd / "epoch_2.pth") and (wd / "last_checkpoint").read_text() == \
        str(wd / "epoch_2.pth")
    latest = torch.load(wd / "epoch_2.pth", weights_only=True)
    assert latest["meta"]["epoch"] == 2 and latest["message_hub"]["log_scalars"]

    second = gml("run", str(config(tmp_path, 3)), "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    log = Path(json.loads((wd / "summary.json").read_text())["log"]).read_text()  # mmengine's full log
    assert "resumed epoch: 2" in log
    assert "Epoch(train) [1]" not in log and "Epoch(train) [3]" in log
    assert "epoch 3/3" in second.stdout and "epoch 1/3" not in second.stdout  # the console's epoch lines
    assert torch.load(wd / "epoch_3.pth", weights_only=True)["meta"]["epoch"] == 3


def test_load_weights_from_gml_checkpoint(tmp_path, gml):
    result = gml("run", str(config(tmp_path, 1)))
    assert result.returncode == 0, result.stderr[-3000:]
    from gml_core._internal.models.small_cnn import SmallCNN

    model = SmallCNN(width=4)
    load_weights(model, tmp_path / "wd" / "best.pth")
    saved = torch.load(tmp_path / "wd" / "best.pth", weights_only=True)["state_dict"]
    assert torch.equal(model.head.fc.weight, saved["model.head.fc.weight"])


class Opaque:
    """Something weights_only loading refuses."""


def test_unsafe_checkpoint_needs_explicit_trust(tmp_path):
    path = tmp_path / "foreign.pth"
    torch.save({"state_dict": {"w": torch.ones(1)}, "extra": Opaque()}, path)
    with pytest.raises(GmlUserError, match="--trust-checkpoint"):
        load_file(path)
    with pytest.warns(UserWarning, match="weights_only=False"):
        assert torch.equal(load_file(path, trust=True)["state_dict"]["w"], torch.ones(1))


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(GmlUserError, match=r"checkpoint .*none\.pth not found"):
        load_file(tmp_path / "none.pth")


def test_distributed_two_processes_train_identical_weights(tmp_path):
    cfg = config(tmp_path, 1)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "gml_core", "run", str(cfg), "--launcher", "pytorch",
           "--cfg-options", "runtime.checkpoint_interval=1"]
    # each rank writes its final weights for comparison
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys, torch, torch.distributed as dist\n"
        "from gml_core._internal.hookspecs import hookimpl\n"
        "class P:\n"
        "    @hookimpl\n"
        "    def gml_on_evaluate(self, algorithm, iteration, epoch, metrics):\n"
        f"        torch.save(algorithm.state_dict(), r'{tmp_path}/rank%d.pth' % dist.get_rank())\n"
        "from gml_core._internal import plugins\n"
        "host = plugins.get_host(); host.pm.register(P(), name='probe')\n"
        "from gml_core._internal.cli import main\n"
        "main(sys.argv[1:])\n")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           str(probe), "run", str(cfg), "--launcher", "pytorch"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    a = torch.load(tmp_path / "rank0.pth", weights_only=True)
    b = torch.load(tmp_path / "rank1.pth", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        if "running" in key or "num_batches" in key:
            continue  # BN statistics are per-rank (not broadcast), as with DDP's broadcast_buffers=False
        assert torch.equal(a[key], b[key]), key
    initial = torch.load(tmp_path / "wd" / "epoch_1.pth", weights_only=True)["state_dict"]
    assert torch.equal(initial["model.head.fc.weight"], a["model.head.fc.weight"])


def test_distributed_run_destroys_the_process_group_it_created(tmp_path):
    """A gloo group left to interpreter teardown once aborted a finished rank (SIGABRT) in CI."""
    script = ("import torch.distributed as dist\n"
              "from gml_core._internal.config.loader import load_config\n"
              "from gml_core._internal.training.runner import run\n"
              f"run(load_config(r'{config(tmp_path, 1)}', ['runtime.launcher=\"pytorch\"']))\n"
              "print('initialized after run:', dist.is_initialized())\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29521"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "initialized after run: False" in result.stdout


def test_load_from_and_tensorboard_backend(gml, tmp_path):
    first = gml("run", str(config(tmp_path, 1)))
    assert first.returncode == 0, first.stderr[-3000:]
    best = tmp_path / "wd" / "best.pth"
    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": torch.load(best, weights_only=True)["state_dict"], "extra": Opaque()}, foreign)
    cfg = config(tmp_path, 1, "second.toml")
    refused = gml("run", str(cfg), "--load-from", str(foreign), "--work-dir", str(tmp_path / "wd2"))
    assert refused.returncode == 2 and "--trust-checkpoint" in refused.stderr
    ok = gml("run", str(cfg), "--load-from", str(best), "--work-dir", str(tmp_path / "wd2"),
             "--cfg-options", 'runtime.visualizer=["local", "tensorboard"]')
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "load_from" in ok.stdout + ok.stderr and "0 missing, 0 unexpected" in ok.stdout + ok.stderr
    assert list((tmp_path / "wd2").glob("*/vis_data/events.out.tfevents.*"))


def test_load_weights_picks_the_model_part_and_reports_shape_mismatch(tmp_path):
    from gml_core._internal.models.small_cnn import SmallCNN

    model = SmallCNN(width=4)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["connector.weight"] = torch.ones(3)  # other parts of an algorithm's checkpoint
    torch.save({"state_dict": state}, tmp_path / "algo.pth")
    fresh = SmallCNN(width=4)
    load_weights(fresh, tmp_path / "algo.pth")
    assert torch.equal(fresh.head.fc.weight, model.head.fc.weight)
    with pytest.raises(GmlUserError, match=r"does not fit the model: size mismatch for .*"):
        load_weights(SmallCNN(width=8), tmp_path / "algo.pth")
