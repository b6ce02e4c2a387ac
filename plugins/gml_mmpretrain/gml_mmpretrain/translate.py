"""Translate an mmpretrain (mmengine-style) config plus an ``algorithm`` block into gml's tables.

``model`` becomes the algorithm's ``mmpretrain.ImageClassifier`` spec, the train/val
dataloaders become ``[data]`` (an mmpretrain dataset with its pipelines and the data
preprocessor's normalisation), ``optim_wrapper``/``param_scheduler``/``train_cfg``
become ``[train]``, and hooks/randomness become ``[runtime]``. gml tables written in
the same file (``data``, ``train``, ``runtime``) are merged on top. Keys with no gml
equivalent are named in one ``MMPretrainConfigWarning``.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

from gml_core.api import ConfigError, merge_dicts

from .registries import SCOPES, strip_scopes

GML_TABLES = ("data", "train", "runtime", "algorithm")
#: mmengine keys that need no translation (gml has its own defaults for them)
_SILENT = {"default_scope", "env_cfg", "vis_backends", "visualizer", "log_level", "test_dataloader",
           "test_evaluator", "test_cfg", "val_cfg", "auto_scale_lr", "dataset_type", "train_pipeline",
           "test_pipeline", "val_pipeline", "data_preprocessor", "launcher", "log_processor", "bgr_mean",
           "bgr_std", "custom_imports", "default_hooks", "randomness", "load_from", "resume", "work_dir",
           "model", "train_dataloader", "val_dataloader", "val_evaluator", "optim_wrapper", "param_scheduler",
           "train_cfg", "custom_hooks"}
_OPTIMIZERS = ("SGD", "Adam", "AdamW")
_WRAPPED_DATASETS = ("RepeatDataset", "ClassBalancedDataset", "ConcatDataset", "KFoldDataset")


class MMPretrainConfigWarning(UserWarning):
    """Parts of an mmpretrain config that gml does not use."""


def _type(value: Any) -> str:
    return value.get("type", "") if isinstance(value, dict) else ""


def is_mmpretrain_config(config: dict[str, Any]) -> bool:
    """An mmengine config for mmpretrain: its default scope, its ``_scope_`` marks or its model type."""
    if config.get("default_scope") in SCOPES:
        return True
    model = config.get("model")
    if isinstance(model, dict) and (model.get("_scope_") in SCOPES or _type(model) == "ImageClassifier"):
        return True
    algo_model = (config.get("algorithm") or {}).get("model") if isinstance(config.get("algorithm"), dict) else None
    return _type(algo_model).partition(".")[0] in SCOPES


def _drop_scope_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_scope_keys(v) for k, v in value.items() if k != "_scope_"}
    if isinstance(value, list):
        return [_drop_scope_keys(v) for v in value]
    return value


def model_spec(model: dict[str, Any], data_preprocessor: Any = None) -> dict[str, Any]:
    """An mmpretrain model dict as gml's ``mmpretrain.ImageClassifier`` spec."""
    spec = strip_scopes(model)
    if spec.get("type") != "ImageClassifier":
        raise ConfigError([("model.type", f"'{spec.get('type')}' is not supported; gml trains mmpretrain "
                                          "ImageClassifier models")])
    spec["type"] = "mmpretrain.ImageClassifier"
    if isinstance(data_preprocessor, dict) and "data_preprocessor" not in spec:
        spec["data_preprocessor"] = strip_scopes(data_preprocessor)
    return spec


def _scope_classifiers(value: Any) -> Any:
    """Bare ``ImageClassifier`` types inside the algorithm table get the mmpretrain scope."""
    if isinstance(value, dict):
        out = {k: _scope_classifiers(v) for k, v in value.items()}
        if out.get("type") == "ImageClassifier":
            out["type"] = "mmpretrain.ImageClassifier"
        return out
    if isinstance(value, list):
        return [_scope_classifiers(v) for v in value]
    return value


def _algorithm(config: dict[str, Any]) -> dict[str, Any]:
    algo = _drop_scope_keys(copy.deepcopy(config.get("algorithm") or {"type": "Supervised"}))
    if isinstance(algo.get("type"), str) and algo["type"].startswith("gml."):
        algo["type"] = algo["type"][4:]
    if "model" not in algo:
        if not isinstance(config.get("model"), dict):
            raise ConfigError([("algorithm.model", "missing: give algorithm.model or a top-level model dict")])
        algo["model"] = model_spec(config["model"], config.get("data_preprocessor"))
    return _scope_classifiers(algo)


