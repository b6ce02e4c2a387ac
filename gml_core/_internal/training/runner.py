"""Build an mmengine Runner from a typed ``RunConfig``, train, and summarise."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import attrs
import torch

from ..algorithms.base import BuildContext
from ..checkpoint import atomic_write_text
from ..components import build
from ..config.loader import config_to_dict
from ..config.schema import RunConfig
from ..plugins import build_algorithm, get_host
from .console import header, quiet_console, restore_console
from .hooks import GmlHook
from .optim import scheduler_configs
from .run_info import RunInfo


@attrs.frozen
class RunResult:
    """What ``gml run`` reports at the end."""

    work_dir: Path
    metrics: dict[str, float]
    params: int
    flops: int
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    log_file: Path | None
    extra: dict[str, Any]

    def rows(self) -> list[tuple[str, str]]:
        from ..resources import format_count

        rows = [(k, f"{v:.2f}") for k, v in self.metrics.items()]
        rows += [("params", format_count(self.params, "M")), ("FLOPs", format_count(self.flops, "M"))]
        rows += [(k, str(v)) for k, v in self.extra.items()]
        files = [f"{name}: {self._in_work_dir(path)}" for name, path in
                 (("best", self.best_checkpoint), ("last", self.last_checkpoint), ("log", self.log_file)) if path]
        rows += [("work dir", str(self.work_dir)), ("files", ", ".join(files) or "-")]
        return rows

    def _in_work_dir(self, path: Path) -> str:
        """``path`` relative to the work dir when it lies inside it (either may be relative to the cwd)."""
        try:
            return str(Path(path).resolve().relative_to(Path(self.work_dir).resolve()))
        except ValueError:
            return str(path)


def _visualizer(config: RunConfig, work_dir: Path) -> dict[str, Any]:
    backends = []
    for name in config.runtime.visualizer:
        if name == "local":
            backends.append(dict(type="LocalVisBackend"))
        elif name == "tensorboard":
            backends.append(dict(type="TensorboardVisBackend"))
        else:
            uri = config.runtime.mlflow_tracking_uri or f"sqlite:///{(work_dir / 'mlflow.db').resolve()}"
            backends.append(dict(type="MLflowVisBackend", tracking_uri=uri, exp_name=config.runtime.mlflow_experiment,
                                 run_name=mlflow_run_name(work_dir),
                                 artifact_location=(work_dir / "mlflow_artifacts").resolve().as_uri()))
    return dict(type="Visualizer", vis_backends=backends, name=f"gml-{os.getpid()}-{id(config)}")


def mlflow_run_name(work_dir: Path) -> str:
    """Unique per run: the work dir's name, the start time and the process id."""
    return f"{work_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def _runner_cfg(config: RunConfig, work_dir: Path) -> dict[str, Any]:
    """The cfg mmengine records (checkpoint meta, MLflow params): the small tables as data, the
    algorithm table as one JSON string, since mmengine re-formats the whole cfg with yapf at
    every checkpoint and a large algorithm table made that cost seconds per save."""
    plain = config_to_dict(config)
    algorithm = json.dumps(plain.pop("algorithm"), default=repr)
    return dict(gml={**plain, "algorithm": algorithm}, work_dir=str(work_dir))


def _loader(dataset: Any, batch_size: int, shuffle: bool, workers: int) -> dict[str, Any]:
    return dict(dataset=dataset, batch_size=batch_size, num_workers=workers, persistent_workers=False,
                sampler=dict(type="DefaultSampler", shuffle=shuffle), collate_fn=dict(type="default_collate"))


def default_work_dir(config: RunConfig) -> Path:
    return Path(config.runtime.work_dir or Path("work_dirs") / Path(config.source or "run").stem)


def build_parts(config: RunConfig, work_dir: Path) -> tuple[Any, Any]:
    """The dataset bundle and the algorithm of a run: what ``gml run`` builds before its first
    step, and what ``gml config check`` builds to validate everything."""
    rt = config.runtime
    bundle = build("dataset", config.data, "data")
    context = BuildContext(bundle.info, config.train, work_dir, rt.trust_checkpoint)
    algorithm = build_algorithm(config.algorithm, context)
    if rt.load_from:
        _load_from(algorithm, rt.load_from, rt.trust_checkpoint)
    return bundle, algorithm


