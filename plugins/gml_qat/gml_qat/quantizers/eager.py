"""``TorchDefaultQuantizer``: torch.ao eager-mode QAT with stubs placed by module name."""

from __future__ import annotations

import logging
from typing import Any, Literal, Mapping, Optional

import torch
from torch import nn

from gml_core.api import ConfigError, GmlUserError, did_you_mean

from ..qconfig import QConfigOverride
from ..regions import check_name, execution_order, lookup
from .base import Quantizer


class QuantIn(nn.Module):
    """Quantizes the input of ``module`` (the start of the quantized region)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        from torch.ao.quantization import QuantStub

        self.quant = QuantStub()
        self.module = module

    def forward(self, x: torch.Tensor) -> Any:
        return self.module(self.quant(x))


class DeQuantOut(nn.Module):
    """Dequantizes the output of ``module`` (the end of the quantized region)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        from torch.ao.quantization import DeQuantStub

        self.module = module
        self.dequant = DeQuantStub()

    def forward(self, *args: Any) -> Any:
        return self.dequant(self.module(*args))


class QuantDeQuant(nn.Module):
    """Both: ``module`` alone is the quantized region."""

    def __init__(self, module: nn.Module):
        super().__init__()
        from torch.ao.quantization import DeQuantStub, QuantStub

        self.quant = QuantStub()
        self.module = module
        self.dequant = DeQuantStub()

    def forward(self, x: torch.Tensor) -> Any:
        return self.dequant(self.module(self.quant(x)))


def fusable_patterns() -> list[tuple[type, ...]]:
    """Module-type sequences torch can fuse for QAT."""
    from ..fusion import qat_fusable_patterns

    return qat_fusable_patterns()


def _pattern_text(types: tuple[type, ...]) -> str:
    return "(" + ", ".join(t.__name__ for t in types) + ")"


def check_fuse_config(model: nn.Module, fuse_config: Mapping[str, Any]) -> list[tuple[str, list[list[str]]]]:
    """Validate ``fuse_config`` against ``model``; returns ``[(parent, patterns)]``. All problems at once."""
    problems: list[tuple[str, str]] = []
    out: list[tuple[str, list[list[str]]]] = []
    modules = dict(model.named_modules())
    supported = {p: p for p in fusable_patterns()}
    for parent, patterns in fuse_config.items():
        key = f'fuse_config["{parent}"]'
        if parent and parent not in modules:
            try:
                check_name(model, parent, key)
            except ConfigError as exc:
                problems.extend(exc.problems)
            continue
        if not isinstance(patterns, (list, tuple)) or not all(isinstance(p, (list, tuple)) for p in patterns):
            problems.append((key, f"expected a list of module-name lists like [[\"conv\", \"bn\", \"relu\"]], "
                                  f"got {patterns!r}"))
            continue
        good: list[list[str]] = []
        for i, pattern in enumerate(patterns):
            pkey = f"{key}[{i}]"
            if len(pattern) < 2 or not all(isinstance(n, str) for n in pattern):
                problems.append((pkey, f"a fuse pattern lists two or three module names, got {list(pattern)!r}"))
                continue
            full = [f"{parent}.{n}" if parent else n for n in pattern]
            missing = [n for n in full if n not in modules]
            if missing:
                problems.append((pkey, f"no module named '{missing[0]}'{did_you_mean(missing[0], modules)}"))
                continue
            types = tuple(type(modules[n]) for n in full)
            if types not in supported:
                shown = ", ".join(_pattern_text(p) for p in supported)
                problems.append((pkey, f"torch cannot fuse {list(pattern)} = {_pattern_text(types)}; "
                                       f"fusable patterns: {shown}"))
                continue
            good.append(list(pattern))
        out.append((parent, good))
    if problems:
        raise ConfigError(problems)
    return out


