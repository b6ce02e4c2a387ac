"""``FxQuantizer``: torch.ao FX graph-mode QAT, for models that cannot be edited to hold stubs."""

from __future__ import annotations

from typing import Any, Literal, Optional

from torch import nn

from gml_core.api import GmlUserError

from ..qconfig import QConfigOverride
from .base import Quantizer


def backend_config(backend: str) -> Any:
    """torch.ao's FX backend config for ``backend`` (which patterns fuse and run in int8).

    ``onednn`` uses the x86 patterns: torch's onednn config adds conv+bn+add(+relu) fusions that
    have no QAT fuser (prepare fails on every residual block); kernels still run on the onednn engine.
    """
    from torch.ao.quantization import backend_config as bc

    if backend in ("x86", "onednn"):
        from torch.ao.quantization.backend_config.x86 import get_x86_backend_config

        return get_x86_backend_config()
    return {"fbgemm": bc.get_fbgemm_backend_config, "qnnpack": bc.get_qnnpack_backend_config}[backend]()


class FxQuantizer(Quantizer):
    """FX graph-mode torch.ao QAT (``prepare_qat_fx``/``convert_fx``): the model is symbolically traced,
    conv/bn/relu (and linear/relu, add/relu...) are fused and quant/dequant nodes are inserted
    automatically, functional ops included (residual additions quantize too). Gives real int8 kernels
    in plain eager execution and TorchScript.

    ``input_layer``/``output_layer`` (optional) restrict quantization to the modules run between them;
    ``custom_qconfig`` overrides as for ``TorchDefaultQuantizer``. No ``fuse_config``: fusion is automatic.

    Backends: ``fbgemm``, ``x86``, ``onednn`` (x86 servers; fused with the x86 patterns, see
    ``backend_config``), ``qnnpack`` (ARM; slower than fp32 on x86).
    The model must be traceable by ``torch.fx`` (no data-dependent Python control flow).
    """

    supported_backends = ("fbgemm", "x86", "qnnpack", "onednn")

    def __init__(self, backend: Literal["fbgemm", "x86", "qnnpack", "onednn"] = "x86", input_layer: str = "",
                 output_layer: str = "", custom_qconfig: Optional[dict[str, QConfigOverride]] = None):
        super().__init__(backend, input_layer, output_layer, custom_qconfig)

    def _prepare(self, model: nn.Module, example_inputs: tuple[Any, ...]) -> nn.Module:
        from torch.ao.quantization import QConfigMapping
        from torch.ao.quantization.quantize_fx import prepare_qat_fx

        assignment = self._assignment(model, example_inputs)
        mapping = QConfigMapping()
        for name, qconfig in assignment.items():
            if name == "":
                mapping.set_global(qconfig)
            else:
                mapping.set_module_name(name, qconfig)
        try:
            return prepare_qat_fx(model, mapping, example_inputs, backend_config=backend_config(self.backend))
        except Exception as exc:
            if not _is_trace_error(exc):
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise GmlUserError(f"algorithm.quantizer: torch.fx cannot trace the model ({type(exc).__name__}: "
                               f"{first}); use TorchDefaultQuantizer with input_layer/output_layer instead") from None

    def _convert(self, model: nn.Module) -> nn.Module:
        from torch.ao.quantization.quantize_fx import convert_fx

        ranges = narrow_weight_ranges(model)
        int8 = convert_fx(model, backend_config=backend_config(self.backend))
        clamp_weights(int8, ranges)
        return int8


def narrow_weight_ranges(prepared: nn.Module) -> dict[str, tuple[int, int]]:
    """``{module: (quant_min, quant_max)}`` of weights trained on less than their dtype's full range."""
    import torch

    out = {}
    for name, module in prepared.named_modules():
        fq = getattr(module, "weight_fake_quant", None)
        if fq is None:
            continue
        info = torch.iinfo(fq.dtype)
        if fq.quant_min > info.min or fq.quant_max < info.max:
            out[name] = (int(fq.quant_min), int(fq.quant_max))
    return out


def clamp_weights(int8: nn.Module, ranges: dict[str, tuple[int, int]]) -> None:
    """Clamp int8 weights to the range they were trained in.

    FX lowering quantizes weights with the trained scales but clamps only to the dtype
    (``[-128, 127]``), so a 4-bit layer could export values like 8 that fake quantization
    clipped to 7; eager-mode conversion clamps, this makes FX do the same.
    """
    import torch

    modules = dict(int8.named_modules())
    for name, (lo, hi) in ranges.items():
        module = modules.get(name)
        if module is None or not hasattr(module, "set_weight_bias") or not callable(getattr(module, "weight", None)):
            continue
        w = module.weight()
        ints = w.int_repr().clamp(lo, hi)
        if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            w = torch._make_per_channel_quantized_tensor(ints, w.q_per_channel_scales(),
                                                         w.q_per_channel_zero_points(), w.q_per_channel_axis())
        else:
            w = torch._make_per_tensor_quantized_tensor(ints, w.q_scale(), w.q_zero_point())
        module.set_weight_bias(w, module.bias())


def _is_trace_error(exc: BaseException) -> bool:
    """Did ``torch.fx`` fail to trace the model (data-dependent control flow, proxies in Python calls)?"""
    from torch.fx.proxy import TraceError

    text = str(exc).lower()
    return isinstance(exc, TraceError) or "symbolically traced" in text or "proxy" in text
