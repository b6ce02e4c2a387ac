"""The ``mmpretrain`` and legacy ``mmcls`` scopes: ``mmpretrain.Name`` -> builder callable."""

from __future__ import annotations

from typing import Any, Callable

from gml_core.errors import GmlUserError, did_you_mean, one_of

from . import registries

#: the classifier types gml can train (``model(x)`` returns logits)
CLASSIFIERS = ("ImageClassifier",)


def _model(name: str, scope: str) -> Callable[..., Any]:
    models = registries.models()
    if name not in models.module_dict:
        names = registries.registered_names(models)
        raise GmlUserError(f"unknown mmpretrain model '{scope}.{name}'{did_you_mean(name, names)}; "
                           f"registered: {one_of(names, 20)}")
    if name not in CLASSIFIERS:
        raise GmlUserError(
            f"'{scope}.{name}' is an mmpretrain {_role(models.module_dict[name])}, not a classifier gml can train: "
            f"use type = \"{scope}.ImageClassifier\" with backbone/neck/head tables "
            f"(e.g. backbone = {{type = \"{name}\", ...}})")
    from .models import build_image_classifier

    return build_image_classifier


def _role(cls: Any) -> str:
    module = getattr(cls, "__module__", "")
    for part in ("backbones", "necks", "heads", "losses", "classifiers", "data_preprocessors"):
        if f".{part}." in module:
            return part[:-1] if part != "losses" else "loss"
    return "module"


def _loss(name: str, scope: str) -> Callable[..., Any]:
    models = registries.models()
    cls = models.module_dict.get(name)
    if cls is None or _role(cls) != "loss":
        losses = [n for n, c in models.module_dict.items() if _role(c) == "loss"]
        raise GmlUserError(f"unknown mmpretrain loss '{scope}.{name}'{did_you_mean(name, losses)}; "
                           f"registered: {one_of(losses)}")
    return cls


def _dataset(name: str, scope: str) -> Callable[..., Any]:
    from .datasets import dataset_builder

    return dataset_builder(name, scope)


_KINDS = {"model": _model, "loss": _loss, "dataset": _dataset}


def _resolver(scope: str) -> Callable[[str, str], Callable[..., Any]]:
    def resolve(kind: str, name: str) -> Callable[..., Any]:
        if kind not in _KINDS:
            raise GmlUserError(f"scope '{scope}' provides {one_of(_KINDS)} components, not a {kind} ('{scope}.{name}')")
        return _KINDS[kind](name, scope)

    resolve.__name__ = f"resolve_{scope}"
    return resolve


resolve_mmpretrain = _resolver("mmpretrain")
resolve_mmcls = _resolver("mmcls")
