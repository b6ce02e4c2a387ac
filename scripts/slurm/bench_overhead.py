"""Engine overhead per trial on Slurm vs local subprocesses, with trivial trials (``true``).

Needs the single-node cluster of ``scripts/slurm/up.sh``. Usage:

    .venv/bin/python scripts/slurm/bench_overhead.py [--trials 12] [--repeats 2]

For each executor and ``parallel_size`` it runs a grid task of N trials whose command is
``true`` with ``search-run -q`` and reports the wall time per trial (best of the repeats),
i.e. submit + queue + poll + finalize overhead. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent


def run_task(work: Path, executor: str, parallel: int, trials: int, slurm_poll: float) -> float:
    name = f"bench_{executor.lower()}_{parallel}_{time.monotonic_ns()}"
    sched = {"type": executor, "parallel_size": parallel, "poll_interval": 0.2}
    if executor == "SlurmScheduler":
        sched["slurm"] = {"poll_interval_s": slurm_poll, "time": "5", "job_name_prefix": "gmlbench"}
    task = {"task": {"name": name, "work_dir": "work", "template": "true {x}",
                     "search_args": {"x": {"type": "Categorical", "data": list(range(trials))}}},
            "searcher": {"type": "GridSearcher", "reward_attribute": "acc"}, "scheduler": sched}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(task))
    t0 = time.perf_counter()
    subprocess.run([str(BIN / "search-run"), str(path), "-q"], cwd=work, check=True, timeout=600,
                   stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) / trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--slurm-poll", type=float, default=0.5, help="scheduler.slurm.poll_interval_s")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gml-slurm-bench-") as tmp:
        work = Path(tmp)
        for executor in ("LocalScheduler", "SlurmScheduler"):
            for parallel in (1, 2):
                best = min(run_task(work, executor, parallel, args.trials, args.slurm_poll)
                           for _ in range(args.repeats))
                rows.append((executor, parallel, best))
                print(f"{executor} parallel_size={parallel}: {best:.2f} s/trial", file=sys.stderr)
    print(f"| executor | parallel_size | s per trivial trial (best of {args.repeats}, {args.trials} trials) |")
    print("| --- | --- | --- |")
    for executor, parallel, value in rows:
        print(f"| {executor} | {parallel} | {value:.2f} |")


if __name__ == "__main__":
    main()
