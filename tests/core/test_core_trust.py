"""Runs that can be trusted (issue 13): crash-safe checkpoints under SIGKILL, owned work dirs,
one-line errors, file modes, safe CIFAR reading, reproducibility."""

import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
QUIET = ("--cfg-options", "runtime.progress=false", "runtime.log_interval=50")


def config(tmp_path: Path, epochs: int = 3, name: str = "run", extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[data]\ntype = "digits"\n[train]\nepochs = {epochs}\nbatch_size = 128\n'
                    f'[runtime]\nwork_dir = "{tmp_path / "wd"}"\nmax_keep_ckpts = 2\n{extra}'
                    '[algorithm]\ntype = "Supervised"\nmodel = { type = "gml.SmallCNN", width = 4 }\n')
    return path


# -- SIGKILL at every stage of a checkpoint write, then --resume ----------------------------
KILLER = r'''
import os, signal, sys
stage, target = sys.argv[1], sys.argv[2]
target, _, once_exists = target.partition("@")  # "best.pth@epoch_1.pth": only once epoch_1.pth exists
from gml_core._internal import atomic
from pathlib import Path
real_replace, real_fsync, real_unlink = os.replace, os.fsync, Path.unlink

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def replace(src, dst, *a, **k):
    hit = os.path.basename(str(dst)) == target and (
        not once_exists or os.path.exists(os.path.join(os.path.dirname(str(dst)), once_exists)))
    if hit and stage == "before_rename":
        die()
    real_replace(src, dst, *a, **k)
    if hit and stage == "after_rename":
        die()

def write_half(path, data):
    if os.path.basename(str(path)) == target and stage == "mid_write":
        # what the atomic writer leaves when killed while writing: a partial temporary file
        Path(path).with_name("." + Path(path).name + ".killed.tmp").write_bytes(data[: len(data) // 2])
        die()
    return real_write_bytes(path, data)

def unlink(self, *a, **k):
    if stage == "unlink" and self.name == target:
        die()
    return real_unlink(self, *a, **k)

real_write_bytes = atomic.atomic_write_bytes
os.replace = replace
Path.unlink = unlink
import gml_core._internal.training.checkpoints as ck
ck.atomic_write_bytes = write_half
atomic.atomic_write_bytes = write_half
from gml_core._internal.cli import main
main(sys.argv[3:])
'''


