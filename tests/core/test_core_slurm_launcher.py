"""`gml run --launcher slurm` under a real `srun` (two tasks, gloo on CPU): both ranks agree.

Needs a running single-node cluster (CI: scripts/test.sh starts it with scripts/slurm/up.sh).
Skipped only when the Slurm commands are absent; fails when they are present but the controller
does not answer.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("srun") is None,
                                reason="Slurm commands absent (start a cluster with scripts/slurm/up.sh)")

PROBE = (
    "import sys, torch, torch.distributed as dist\n"
    "from gml_core._internal.hookspecs import hookimpl\n"
    "class P:\n"
    "    @hookimpl\n"
    "    def gml_on_evaluate(self, algorithm):\n"
    "        torch.save(algorithm.state_dict(), sys.argv[1] + '/rank%d.pth' % dist.get_rank())\n"
    "from gml_core._internal import plugins\n"
    "plugins.get_host().pm.register(P(), name='probe')\n"
    "from gml_core._internal.cli import main\n"
    "main(sys.argv[2:])\n")


def test_srun_two_tasks_train_digits_and_ranks_agree(tmp_path):
    info = subprocess.run(["sinfo", "-h", "-o", "%a %t"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0 or not info.stdout.strip():
        pytest.fail(f"Slurm is installed but the cluster does not answer ({info.stderr.strip()}); "
                    "start it with: bash scripts/slurm/up.sh")
    cfg = tmp_path / "digits.toml"
    cfg.write_text(f'[data]\ntype = "digits"\n[train]\nepochs = 1\n[runtime]\nwork_dir = "{tmp_path / "wd"}"\n'
                   'progress = false\nlog_interval = 50\n'
                   '[algorithm]\ntype = "Supervised"\nmodel = { type = "gml.SmallCNN", width = 4 }\n')
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(29600 + os.getpid() % 300),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))}
    result = subprocess.run(["srun", "-n", "2", "-N", "1", "--time", "10", "--job-name", f"gmlt{os.getpid()}-launch",
                             sys.executable, str(probe), str(tmp_path), "run", str(cfg), "--launcher", "slurm"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    a = torch.load(tmp_path / "rank0.pth", weights_only=True)
    b = torch.load(tmp_path / "rank1.pth", weights_only=True)
    for key in a:
        if "running" in key or "num_batches" in key:
            continue  # BN statistics are per rank, as with DDP's broadcast_buffers=False
        assert torch.equal(a[key], b[key]), key
    assert (tmp_path / "wd" / "summary.json").is_file()