def _same(a: Any, b: Any) -> bool:
    """Equal values; paths that differ only by a trailing slash count as equal."""
    if isinstance(a, str) and isinstance(b, str):
        return a.rstrip("/") == b.rstrip("/")
    return a == b


def _data(config: dict[str, Any], problems: list[tuple[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``[data]`` and the loader part of ``[train]``."""
    train_loader = config.get("train_dataloader") or {}
    val_loader = config.get("val_dataloader") or config.get("test_dataloader") or {}
    tds, vds = strip_scopes(train_loader.get("dataset") or {}), strip_scopes(val_loader.get("dataset") or {})
    train: dict[str, Any] = {}
    if not tds:
        return {}, train
    if tds.get("type") in _WRAPPED_DATASETS or vds.get("type") in _WRAPPED_DATASETS:
        problems.append(("train_dataloader.dataset.type", f"dataset wrappers ({', '.join(_WRAPPED_DATASETS)}) "
                                                          "are not supported; use the inner dataset"))
        return {}, train
    if vds and vds.get("type") != tds.get("type"):
        problems.append(("val_dataloader.dataset.type", f"'{vds.get('type')}' differs from the training dataset "
                                                        f"'{tds.get('type')}'; gml needs one dataset type"))
    data: dict[str, Any] = {"type": f"mmpretrain.{tds.pop('type')}"}
    vds.pop("type", None)
    data["pipeline"] = tds.pop("pipeline", [])
    if vds:
        data["val_pipeline"] = vds.pop("pipeline", [])
    for key in sorted(set(tds) | set(vds)):
        if key in tds and key in vds and _same(tds[key], vds[key]):
            data[key] = tds[key]
        else:
            if key in tds:
                data.setdefault("train", {})[key] = tds[key]
            if key in vds:
                data.setdefault("val", {})[key] = vds[key]
    pre = config.get("data_preprocessor") or (config.get("model") or {}).get("data_preprocessor") or {}
    for key in ("mean", "std", "to_rgb"):
        if key in pre:
            data[key] = pre[key]
    for key, target in (("batch_size", "batch_size"), ("num_workers", "num_workers")):
        if isinstance(train_loader.get(key), int):
            train[target] = train_loader[key]
    if isinstance(val_loader.get("batch_size"), int):
        train["val_batch_size"] = val_loader["batch_size"]
    return data, train


def _optim(config: dict[str, Any], train: dict[str, Any], problems: list, notes: list[str]) -> None:
    wrapper = strip_scopes(config.get("optim_wrapper") or {})
    opt = wrapper.get("optimizer") or {}
    if opt:
        if opt.get("type") not in _OPTIMIZERS:
            problems.append(("optim_wrapper.optimizer.type",
                             f"'{opt.get('type')}' is not supported; accepted: {', '.join(_OPTIMIZERS)}"))
        else:
            train["optimizer"] = opt["type"]
        for key in ("lr", "momentum", "weight_decay", "nesterov"):
            if key in opt:
                train[key] = opt[key]
        notes += [f"optim_wrapper.optimizer.{k}" for k in opt if k not in ("type", "lr", "momentum",
                                                                           "weight_decay", "nesterov")]
    clip = wrapper.get("clip_grad") or {}
    if "max_norm" in clip:
        train["grad_clip"] = clip["max_norm"]
    notes += [f"optim_wrapper.{k}" for k in wrapper if k not in ("type", "optimizer", "clip_grad")]
    if wrapper.get("type", "OptimWrapper") != "OptimWrapper":
        notes.append(f"optim_wrapper.type={wrapper['type']}")


def _schedule(config: dict[str, Any], train: dict[str, Any], notes: list[str]) -> None:
    scheds = config.get("param_scheduler")
    scheds = [scheds] if isinstance(scheds, dict) else list(scheds or [])
    train["lr_schedule"] = "constant"
    for i, sched in enumerate(strip_scopes(scheds)):
        kind, by_epoch = sched.get("type"), sched.get("by_epoch", True)
        if kind == "LinearLR" and not by_epoch and sched.get("begin", 0) == 0 and isinstance(sched.get("end"), int):
            train["warmup_iters"] = sched["end"]
            if sched.get("start_factor", 0.1) != 0.1:
                notes.append(f"param_scheduler[{i}].start_factor (gml warms up from 0.1)")
        elif kind == "MultiStepLR" and by_epoch:
            train["lr_schedule"], train["lr_steps"] = "step", list(sched.get("milestones", []))
            if sched.get("gamma", 0.1) != 0.1:
                notes.append(f"param_scheduler[{i}].gamma (gml divides by 10)")
        elif kind == "StepLR" and by_epoch and isinstance(sched.get("step_size"), int):
            epochs = train.get("epochs", 0)
            train["lr_schedule"] = "step"
            train["lr_steps"] = list(range(sched["step_size"], max(epochs, sched["step_size"] + 1),
                                           sched["step_size"]))
            if sched.get("gamma", 0.1) != 0.1:
                notes.append(f"param_scheduler[{i}].gamma (gml divides by 10)")
        elif kind == "CosineAnnealingLR":
            train["lr_schedule"] = "cosine"
        elif kind != "ConstantLR":
            notes.append(f"param_scheduler[{i}] ({kind}, by_epoch={by_epoch})")


def _train_loop(config: dict[str, Any], train: dict[str, Any], problems: list) -> None:
    loop = config.get("train_cfg") or {}
    if not loop:
        return
    if loop.get("type") == "IterBasedTrainLoop" or loop.get("by_epoch") is False:
        problems.append(("train_cfg", "iteration-based training is not supported; use "
                                      "train_cfg = dict(by_epoch=True, max_epochs=N)"))
        return
    for key, target in (("max_epochs", "epochs"), ("val_interval", "val_interval")):
        if key in loop:
            train[target] = loop[key]


def _label_smoothing(model: Any, train: dict[str, Any], notes: list[str]) -> None:
    loss = ((model or {}).get("head") or {}).get("loss") if isinstance(model, dict) else None
    if _type(loss).rpartition(".")[2] == "LabelSmoothLoss":
        if loss.get("mode", "original") == "original":
            train["label_smoothing"] = loss.get("label_smooth_val", 0.0)
        else:
            notes.append(f"model.head.loss.mode={loss.get('mode')} (gml uses the 'original' label smoothing)")


def _runtime(config: dict[str, Any]) -> dict[str, Any]:
    rt: dict[str, Any] = {}
    hooks = config.get("default_hooks") or {}
    if isinstance((hooks.get("logger") or {}).get("interval"), int):
        rt["log_interval"] = hooks["logger"]["interval"]
    ckpt = hooks.get("checkpoint") or {}
    for key, target in (("interval", "checkpoint_interval"), ("max_keep_ckpts", "max_keep_ckpts")):
        if isinstance(ckpt.get(key), int) and ckpt[key] > 0:
            rt[target] = ckpt[key]
    rand = config.get("randomness") or {}
    if isinstance(rand.get("seed"), int):
        rt["seed"] = rand["seed"]
    if isinstance(rand.get("deterministic"), bool):
        rt["deterministic"] = rand["deterministic"]
    if isinstance(config.get("load_from"), str):
        rt["load_from"] = config["load_from"]
    if isinstance(config.get("resume"), bool):
        rt["resume"] = config["resume"]
    if isinstance(config.get("work_dir"), str):
        rt["work_dir"] = config["work_dir"]
    return rt


def _evaluator(config: dict[str, Any], problems: list) -> None:
    evaluator = config.get("val_evaluator")
    for i, metric in enumerate(evaluator if isinstance(evaluator, list) else [evaluator] if evaluator else []):
        if _type(metric).rpartition(".")[2] != "Accuracy":
            problems.append((f"val_evaluator[{i}]" if isinstance(evaluator, list) else "val_evaluator",
                             f"metric '{_type(metric)}' is not supported; gml reports mmpretrain's top-1/top-5 "
                             "Accuracy"))


def translate(config: dict[str, Any], source: str = "") -> dict[str, Any] | None:
    """gml's plain tables for an mmpretrain config, or None when ``config`` is not one."""
    if not set(config) - set(GML_TABLES) or not is_mmpretrain_config(config):
        return None
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    out: dict[str, Any] = {"algorithm": _algorithm(config)}
    data, train = _data(config, problems)
    _train_loop(config, train, problems)
    _optim(config, train, problems, notes)
    _schedule(config, train, notes)
    _label_smoothing(config.get("model"), train, notes)
    _evaluator(config, problems)
    if (config.get("custom_hooks") or []):
        notes.append("custom_hooks")
    notes += sorted(k for k in config if k not in _SILENT and k not in GML_TABLES and not k.startswith("_"))
    if problems:
        raise ConfigError(problems, source or None)
    for key, value in (("data", data), ("train", train), ("runtime", _runtime(config))):
        user = config.get(key)
        if isinstance(user, dict) and key == "data" and "type" in user and user["type"] != value.get("type"):
            value = {}
        out[key] = merge_dicts(value, user) if isinstance(user, dict) else value
    if not out["data"]:
        out.pop("data")
    if notes:
        warnings.warn(f"{source or 'config'}: not used by gml: {', '.join(notes)}", MMPretrainConfigWarning,
                      stacklevel=2)
    return out
