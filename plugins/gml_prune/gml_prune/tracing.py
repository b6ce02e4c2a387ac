"""torch.fx tracing and shape propagation with user-facing errors.

A part of a model that torch.fx cannot trace (data-dependent control flow, ...)
is reported as one line naming the innermost module being traced and how to
exclude it, instead of a stack trace from inside the tracer.
"""

from __future__ import annotations

import fnmatch
from typing import Sequence

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from gml_core.api import ConfigError


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text[:200]}".rstrip(": ")


def matching_modules(model: nn.Module, patterns: Sequence[str]) -> set[str]:
    """Qualified names of submodules matching any ``fnmatch`` pattern (``layer4.*``)."""
    if not patterns:
        return set()
    names = [n for n, _ in model.named_modules() if n]
    return {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)}


class _Tracer(fx.Tracer):
    """An fx tracer that treats excluded modules as leaves and remembers where it failed."""

    def __init__(self, leaves: set[str]):
        super().__init__()
        self.leaves = leaves
        self.stack: list[str] = []
        self.failed_in: list[str] | None = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        from .attention import ATTENTION_TYPES
        return module_qualified_name in self.leaves or isinstance(m, ATTENTION_TYPES) \
            or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m, forward, args, kwargs):
        self.stack.append(self.path_of_module(m))
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = list(self.stack)
            raise
        finally:
            self.stack.pop()


def trace(model: nn.Module, exclude: Sequence[str] = (), exclude_key: str = "algorithm.exclude") -> fx.GraphModule:
    """Symbolically trace ``model``; modules matching ``exclude`` stay opaque leaves."""
    leaves = matching_modules(model, exclude)
    tracer = _Tracer(leaves)
    try:
        graph = tracer.trace(model)
    except Exception as exc:
        where = [n for n in (tracer.failed_in or []) if n]
        if where:
            name = where[-1]
            cls = type(model.get_submodule(name)).__name__
            msg = (f"cannot trace module '{name}' ({cls}) for channel analysis ({_first_line(exc)}); "
                   f"add \"{name}\" to {exclude_key} to keep it as one opaque layer whose channels are not pruned")
        else:
            msg = (f"cannot trace the forward of {type(model).__name__} itself for channel analysis "
                   f"({_first_line(exc)}); move the dynamic part into a submodule and add its name to {exclude_key}")
        raise ConfigError([(exclude_key, msg)]) from None
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


@torch.no_grad()
def propagate_shapes(gm: fx.GraphModule, model: nn.Module, input_shape: Sequence[int], shape_key: str) -> None:
    """Annotate every node with ``meta['tensor_meta']`` from a zero input (model in eval mode)."""
    shape = [int(s) for s in input_shape]
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ConfigError([(shape_key, f"expected [batch, channels, ...] with positive sizes, got {list(input_shape)}")])
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = model.training
    model.eval()
    try:
        ShapeProp(gm).propagate(torch.zeros(*shape, device=device, dtype=dtype))
    except Exception as exc:
        raise ConfigError([(shape_key, f"the model cannot take an input of shape {shape}: {_first_line(exc)}")]) \
            from None
    finally:
        model.train(was_training)
