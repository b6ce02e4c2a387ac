"""The ``mmpretrain`` and legacy ``mmcls`` scopes: ``mmpretrain.Name`` -> builder callable."""

from __future__ import annotations

from typing import Any, Callable

from gml_core.api import GmlUserError, did_you_mean, one_of

from . import registries

#: the classifier types gml can train (``model(x)`` returns logits)
CLASSIFIERS = ("ImageClassifier",)


def _model(name: str, scope: str) -> Callable[..., Any]:
    models = registries.models()
    if name not in models.module_dict:
        names = registries.registered_names(models)
        classifiers = [n for n in names if registries.role_of(models.module_dict[n]) == "classifier"]
        raise GmlUserError(f"unknown mmpretrain model '{scope}.{name}'{did_you_mean(name, names)}; gml trains "
                           f"{one_of(CLASSIFIERS)} (with any backbone, neck and head of mmpretrain's registry); "
                           f"mmpretrain classifiers: {one_of(classifiers)}")
    if name not in CLASSIFIERS:
        raise GmlUserError(
            f"'{scope}.{name}' is an mmpretrain {registries.role_of(models.module_dict[name])}, not a classifier "
            f"gml can train: "
            f"use type = \"{scope}.ImageClassifier\" with backbone/neck/head tables "
            f"(e.g. backbone = {{type = \"{name}\", ...}})")
    from .models import build_image_classifier

    return build_image_classifier


def _loss(name: str, scope: str) -> Callable[..., Any]:
    models = registries.models()
    cls = models.module_dict.get(name)
    if cls is None or registries.role_of(cls) != "loss":
        losses = [n for n, c in models.module_dict.items() if registries.role_of(c) == "loss"]
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
