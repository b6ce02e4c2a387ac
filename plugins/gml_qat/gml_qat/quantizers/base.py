"""What every gml-qat quantizer does: prepare for QAT, convert to int8, freeze BN and observers."""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from gml_core.api import ConfigError, GmlUserError

from ..engine import check_backend, quantized_engine, quiet
from ..qconfig import QConfigOverride, make_qconfig
from ..regions import assign_qconfigs, check_name, covered_modules, execution_order, region_units

_BN_FROZEN = "_gml_qat_bn_frozen"


def _structure_custom(custom: Mapping[str, Any] | None) -> dict[str, QConfigOverride]:
    from gml_core.api import structure
    out: dict[str, QConfigOverride] = {}
    for name, value in (custom or {}).items():
        out[name] = value if isinstance(value, QConfigOverride) else \
            structure(value, QConfigOverride, f'custom_qconfig["{name}"]')
    return out


def _keep_eval(module: nn.Module, _inputs: Any) -> None:
    module.training = False


class Quantizer:
    """Base class: ``prepare`` a float model for QAT (fake quantization), ``convert`` it to int8.

    Subclasses set ``supported_backends`` and implement ``_prepare`` and ``_convert``.
    """

    supported_backends: tuple[str, ...] = ()

    def __init__(self, backend: str, input_layer: str = "", output_layer: str = "",
                 custom_qconfig: Mapping[str, Any] | None = None):
        if backend not in self.supported_backends:
            raise GmlUserError(f"algorithm.quantizer.backend: {type(self).__name__} supports "
                               f"{', '.join(self.supported_backends)}, not '{backend}'")
        self.backend = backend
        self.input_layer = input_layer
        self.output_layer = output_layer
        self.custom_qconfig = _structure_custom(custom_qconfig)

    # -- public API ---------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """Plain-data arguments that rebuild this quantizer (stored with int8 exports)."""
        from gml_core.api import converter
        return {"type": type(self).__name__, "backend": self.backend, "input_layer": self.input_layer,
                "output_layer": self.output_layer,
                "custom_qconfig": {k: _drop_none(converter.unstructure(v)) for k, v in self.custom_qconfig.items()},
                **self._extra_spec()}

    def prepare(self, model: nn.Module, example_inputs: tuple[Any, ...]) -> nn.Module:
        """A QAT copy of ``model`` with fake quantization (``model`` itself is left unchanged)."""
        check_backend(self.backend)
        model = copy.deepcopy(model).train()
        with quiet(), quantized_engine(self.backend):
            return self._prepare(model, example_inputs)

    def convert(self, prepared: nn.Module) -> nn.Module:
        """An int8 copy of a prepared model, on CPU, in eval mode."""
        model = copy.deepcopy(prepared).cpu().eval()
        with quiet(), quantized_engine(self.backend):
            return self._convert(model)

    def freeze_bn(self, prepared: nn.Module) -> None:
        """Stop updating BN statistics; fused QAT modules switch to the running statistics."""
        import torch.ao.nn.intrinsic.qat as nniqat
        from torch.ao.nn.intrinsic import _FusedModule

        prepared.apply(nniqat.freeze_bn_stats)
        inside_fused = {id(m) for f in prepared.modules() if isinstance(f, _FusedModule) for m in f.modules()}
        for module in prepared.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and id(module) not in inside_fused \
                    and not getattr(module, _BN_FROZEN, False):
                module.register_forward_pre_hook(_keep_eval)  # unfused BN: always normalise with running stats
                setattr(module, _BN_FROZEN, True)

    def freeze_observers(self, prepared: nn.Module) -> None:
        """Freeze scales and zero points; fake quantization stays on."""
        from torch.ao.quantization import disable_observer

        prepared.apply(disable_observer)

    @contextlib.contextmanager
    def observers_paused(self, prepared: nn.Module) -> Iterator[None]:
        """Evaluate without updating observer statistics (restores each observer's state)."""
        from torch.ao.quantization import FakeQuantizeBase

        saved = [(m, m.observer_enabled.clone()) for m in prepared.modules() if isinstance(m, FakeQuantizeBase)]
        for module, _ in saved:
            module.disable_observer()
        try:
            yield
        finally:
            for module, state in saved:
                module.observer_enabled.copy_(state)

    @torch.no_grad()
    def initialize_weight_ranges(self, prepared: nn.Module, example_inputs: tuple[Any, ...]) -> None:
        """Size every weight quantizer's per-channel buffers from the weights, before any data is seen.

        One eval-mode pass with the observers paused: activation ranges and BN statistics are left
        untouched; weight quantizers that never observed anything observe their weight once.
        """
        was_training = prepared.training
        prepared.eval()
        try:
            with self.observers_paused(prepared):
                prepared(*example_inputs)
        finally:
            prepared.train(was_training)

    def fake_quant_disabled(self, prepared: nn.Module) -> nn.Module:
        """A copy of ``prepared`` computing in float (fake quantization and observers off)."""
        from torch.ao.quantization import disable_fake_quant, disable_observer

        model = copy.deepcopy(prepared)
        model.apply(disable_fake_quant)
        model.apply(disable_observer)
        return model

    def describe(self) -> str:
        return f"{type(self).__name__} ({self.backend})"

    # -- shared helpers ---------------------------------------------------------------------
    def name_problems(self, model: nn.Module) -> list[tuple[str, str]]:
        """Every module name of the config that ``model`` lacks, with a did-you-mean."""
        problems: list[tuple[str, str]] = []
        for key, name in (("input_layer", self.input_layer), ("output_layer", self.output_layer)):
            if name:
                _collect(problems, lambda: check_name(model, name, key))
        for name in self.custom_qconfig:
            _collect(problems, lambda: check_name(model, name, f'custom_qconfig["{name}"]'))
        return problems

    def _assignment(self, model: nn.Module, example_inputs: tuple[Any, ...]) -> dict[str, Any]:
        """``{module name: qconfig}`` for the region and the ``custom_qconfig`` entries."""
        problems = self.name_problems(model)
        if problems:
            raise ConfigError(problems)
        order = execution_order(model, example_inputs)
        in_region = region_units(order, self.input_layer, self.output_layer)
        covered = covered_modules(model, in_region, order)
        return assign_qconfigs(model, covered, self.custom_qconfig,
                               lambda overrides: make_qconfig(self.backend, overrides))

    def _extra_spec(self) -> dict[str, Any]:
        return {}

    def _prepare(self, model: nn.Module, example_inputs: tuple[Any, ...]) -> nn.Module:
        raise NotImplementedError

    def _convert(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError


def _collect(problems: list[tuple[str, str]], fn: Any) -> None:
    try:
        fn()
    except ConfigError as exc:
        problems.extend(exc.problems)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def prefix_config_error(exc: ConfigError, prefix: str) -> ConfigError:
    """Re-root a quantizer's ``ConfigError`` (keys relative to its table) at ``prefix``."""
    return ConfigError([(f"{prefix}.{path}" if path else prefix, msg) for path, msg in exc.problems], exc.source)


def example_batch(input_shape: tuple[int, ...], batch: int = 2) -> tuple[torch.Tensor]:
    return (torch.randn(batch, *input_shape[1:]),)