def _claim_work_dir(config: RunConfig) -> tuple[Any, str, Path]:
    """Rank 0 locks (and, without --resume, chooses) the work dir; every rank learns which."""
    import torch.distributed as dist

    from .workdir import claim

    lock, note = None, ""
    if not dist.is_initialized() or dist.get_rank() == 0:
        lock, note = claim(default_work_dir(config), config.runtime.resume)
        chosen = [str(lock.work_dir)]
    else:
        chosen = [""]
    if dist.is_initialized():
        dist.broadcast_object_list(chosen, src=0)
    return lock, note, Path(chosen[0])


def _resume_from(work_dir: Path, trust: bool) -> str | None:
    """The checkpoint ``--resume`` continues from (one line says which, and what was skipped)."""
    from .checkpoints import SAFE_SCHEME, TRUSTED_SCHEME, newest_intact

    path, skipped = newest_intact(work_dir, trust)
    notes = f" (skipped: {'; '.join(skipped)})" if skipped else ""
    if path is None:
        print(f"--resume: no intact checkpoint in {work_dir}{notes}; starting from scratch", flush=True)
        return None
    print(f"--resume: continuing from {path}{notes}", flush=True)
    return (TRUSTED_SCHEME if trust else SAFE_SCHEME) + str(path)


def _runner_class() -> type:
    from mmengine.runner import Runner

    class GmlRunner(Runner):
        """mmengine's Runner whose console shows warnings only, unless ``runtime.console`` is verbose
        (its logger is built, and writes the environment and config, inside ``Runner.__init__``)."""

        def __init__(self, *args: Any, console: str = "normal", **kwargs: Any):
            self._gml_console = console
            super().__init__(*args, **kwargs)

        def build_logger(self, *args: Any, **kwargs: Any) -> Any:
            logger = super().build_logger(*args, **kwargs)
            quiet_console(logger, self._gml_console)
            return logger

    return GmlRunner


def build_runner(config: RunConfig, work_dir: Path) -> tuple[Any, Any, GmlHook]:
    """The mmengine Runner, the algorithm and gml's hook for one run in ``work_dir`` (claimed)."""
    from mmengine.evaluator import Evaluator
    from mmengine.runner import set_random_seed

    from .checkpoints import GmlCheckpointHook
    rt, train = config.runtime, config.train
    set_random_seed(rt.seed, deterministic=rt.deterministic)
    bundle, algorithm = build_parts(config, work_dir)
    train_loader = _loader(bundle.train, train.batch_size, True, train.num_workers)
    val_loader = _loader(bundle.val, train.val_batch_size, False, train.num_workers)
    run_info = RunInfo(work_dir, None, None, bundle.info, config,
                       metric=(lambda: bundle.metric(algorithm)) if bundle.metric is not None else None,
                       indicator=bundle.best_indicator)
    metric = run_info.make_metric()
    hook = GmlHook(run_info, get_host(), progress=rt.progress and _is_tty(), console=rt.console)
    distributed = rt.launcher != "none"
    resume_from = _resume_from(work_dir, rt.trust_checkpoint) if rt.resume else None
    runner = _runner_class()(
        console=rt.console,
        model=algorithm,
        work_dir=str(work_dir),
        train_dataloader=train_loader,
        val_dataloader=val_loader,
        val_evaluator=Evaluator([metric]),
        train_cfg=dict(by_epoch=True, max_epochs=train.epochs, val_interval=train.val_interval),
        val_cfg=dict(),
        optim_wrapper=algorithm.build_optim_wrapper(train),
        param_scheduler=scheduler_configs(train) or None,
        default_hooks=dict(
            timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=rt.log_interval),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=None,  # replaced by GmlCheckpointHook (crash-safe)
            sampler_seed=dict(type="DistSamplerSeedHook"),
        ),
        custom_hooks=[hook, GmlCheckpointHook(rt.checkpoint_interval, rt.max_keep_ckpts, rt.save_best,
                                                bundle.best_indicator)],
        launcher=rt.launcher,
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo")),
        randomness=dict(seed=rt.seed, deterministic=rt.deterministic),
        visualizer=_visualizer(config, work_dir),
        resume=resume_from is not None,
        load_from=resume_from,
        cfg=dict(_runner_cfg(config, work_dir),
                 **({"model_wrapper_cfg": dict(type="GmlDataParallel")} if distributed else {})),
        experiment_name=f"{work_dir.name}",
    )
    run_info.train_loader = runner.train_dataloader
    run_info.val_loader = runner.val_dataloader
    return runner, algorithm, hook


