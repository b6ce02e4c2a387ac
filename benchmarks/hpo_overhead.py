"""Engine overhead: wall time per trial for trivial trials (`true`), gml-hpo vs Optuna.

gml-hpo runs a RandomSearcher task whose template is ``true {x}`` through the real
scheduler (SQLite store, trial wrapper, metrics reading); Optuna runs the same command
with ``subprocess.run`` inside ``study.optimize`` on a JournalFile storage (``n_jobs`` =
parallel). A bare loop of ``bash -c true`` gives the cost of starting the processes.

    python benchmarks/hpo_overhead.py --trials 60 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def gml_hpo_run(trials: int, parallel: int, root: Path) -> tuple[float, float]:
    from gml_hpo.scheduler import Scheduler
    from gml_hpo.store import TaskStore
    from gml_hpo.taskfile import load_task

    raw = {"task": {"name": f"overhead_p{parallel}", "template": "true {x}", "work_dir": str(root),
                    "search_args": {"x": {"type": "Real", "lower": 0.0, "upper": 1.0}}},
           "searcher": {"type": "RandomSearcher", "seed": 0},
           "scheduler": {"parallel_size": parallel, "stop_criterion": {"max_tries": trials}}}
    cfg = load_task(raw, cwd=root)
    store = TaskStore.create(cfg.task_dir, {"name": cfg.name, "config": raw, "cwd": str(root)})
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    Scheduler(cfg, store).run()
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    n = store.count_trials()
    store.close()
    assert n == trials
    return wall / trials, (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / trials


def optuna_run(trials: int, parallel: int, root: Path) -> tuple[float, float]:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(root / f"optuna_p{parallel}.log")))
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        subprocess.run(["bash", "-c", f"true {x}"], check=True)
        return 0.0

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=parallel)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    return wall / trials, (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / trials


def bare_run(trials: int, parallel: int, root: Path) -> tuple[float, float]:
    t0 = time.perf_counter()
    for _ in range(trials // parallel):
        procs = [subprocess.Popen(["bash", "-c", "true"]) for _ in range(parallel)]
        for p in procs:
            p.wait()
    return (time.perf_counter() - t0) / trials, 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"{'engine':10s} {'parallel':>8s} {'ms/trial (median)':>18s} {'scheduler CPU ms/trial':>23s}")
    for parallel in (1, 2):
        for name, fn in (("bash loop", bare_run), ("gml-hpo", gml_hpo_run), ("optuna", optuna_run)):
            walls, cpus = [], []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    wall, cpu = fn(args.trials, parallel, Path(tmp))
                walls.append(wall)
                cpus.append(cpu)
            print(f"{name:10s} {parallel:8d} {1000 * statistics.median(walls):18.1f} "
                  f"{1000 * statistics.median(cpus):23.1f}", flush=True)


if __name__ == "__main__":
    main()
