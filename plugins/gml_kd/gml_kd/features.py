"""Capture intermediate features with forward hooks, without touching the model's code."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import nn

from gml_core.api import GmlUserError, did_you_mean


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
    evaluation, export, scripting and copying. A module whose output is changed in
    place after it returns (a BatchNorm followed by ``ReLU(inplace=True)``) has its
    output cloned; ``calibrate()`` finds those modules in a dry run by watching the
    tensors' version counters (until then every output is cloned). ``take`` refuses an
    output that changed after capture rather than hand over wrong values.
    """

    def __init__(self, model: nn.Module, paths: dict[str, str], role: str):
        """``paths`` maps a module path to the config key naming it (for error messages)."""
        self.modules = {path: resolve_module(model, path, key, role) for path, key in paths.items()}
        self.outputs: dict[str, torch.Tensor] = {}
        self.versions: dict[str, int] = {}
        self.clone_paths: set[str] = set(self.modules)
        self.role = role

    def _hook(self, path: str, clone: bool):
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if not isinstance(output, torch.Tensor):
                raise GmlUserError(f"{self.role} module '{path}' returns {type(output).__name__}, not a tensor; "
                                   "capture one of its sub-modules instead")
            out = output.clone() if clone else output
            self.outputs[path] = out
            self.versions[path] = out._version
        return hook

    @contextmanager
    def recording(self, clone_all: Optional[bool] = None) -> Iterator[dict[str, torch.Tensor]]:
        self.outputs, self.versions = {}, {}
        handles = [m.register_forward_hook(self._hook(p, p in self.clone_paths if clone_all is None else clone_all))
                   for p, m in self.modules.items()]
        try:
            yield self.outputs
        finally:
            for h in handles:
                h.remove()
            self.outputs, self.versions = {}, {}  # drop references (and autograd graphs) after the step

    @contextmanager
    def calibrate(self) -> Iterator[dict[str, torch.Tensor]]:
        """Record without cloning; afterwards clone exactly the outputs that changed in place."""
        with self.recording(clone_all=False) as outputs:
            yield outputs
            self.clone_paths = {p for p, t in outputs.items() if t._version != self.versions[p]}

    def take(self, path: str) -> torch.Tensor:
        try:
            out = self.outputs[path]
        except KeyError:
            raise GmlUserError(f"{self.role} module '{path}' did not run in the forward pass; "
                               "pick a module the model actually calls") from None
        if out._version != self.versions[path]:
            self.clone_paths.add(path)
            raise GmlUserError(f"{self.role} module '{path}': its output was changed in place after capture "
                               "(an in-place op follows it only in this mode); it is cloned from now on, "
                               "run again")
        return out