def _load_from(algorithm: Any, path: str, trust: bool) -> None:
    """Initialise the algorithm's weights (mmengine's own loader cannot honour ``--trust-checkpoint``)."""
    from mmengine.logging import print_log

    from ..checkpoint import extract_state_dict, load_file

    result = algorithm.load_state_dict(extract_state_dict(load_file(path, trust)), strict=False)
    print_log(f"load_from {path}: {len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected keys",
              logger="current")


def _is_tty() -> bool:
    import sys

    return sys.stdout.isatty()


def _finish(runner: Any, algorithm: Any, hook: GmlHook, work_dir: Path) -> RunResult:
    from ..resources import count_flops, count_params
    from .checkpoints import BEST, LAST_CHECKPOINT

    deploy = algorithm.deploy_model()
    # a deployed model that differs from the trained one (pruned, subnet, int8) is evaluated itself
    metrics = hook.last_metrics if deploy is algorithm.model and hook.last_metrics else hook.run_info.evaluate(deploy)
    params = count_params(deploy)
    flops = count_flops(deploy, hook.run_info.data.input_shape)
    best_path = work_dir / BEST if (work_dir / BEST).is_file() else None
    last_ref = work_dir / LAST_CHECKPOINT
    last_path = Path(last_ref.read_text().strip()) if last_ref.is_file() else None
    last_path = last_path if last_path is not None and last_path.is_file() else None
    log_file = Path(runner.log_dir) / f"{runner.timestamp}.log"
    result = RunResult(work_dir, metrics, params, flops, best_path, last_path,
                       log_file if log_file.is_file() else None, hook.summary_rows)
    summary = {"metrics": metrics, "params": params, "flops": flops,
               "best_checkpoint": str(best_path or ""), "last_checkpoint": str(last_path or ""),
               "log": str(result.log_file or ""), "extra": {k: str(v) for k, v in hook.summary_rows.items()}}
    atomic_write_text(work_dir / "summary.json", json.dumps(summary, indent=2))
    return result


def run(config: RunConfig) -> RunResult | None:
    """Train and evaluate in a work dir this run owns; returns the summary on rank 0."""
    from .dist import init_distributed, shutdown_distributed

    owns_process_group = init_distributed(config.runtime.launcher)
    lock, note, work_dir = _claim_work_dir(config)
    started = False
    runner = hook = None
    try:
        if note:
            print(note, flush=True)
        runner, algorithm, hook = build_runner(config, work_dir)
        started = True
        if runner.rank == 0 and config.runtime.console != "quiet":
            print(header(config, work_dir, _device(runner), Path(runner.log_dir) / f"{runner.timestamp}.log"),
                  flush=True)
        runner.train()
        if runner.rank != 0:
            return None
        with torch.no_grad():
            return _finish(runner, algorithm, hook, work_dir)
    finally:
        if hook is not None:
            hook.close()
        if runner is not None:
            restore_console(runner.logger)
        if lock is not None:
            lock.release(failed=not started)
        if owns_process_group:
            shutdown_distributed()


def _device(runner: Any) -> str:
    param = next(iter(runner.model.parameters()), None)
    device = str(param.device) if param is not None else "cpu"
    return f"{device} x{runner.world_size}" if runner.distributed else device