class TorchDefaultQuantizer(Quantizer):
    """Eager-mode torch.ao QAT: fuse ``fuse_config`` (derived from the traced graph when not given, see
    ``gml_qat.fusion``; ``{}`` fuses nothing), quant/dequant stubs at ``input_layer`` and after
    ``output_layer``, backend qconfigs with ``custom_qconfig`` overrides, int8 conversion.

    Backends (``torch.backends.quantized`` engines): ``fbgemm`` and ``x86`` (x86 servers; per-channel
    weights, 7-bit activations), ``onednn`` (x86, oneDNN kernels), ``qnnpack`` (ARM/mobile; per-tensor
    weights; slower than fp32 on x86). Eager mode quantizes modules only: tensor arithmetic such as a
    residual ``a + b`` inside the region cannot run in int8, use ``FxQuantizer`` for such models.
    """

    supported_backends = ("fbgemm", "x86", "qnnpack", "onednn")

    def __init__(self, backend: Literal["fbgemm", "x86", "qnnpack", "onednn"] = "fbgemm", input_layer: str = "",
                 output_layer: str = "", fuse_config: Optional[dict[str, Any]] = None,
                 custom_qconfig: Optional[dict[str, QConfigOverride]] = None):
        super().__init__(backend, input_layer, output_layer, custom_qconfig)
        self.fuse_config = None if fuse_config is None else dict(fuse_config)
        #: the fusions of the last ``prepare`` (``fuse_config``, or the derived one)
        self.fused: Optional[dict[str, list[list[str]]]] = None

    def _extra_spec(self) -> dict[str, Any]:
        used = self.fuse_config if self.fuse_config is not None else self.fused
        if used is None:
            return {}
        return {"fuse_config": {k: [list(p) for p in v] for k, v in used.items()}}

    def resolve_fuse_config(self, model: nn.Module, example_inputs: tuple[Any, ...]) -> dict[str, list[list[str]]]:
        """``fuse_config`` when given, else the chains derived from ``model``'s graph inside the region."""
        if self.fuse_config is not None:
            return self.fuse_config
        from ..fusion import derive_fuse_config

        assignment = self._assignment(model, example_inputs)
        try:
            return derive_fuse_config(model, lambda name: lookup(assignment, name))
        except Exception as exc:  # torch.fx cannot trace every model (data-dependent control flow)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            from mmengine.logging import print_log

            print_log(f"TorchDefaultQuantizer: no fuse_config given and torch.fx cannot trace the model "
                      f"({type(exc).__name__}: {first}); nothing is fused. Set algorithm.quantizer.fuse_config "
                      "to fuse conv/bn/relu by hand", logger="current", level=logging.WARNING)
            return {}

    def _prepare(self, model: nn.Module, example_inputs: tuple[Any, ...]) -> nn.Module:
        import torch.ao.quantization as tq

        problems = self.name_problems(model)
        try:
            fusions = check_fuse_config(model, self.fuse_config or {})
        except ConfigError as exc:
            problems = problems + exc.problems
        if problems:
            raise ConfigError(problems)
        if self.fuse_config is None:
            fusions = list(self.resolve_fuse_config(model, example_inputs).items())
        self.fused = {parent: patterns for parent, patterns in fusions if patterns}
        for parent, patterns in fusions:
            if patterns:
                target = model.get_submodule(parent) if parent else model
                tq.fuse_modules_qat(target, patterns, inplace=True)
        assignment = self._assignment(model, example_inputs)
        for name, module in model.named_modules():
            module.qconfig = lookup(assignment, name)
        self._place_stubs(model, example_inputs, assignment)
        tq.prepare_qat(model, inplace=True)
        self._dry_run(model, example_inputs)
        return model

    def _place_stubs(self, model: nn.Module, example_inputs: tuple[Any, ...], assignment: dict[str, Any]) -> None:
        order = [n for n in execution_order(model, example_inputs) if lookup(assignment, n) is not None]
        if not order:
            raise ConfigError([("input_layer", "the quantized region holds no layer")])
        first = self.input_layer or order[0]
        last = self.output_layer or order[-1]
        first_qconfig = lookup(assignment, order[0])
        if first == last:
            wraps = [(first, QuantDeQuant)]
        else:  # wrap the deeper name first so that the other path stays valid
            wraps = sorted([(first, QuantIn), (last, DeQuantOut)], key=lambda w: -w[0].count("."))
        for name, wrapper_cls in wraps:
            if name == "":
                raise ConfigError([("input_layer", "the model is a single layer; eager mode needs submodules "
                                                   "to place its quant/dequant stubs")])
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            wrapper = wrapper_cls(getattr(parent, child))
            wrapper.qconfig = None
            if hasattr(wrapper, "quant"):
                wrapper.quant.qconfig = first_qconfig
            if hasattr(wrapper, "dequant"):  # a stub is swapped for its int8 module only when it has a qconfig
                wrapper.dequant.qconfig = first_qconfig
            setattr(parent, child, wrapper)

    def _dry_run(self, prepared: nn.Module, example_inputs: tuple[Any, ...]) -> None:
        """Convert a copy and run it once, so that an int8-incompatible region fails now, not after training."""
        import copy

        import torch.ao.quantization as tq

        trial = copy.deepcopy(prepared).cpu().eval()
        try:
            with torch.no_grad():
                tq.convert(trial, inplace=True)
                trial(*[x.cpu() for x in example_inputs])
        except Exception as exc:  # the message of torch's dispatcher is long; keep its first line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise GmlUserError(
                f"algorithm.quantizer: the int8 model converted by TorchDefaultQuantizer cannot run ({first}). "
                "Eager mode only quantizes modules; operations like a residual 'a + b' between input_layer and "
                "output_layer need FxQuantizer, or move input_layer/output_layer around them"
            ) from None

    def _convert(self, model: nn.Module) -> nn.Module:
        import torch.ao.quantization as tq

        return tq.convert(model, inplace=True)
