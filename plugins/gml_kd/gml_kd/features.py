"""Capture intermediate features with forward hooks, without touching the model's code."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from gml_core.errors import GmlUserError, did_you_mean
from torch import nn


def resolve_module(model: nn.Module, path: str, key: str, role: str) -> nn.Module:
    """The sub-module at ``path`` (``""`` is the model itself); a did-you-mean error otherwise."""
    if path == "":
        return model
    modules = dict(model.named_modules())
    if path in modules:
        return modules[path]
    names = [n for n in modules if n]
    parent = path.rsplit(".", 1)[0] if "." in path else ""
    siblings = [n for n in names if n.startswith(parent + ".") and "." not in n[len(parent) + 1:]] if parent \
        else [n for n in names if "." not in n]
    hint = did_you_mean(path, names) or (f"; modules under '{parent or type(model).__name__}': "
                                         f"{', '.join(siblings[:12])}" if siblings else "")
    raise GmlUserError(f"{key}: the {role} ({type(model).__name__}) has no module '{path}'{hint}")


class FeatureRecorder:
    """Records the outputs of named modules while ``recording()`` is active.

    Hooks exist only inside ``recording()``, so the model stays hook-free for
    evaluation, export, scripting and copying. Outputs are cloned: a module followed
    by an in-place op (``ReLU(inplace=True)`` after BatchNorm) would otherwise hand
    over a tensor that changes after the hook ran.
    """

    def __init__(self, model: nn.Module, paths: dict[str, str], role: str):
        """``paths`` maps a module path to the config key naming it (for error messages)."""
        self.modules = {path: resolve_module(model, path, key, role) for path, key in paths.items()}
        self.outputs: dict[str, torch.Tensor] = {}
        self.role = role

    def _hook(self, path: str):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if not isinstance(output, torch.Tensor):
                raise GmlUserError(f"{self.role} module '{path}' returns {type(output).__name__}, not a tensor; "
                                   "capture one of its sub-modules instead")
            self.outputs[path] = output.clone()
        return hook

    @contextmanager
    def recording(self) -> Iterator[dict[str, torch.Tensor]]:
        self.outputs = {}
        handles = [m.register_forward_hook(self._hook(p)) for p, m in self.modules.items()]
        try:
            yield self.outputs
        finally:
            for h in handles:
                h.remove()
            self.outputs = {}  # drop references (and autograd graphs) once the step is done

    def take(self, path: str) -> torch.Tensor:
        try:
            return self.outputs[path]
        except KeyError:
            raise GmlUserError(f"{self.role} module '{path}' did not run in the forward pass; "
                               "pick a module the model actually calls") from None
