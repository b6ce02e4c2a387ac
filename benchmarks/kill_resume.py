"""Kill `gml run` with SIGKILL at random and at checkpoint-writing moments, then `--resume`.

For each trial: start a digits run, SIGKILL it (``random``: at a uniform moment of a normal
run's duration; ``checkpoint``: the instant a temporary checkpoint file appears in the work
dir, i.e. while a checkpoint is being written), then run ``gml run --resume`` until it
finishes. Reports how many resumes succeeded, from which epoch, and the final accuracy next to
uninterrupted runs.

    python benchmarks/kill_resume.py --trials 30 --out work_dirs/bench/kill_resume.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = ('[data]\ntype = "digits"\n[train]\nepochs = {epochs}\nbatch_size = 64\n[runtime]\nseed = 0\n'
          'progress = false\nlog_interval = 100\nmax_keep_ckpts = 2\n'
          '[algorithm]\ntype = "Supervised"\nmodel = {{ type = "gml.SmallCNN", width = 8 }}\n')


def gml(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "gml_core", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(cfg: Path, wd: Path, resume: bool) -> tuple[int, str]:
    proc = gml(str(cfg), "--work-dir", str(wd), *(["--resume"] if resume else []))
    out, err = proc.communicate()
    line = next((x for x in out.splitlines() if x.startswith("--resume:")), "")
    err_lines = err.strip().splitlines()
    return proc.returncode, line or (err_lines[-1] if err_lines else "")


def top1(wd: Path) -> float:
    return json.loads((wd / "summary.json").read_text())["metrics"]["accuracy/top1"]


def kill_at_checkpoint(cfg: Path, wd: Path, rng: random.Random) -> float:
    """Start a run and kill it while the n-th checkpoint file is being written."""
    nth = rng.randint(1, 4)
    proc = gml(str(cfg), "--work-dir", str(wd))
    seen, start = 0, time.time()
    while proc.poll() is None:
        if wd.is_dir() and any(wd.glob(".*.tmp")):
            seen += 1
            if seen >= nth:
                proc.send_signal(signal.SIGKILL)
                break
            while wd.is_dir() and any(wd.glob(".*.tmp")) and proc.poll() is None:
                time.sleep(0.0005)
        time.sleep(0.0005)
    proc.communicate()
    return time.time() - start


def kill_at_random(cfg: Path, wd: Path, rng: random.Random, duration: float) -> float:
    delay = rng.uniform(0.05, 1.0) * duration
    proc = gml(str(cfg), "--work-dir", str(wd))
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return delay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="kills per mode")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="gml-kill-"))
    cfg = root / "digits.toml"
    cfg.write_text(CONFIG.format(epochs=args.epochs))

    start = time.time()
    code, _ = finish(cfg, root / "clean", resume=False)
    duration = time.time() - start
    assert code == 0, "the uninterrupted run failed"
    clean = top1(root / "clean")

    results: dict[str, list[dict]] = {"random": [], "checkpoint": []}
    for mode in results:
        for i in range(args.trials):
            wd = root / f"{mode}-{i}"
            when = kill_at_checkpoint(cfg, wd, rng) if mode == "checkpoint" else kill_at_random(cfg, wd, rng, duration)
            code, line = finish(cfg, wd, resume=True)
            row = {"killed_after_s": round(when, 2), "resume_exit": code, "resume": line,
                   "top1": top1(wd) if code == 0 else None}
            results[mode].append(row)
            print(mode, i, row, flush=True)

    summary = {}
    for mode, rows in results.items():
        ok = [r for r in rows if r["resume_exit"] == 0]
        accs = [r["top1"] for r in ok]
        summary[mode] = {"kills": len(rows), "resumed_ok": len(ok),
                         "from_checkpoint": sum("continuing from" in r["resume"] for r in ok),
                         "from_scratch": sum("starting from scratch" in r["resume"] for r in ok),
                         "skipped_a_broken_checkpoint": sum("skipped" in r["resume"] for r in ok),
                         "top1_median": statistics.median(accs) if accs else None,
                         "top1_min": min(accs) if accs else None}
    report = {"uninterrupted_top1": clean, "run_seconds": round(duration, 1), "epochs": args.epochs,
              "load_average": os.getloadavg(), "summary": summary, "trials": results}
    print(json.dumps({k: v for k, v in report.items() if k != "trials"}, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