@pytest.mark.parametrize("stage, target", [
    ("mid_write", "epoch_2.pth"),        # the new checkpoint half written
    ("before_rename", "epoch_2.pth"),    # written and synced, not yet in place
    ("after_rename", "epoch_2.pth"),     # in place, last_checkpoint not yet updated
    ("before_rename", "last_checkpoint"),
    ("after_rename", "best.pth@epoch_1.pth"),  # a new best in place, its epoch checkpoint not yet
    ("unlink", "epoch_1.pth"),           # while removing an old checkpoint
])
def test_sigkill_during_a_checkpoint_write_then_resume(tmp_path, stage, target):
    cfg = config(tmp_path, epochs=3)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = subprocess.run([sys.executable, "-c", KILLER, stage, target, "run", str(cfg), *QUIET],
                            capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert killed.returncode == -9, killed.stderr[-2000:]
    wd = tmp_path / "wd"
    resumed = subprocess.run([sys.executable, "-m", "gml_core", "run", str(cfg), "--resume", *QUIET],
                             capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "--resume: continuing from" in resumed.stdout
    summary = json.loads((wd / "summary.json").read_text())
    assert summary["last_checkpoint"] == str(wd / "epoch_3.pth")
    assert torch.load(wd / "epoch_3.pth", weights_only=True)["meta"]["epoch"] == 3
    assert summary["metrics"]["accuracy/top1"] > 50
    assert not list(wd.glob(".*.tmp"))  # the killed writer's temporary file was cleaned up


def test_resume_skips_broken_newer_checkpoints_and_says_why(gml, tmp_path):
    cfg = config(tmp_path, epochs=2)
    assert gml("run", str(cfg), *QUIET).returncode == 0
    wd = tmp_path / "wd"
    data = (wd / "epoch_2.pth").read_bytes()
    (wd / "epoch_2.pth").write_bytes(data[: len(data) // 3])      # truncated
    (wd / "epoch_3.pth").write_bytes(b"")                         # empty
    (wd / "last_checkpoint").write_text("")                       # emptied by a crash
    result = gml("run", str(config(tmp_path, epochs=3)), "--resume", *QUIET)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("--resume:"))
    assert line.startswith(f"--resume: continuing from {wd / 'epoch_1.pth'} (skipped: epoch_3.pth is empty")
    assert "epoch_2.pth is truncated or corrupt" in line


# -- work-dir ownership ---------------------------------------------------------------------------
def test_second_run_in_a_locked_work_dir_is_refused_naming_the_pid(gml, tmp_path):
    from gml_core._internal.training.workdir import WorkDirLock

    wd = tmp_path / "wd"
    wd.mkdir()
    lock = WorkDirLock(wd, created=False)
    lock.acquire()
    try:
        result = gml("run", str(config(tmp_path)), *QUIET)
    finally:
        lock.release()
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: work dir {wd} is in use by another gml run (pid {os.getpid()}, "
                                     f"started {json.loads((wd / '.gml.lock').read_text())['started']}); wait for "
                                     "it to end or pass another --work-dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml", "wd"]


def test_process_lock_names_its_holder_and_is_freed_when_the_holder_is_killed(tmp_path):
    import fcntl
    import signal

    from gml_core.api import ProcessLock

    path = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom gml_core.api import ProcessLock\n"
                               "assert ProcessLock(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(60)",
                               str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not ProcessLock(path).acquire()
        record = ProcessLock.holder(path)
        assert record["pid"] == holder.pid and ProcessLock.describe(record).startswith(f"pid {holder.pid}, started ")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert ProcessLock.holder(path) is None  # the kernel released it with the process
    mine = ProcessLock(path)
    assert mine.acquire()
    mine.release()
    assert ProcessLock.holder(tmp_path / "never.lock") is None
    path.write_text("4242")  # what an older search-run wrote: the bare pid
    with open(path) as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        assert ProcessLock.holder(path) == {"pid": 4242}


def test_a_finished_run_is_never_overwritten(gml, tmp_path):
    cfg = config(tmp_path, epochs=1)
    assert gml("run", str(cfg), *QUIET).returncode == 0
    wd = tmp_path / "wd"
    before = {name: (wd / name).read_bytes() for name in ("best.pth", "summary.json", "epoch_1.pth")}
    again = gml("run", str(cfg), *QUIET, "runtime.seed=5")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"work dir {wd} holds an earlier run; this run writes to {wd}-2" in again.stdout
    assert all((wd / name).read_bytes() == data for name, data in before.items())
    assert json.loads((tmp_path / "wd-2" / "summary.json").read_text())["metrics"]


def test_refused_runs_leave_nothing_behind(gml, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = gml("run", str(config(tmp_path)), "--work-dir", str(blocker / "wd"), *QUIET)
    assert result.returncode == 2 and result.stderr.startswith(f"error: --work-dir {blocker / 'wd'}: cannot create")
    assert len(result.stderr.strip().splitlines()) == 1
    missing = gml("run", str(config(tmp_path)), "--load-from", str(tmp_path / "nope.pth"), *QUIET)
    assert missing.returncode == 2 and "nope.pth not found" in missing.stderr
    assert not (tmp_path / "wd").exists()


# -- one-line errors ------------------------------------------------------------------------------
def test_checkpoint_problems_get_distinct_messages(tmp_path):
    from gml_core._internal.checkpoint import CheckpointError, load_file

    good = tmp_path / "good.pth"
    torch.save({"state_dict": {"w": torch.zeros(64, 64)}}, good)
    data = good.read_bytes()
    cases = {"empty.pth": b"", "truncated.pth": data[: len(data) // 2], "text.pth": b"hello" * 20}
    flipped = bytearray(data)
    flipped[len(data) // 2: len(data) // 2 + 32] = b"\xff" * 32
    cases["flipped.pth"] = bytes(flipped)
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    messages = {}
    for name in [*cases, "missing.pth"]:
        with pytest.raises(CheckpointError) as info:
            load_file(tmp_path / name)
        messages[name] = info.value.reason
    assert messages == {
        "empty.pth": "is empty (0 bytes): it was never written completely",
        "truncated.pth": f"is truncated or corrupt (an incomplete zip archive of {len(data) // 2} bytes)",
        "text.pth": "is not a PyTorch checkpoint (unknown format, 100 bytes)",
        "flipped.pth": messages["flipped.pth"],
        "missing.pth": "not found",
    }
    assert messages["flipped.pth"].startswith("is corrupt (CRC mismatch in ")


def test_truncated_checkpoints_at_the_load_sites_are_one_line(gml, tmp_path):
    cfg = config(tmp_path, epochs=1)
    assert gml("run", str(cfg), *QUIET).returncode == 0
    bad = tmp_path / "bad.pth"
    data = (tmp_path / "wd" / "best.pth").read_bytes()
    bad.write_bytes(data[:200])
    message = f"checkpoint {bad} is truncated or corrupt"
    init_from = config(tmp_path, name="i")
    init_from.write_text(init_from.read_text().replace("width = 4 }", f'width = 4, init_from = "{bad}" }}'))
    sites = [
        ("run", str(config(tmp_path, name="l")), "--load-from", str(bad), "--work-dir", str(tmp_path / "l")),
        ("run", str(init_from), "--work-dir", str(tmp_path / "i")),
        ("config", "check", str(config(tmp_path, name="c", extra=f'load_from = "{bad}"\n'))),
    ]
    for args in sites:
        result = gml(*args)
        assert result.returncode == 2, (args, result.stderr[-1500:])
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr[-1500:])
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    result = gml("run", str(config(tmp_path, name="e")), "--load-from", str(empty), "--work-dir", str(tmp_path / "e"))
    assert result.returncode == 2 and "is empty (0 bytes)" in result.stderr and "Aborted" not in result.stderr


def test_binary_and_circular_configs_are_one_line(gml, tmp_path):
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\x80\x81\x00garbage")
    for args in (("config", "check", str(binary)), ("config", "show", str(binary)), ("run", str(binary))):
        result = gml(*args)
        assert result.returncode == 2 and result.stderr.strip() == \
            f"error: {binary}: not a text config (invalid UTF-8 at byte 0)"
    (tmp_path / "a.py").write_text("_base_ = ['b.py']\n")
    (tmp_path / "b.py").write_text("_base_ = ['a.py']\n")
    result = gml("config", "check", str(tmp_path / "a.py"))
    assert result.returncode == 2 and "circular _base_ chain" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_check_reports_every_phase_at_once(gml, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[data]\ntype = "digits"\nresize = -3\nsplit_sed = 1\n'
                   '[train]\nepochs = 2.5\nlr = -0.1\n[runtime]\nlog_interval = 0\n'
                   '[algorithm]\ntype = "Supervised"\nmodel = { type = "gml.SmallCNN", widht = 4 }\n')
    result = gml("config", "check", str(cfg))
    assert result.returncode == 2
    text = result.stderr
    for expected in ("train.epochs: expected an integer, got 2.5", "runtime.log_interval: must be >= 1, got 0",
                     "data.split_sed: unknown argument (did you mean 'split_seed'?)",
                     "algorithm.model.widht: unknown argument (did you mean 'width'?)"):
        assert expected in text, text
    fixed = tmp_path / "dry.toml"
    fixed.write_text('[data]\ntype = "digits"\nresize = -3\n[train]\nlr = -0.1\n'
                     '[algorithm]\ntype = "Supervised"\nmodel = { type = "gml.SmallCNN", width = 0 }\n')
    result = gml("config", "check", str(fixed))
    assert result.returncode == 2 and "train.lr: must be > 0, got -0.1" in result.stderr
    fixed.write_text(fixed.read_text().replace("lr = -0.1", "lr = 0.1"))
    result = gml("config", "check", str(fixed))  # the dry build: dataset and model arguments
    assert result.returncode == 2 and "data.resize: must be >= 0" in result.stderr, result.stderr
    fixed.write_text(fixed.read_text().replace("resize = -3", "resize = 0"))
    result = gml("config", "check", str(fixed))
    assert result.returncode == 2 and "algorithm.model: gml.SmallCNN rejected its arguments: SmallCNN: width and " \
        "depth must be >= 1" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    missing = tmp_path / "folder.toml"
    missing.write_text(f'[data]\ntype = "imagefolder"\nroot = "{tmp_path / "nowhere"}"\n'
                       '[algorithm]\ntype = "Supervised"\nmodel = { type = "gml.SmallCNN" }\n')
    result = gml("config", "check", str(missing))
    assert result.returncode == 2 and "data.root: train folder" in result.stderr


# -- files, data, reproducibility -------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_honour_the_umask(tmp_path, umask, mode):
    cfg = config(tmp_path, epochs=1)
    result = subprocess.run(["sh", "-c", f'umask {umask:03o} && exec "$0" -m gml_core run "$1" '
                             "--cfg-options runtime.progress=false", sys.executable, str(cfg)],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    wd = tmp_path / "wd"
    for name in ("summary.json", "best.pth", "epoch_1.pth", "last_checkpoint"):
        assert stat.S_IMODE((wd / name).stat().st_mode) == mode, name


def test_cifar_batches_are_read_without_running_code(tmp_path):
    from gml_core._internal.data.folders import cifar10
    from gml_core._internal.errors import GmlUserError

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {"data": np.zeros((4, 3072), dtype=np.uint8), "labels": [0, 1, 2, 3]}
    for name in ("data_batch_1", "test_batch"):
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    assert len(cifar10(str(tmp_path)).train) == 4
    marker = tmp_path / "planted"

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({"data": Planted(), "labels": [0]}))
    with pytest.raises(GmlUserError, match="data_batch_1 is not a CIFAR-10 python batch .*refusing to load global"):
        cifar10(str(tmp_path))
    assert not marker.exists()


def test_same_seed_same_metrics(gml, tmp_path):
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        cfg = config(tmp_path / name, epochs=2)
        assert gml("run", str(cfg), *QUIET).returncode == 0
        runs.append(json.loads((tmp_path / name / "wd" / "summary.json").read_text())["metrics"])
    assert runs[0] == runs[1]


def test_mlflow_run_names_are_unique_per_run(tmp_path):
    from gml_core._internal.training.runner import mlflow_run_name

    names = {mlflow_run_name(tmp_path / "wd")}
    other = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from "
                            "gml_core._internal.training.runner import mlflow_run_name; "
                            "print(mlflow_run_name(Path(sys.argv[1])))", str(tmp_path / "wd")],
                           capture_output=True, text=True, check=True)
    names.add(other.stdout.strip())
    assert len(names) == 2 and all(n.startswith("wd-") for n in names)


def test_trust_checkpoint_applies_to_resume(gml, tmp_path):
    import argparse

    cfg = config(tmp_path, epochs=1)
    assert gml("run", str(cfg), *QUIET).returncode == 0
    wd = tmp_path / "wd"
    ckpt = torch.load(wd / "epoch_1.pth", weights_only=True)
    ckpt["meta"]["foreign"] = argparse.Namespace(origin="another tool")  # a global safe loading refuses
    torch.save(ckpt, wd / "epoch_1.pth")
    two = config(tmp_path, epochs=2, name="two")
    trusted = gml("run", str(two), "--resume", "--trust-checkpoint", *QUIET)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert f"--resume: continuing from {wd / 'epoch_1.pth'}" in trusted.stdout
    ckpt["meta"]["epoch"], ckpt["meta"]["foreign"] = 1, argparse.Namespace(origin="again")
    for name in ("epoch_2.pth", "epoch_1.pth"):
        torch.save(ckpt, wd / name)
    refused = gml("run", str(config(tmp_path, epochs=3, name="three")), "--resume", *QUIET)
    assert refused.returncode == 0
    assert "epoch_2.pth needs pickle globals that safe loading refuses" in refused.stdout
    assert "starting from scratch" in refused.stdout
