"""Translate an mmdet (mmengine-style) config, e.g. one with ``_base_ = ['mmdet::retinanet/...']``,
plus an optional ``algorithm`` block into gml's tables.

``model`` becomes the algorithm's ``mmdet.<Detector>`` spec (its ``data_preprocessor``'s
mean/std/``bgr_to_rgb`` go to ``[data]``), the train/val dataloaders' ``CocoDataset`` becomes
``[data]`` of type ``mmdet.CocoDataset`` (annotation files, image folders, mmdet pipelines,
``image_size`` from the largest ``Resize`` scale), ``optim_wrapper``/``train_cfg``/``randomness``
become ``[train]``/``[runtime]``. gml tables written in the same file are merged on top. Keys
with no gml equivalent are named in one ``MMDetConfigWarning``.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

from gml_core.api import ConfigError, merge_dicts

from .models import TRAINABLE
from .registries import SCOPE, strip_scopes

GML_TABLES = ("data", "train", "runtime", "algorithm")
_USED = {"model", "train_dataloader", "val_dataloader", "test_dataloader", "optim_wrapper", "train_cfg",
         "randomness", "work_dir", "load_from", "resume", "default_scope"}
_SILENT = {"env_cfg", "vis_backends", "visualizer", "log_level", "test_evaluator", "val_evaluator", "test_cfg",
           "val_cfg", "auto_scale_lr", "dataset_type", "data_root", "train_pipeline", "test_pipeline",
           "backend_args", "launcher", "log_processor", "default_hooks", "param_scheduler", "custom_hooks"}
_OPTIMIZERS = ("SGD", "Adam", "AdamW")


class MMDetConfigWarning(UserWarning):
    """Parts of an mmdet config that gml does not use."""


def is_mmdet_config(config: dict[str, Any]) -> bool:
    if config.get("default_scope") == SCOPE:
        return True
    model = config.get("model")
    return isinstance(model, dict) and (model.get("_scope_") == SCOPE or model.get("type") in TRAINABLE)


def _model(config: dict[str, Any]) -> dict[str, Any]:
    spec = strip_scopes(config["model"])
    if spec.get("type") not in TRAINABLE:
        raise ConfigError([("model.type", f"'{spec.get('type')}' is not supported; gml trains the detectors "
                                          f"{', '.join(TRAINABLE)}")])
    spec["type"] = f"{SCOPE}.{spec['type']}"
    spec.pop("data_preprocessor", None)
    return spec


def _image_size(pipeline: list[dict[str, Any]]) -> int | None:
    sizes = [max(step["scale"]) if isinstance(step.get("scale"), (list, tuple)) else step.get("scale")
             for step in pipeline if step.get("type") == "Resize"]
    sizes = [s for s in sizes if isinstance(s, int)]
    return max(sizes) if sizes else None


def _data(config: dict[str, Any], problems: list[tuple[str, str]]) -> tuple[dict[str, Any], dict[str, Any]]:
    train_loader = config.get("train_dataloader") or {}
    val_loader = config.get("val_dataloader") or config.get("test_dataloader") or {}
    tds, vds = strip_scopes(train_loader.get("dataset") or {}), strip_scopes(val_loader.get("dataset") or {})
    train: dict[str, Any] = {}
    if not tds:
        return {}, train
    if tds.get("type") != "CocoDataset":
        problems.append(("train_dataloader.dataset.type", f"'{tds.get('type')}' is not supported; gml reads "
                                                          "COCO-format data (CocoDataset)"))
        return {}, train
    data: dict[str, Any] = {"type": f"{SCOPE}.CocoDataset", "data_root": tds.get("data_root", "")}
    for key, ds in (("train", tds), ("val", vds or tds)):
        data[f"{key}_ann"] = ds.get("ann_file", "")
        data[f"{key}_prefix"] = (ds.get("data_prefix") or {}).get("img", "")
    data["pipeline"] = tds.get("pipeline", [])
    if vds.get("pipeline"):
        data["val_pipeline"] = vds["pipeline"]
    classes = (tds.get("metainfo") or {}).get("classes")
    if classes:
        data["classes"] = list(classes)
    size = _image_size(data["pipeline"] + data.get("val_pipeline", []))
    if size:
        data["image_size"] = size
    pre = (config.get("model") or {}).get("data_preprocessor") or {}
    for key, target in (("mean", "mean"), ("std", "std"), ("bgr_to_rgb", "to_rgb")):
        if key in pre:
            data[target] = list(pre[key]) if isinstance(pre[key], (list, tuple)) else pre[key]
    if isinstance(train_loader.get("batch_size"), int):
        train["batch_size"] = train_loader["batch_size"]
    if isinstance(val_loader.get("batch_size"), int):
        train["val_batch_size"] = val_loader["batch_size"]
    return data, train


def _train(config: dict[str, Any], train: dict[str, Any], problems: list, notes: list[str]) -> None:
    opt = strip_scopes((config.get("optim_wrapper") or {}).get("optimizer") or {})
    if opt:
        if opt.get("type") not in _OPTIMIZERS:
            problems.append(("optim_wrapper.optimizer.type",
                             f"'{opt.get('type')}' is not supported; accepted: {', '.join(_OPTIMIZERS)}"))
        else:
            train["optimizer"] = opt["type"]
        for key in ("lr", "momentum", "weight_decay"):
            if key in opt:
                train[key] = opt[key]
    clip = (config.get("optim_wrapper") or {}).get("clip_grad") or {}
    if "max_norm" in clip:
        train["grad_clip"] = clip["max_norm"]
    loop = config.get("train_cfg") or {}
    if loop.get("type") == "IterBasedTrainLoop":
        problems.append(("train_cfg", "iteration-based training is not supported; use "
                                      "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=N)"))
    elif "max_epochs" in loop:
        train["epochs"] = loop["max_epochs"]
        if "val_interval" in loop:
            train["val_interval"] = loop["val_interval"]
    if config.get("param_scheduler"):
        notes.append("param_scheduler (gml's train.lr_schedule applies)")


def _runtime(config: dict[str, Any]) -> dict[str, Any]:
    rt: dict[str, Any] = {}
    rand = config.get("randomness") or {}
    if isinstance(rand.get("seed"), int):
        rt["seed"] = rand["seed"]
    for key in ("work_dir", "load_from"):
        if isinstance(config.get(key), str):
            rt[key] = config[key]
    if isinstance(config.get("resume"), bool):
        rt["resume"] = config["resume"]
    return rt


def translate(config: dict[str, Any], source: str = "") -> dict[str, Any] | None:
    """gml's plain tables for an mmdet config, or None when ``config`` is not one."""
    if not set(config) - set(GML_TABLES) or not is_mmdet_config(config):
        return None
    problems: list[tuple[str, str]] = []
    notes: list[str] = []
    algo = copy.deepcopy(config.get("algorithm") or {"type": "Supervised"})
    if "model" not in algo:
        if not isinstance(config.get("model"), dict):
            raise ConfigError([("algorithm.model", "missing: give algorithm.model or a top-level model dict")],
                              source or None)
        algo["model"] = _model(config)
    data, train = _data(config, problems)
    _train(config, train, problems, notes)
    notes += sorted(k for k in config if k not in _USED | _SILENT | set(GML_TABLES) and not k.startswith("_"))
    if problems:
        raise ConfigError(problems, source or None)
    out: dict[str, Any] = {"algorithm": algo}
    for key, value in (("data", data), ("train", train), ("runtime", _runtime(config))):
        user = config.get(key)
        if isinstance(user, dict) and key == "data" and "type" in user and user["type"] != value.get("type"):
            value = {}  # another dataset replaces the config's one
        out[key] = merge_dicts(value, user) if isinstance(user, dict) else value
    if not out["data"]:
        out.pop("data")
    if notes:
        warnings.warn(f"{source or 'config'}: not used by gml: {', '.join(notes)}", MMDetConfigWarning, stacklevel=2)
    return out
