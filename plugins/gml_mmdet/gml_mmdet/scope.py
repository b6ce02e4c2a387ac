"""The ``mmdet`` scope: ``mmdet.RetinaNet`` (models), ``mmdet.CocoDataset`` / ``mmdet.DigitsDetection``
(datasets) and ``mmdet.<Loss>`` (mmdet's loss modules)."""

from __future__ import annotations

from typing import Any, Callable

from gml_core.api import GmlUserError, did_you_mean, one_of

DATASETS = ("CocoDataset", "DigitsDetection")


def _model(name: str) -> Callable[..., Any]:
    from .models import make_builder

    return make_builder(name)


def _dataset(name: str) -> Callable[..., Any]:
    from . import datasets

    if name == "CocoDataset":
        return datasets.coco_dataset
    if name == "DigitsDetection":
        return datasets.digits_detection
    raise GmlUserError(f"unknown mmdet dataset 'mmdet.{name}'{did_you_mean(name, DATASETS)}; gml reads "
                       f"{one_of(DATASETS)} (any COCO-format dataset by path)")


def _loss(name: str) -> Callable[..., Any]:
    from . import registries

    reg = registries.models()
    cls = reg.module_dict.get(name)
    losses = sorted(n for n, c in reg.module_dict.items() if ".losses." in getattr(c, "__module__", ""))
    if cls is None or name not in losses:
        raise GmlUserError(f"unknown mmdet loss 'mmdet.{name}'{did_you_mean(name, losses)}; "
                           f"registered: {one_of(losses)}")
    return cls


_KINDS = {"model": _model, "dataset": _dataset, "loss": _loss}


def resolve_mmdet(kind: str, name: str) -> Callable[..., Any]:
    if kind not in _KINDS:
        raise GmlUserError(f"scope 'mmdet' provides {one_of(_KINDS)} components, not a {kind} ('mmdet.{name}')")
    return _KINDS[kind](name)
