"""int8 artifacts: TorchScript, a ``weights_only``-loadable state dict, size on disk and CPU latency.

The state-dict file holds plain data only::

    {"format": "gml-qat-int8", "version": 1, "backend": "fbgemm", "input_shape": [1, 1, 16, 16],
     "float_model_spec": {"type": "gml.SmallCNN", ...}, "quantizer": {"type": "TorchDefaultQuantizer", ...},
     "state_dict": {...int8 tensors...}}

``load_int8`` rebuilds the float model, prepares and converts it with the same quantizer,
then loads the int8 tensors. Quantized kernels run on CPU under the engine they were
packed for: ``load_int8`` and ``load_torchscript`` set ``torch.backends.quantized.engine``.
"""

from __future__ import annotations

import io
import json
import statistics
import time
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from gml_core.api import GmlUserError, load_checkpoint, save_checkpoint

from .engine import check_backend, quiet

FORMAT = "gml-qat-int8"
EXTRA_FILE = "gml_qat.json"


def to_torchscript(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """Trace (falling back to scripting) and freeze ``model`` for deployment."""
    model = model.eval()
    with quiet(), torch.no_grad():
        try:
            scripted = torch.jit.trace(model, example)
        except Exception:
            scripted = torch.jit.script(model)
        try:
            return torch.jit.freeze(scripted)
        except Exception:  # freezing is an optimisation; an unfrozen module is still deployable
            return scripted


def torchscript_bytes(scripted: torch.jit.ScriptModule, meta: Mapping[str, Any] | None = None) -> bytes:
    buffer = io.BytesIO()
    with quiet():
        torch.jit.save(scripted, buffer, _extra_files={EXTRA_FILE: json.dumps(dict(meta or {}))})
    return buffer.getvalue()


def save_bytes(data: bytes, path: Path) -> Path:
    """Atomic write of raw bytes."""
    from gml_core.api import atomic_write_bytes
    return atomic_write_bytes(path, data)


def save_int8_state(model: nn.Module, path: Path, float_model_spec: Mapping[str, Any],
                    quantizer_spec: Mapping[str, Any], input_shape: tuple[int, ...]) -> Path:
    """Write the int8 state dict with what ``load_int8`` needs to rebuild the module."""
    state = model.state_dict()  # keeps ``_metadata``: quantized modules load by their state-dict version
    payload = {"format": FORMAT, "version": 1, "backend": quantizer_spec["backend"],
               "input_shape": list(input_shape), "float_model_spec": dict(float_model_spec),
               "quantizer": dict(quantizer_spec), "state_dict": state}
    return save_checkpoint(payload, path)


def load_int8(path: str | Path, trust: bool = False) -> nn.Module:
    """Rebuild an int8 model from ``save_int8_state``'s file (loaded with ``weights_only=True``)."""
    from gml_core.api import ComponentSpec, build_component, converter
    with quiet():
        data = load_checkpoint(path, trust)
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise GmlUserError(f"{path}: not a gml-qat int8 checkpoint (no format '{FORMAT}')")
    model = build_component("model", converter.structure(dict(data["float_model_spec"]), ComponentSpec), "float_model_spec")
    quantizer = build_component("quantizer", converter.structure(dict(data["quantizer"]), ComponentSpec), "quantizer")
    example = (torch.zeros(2, *data["input_shape"][1:]),)
    int8 = quantizer.convert(quantizer.prepare(model, example))
    torch.backends.quantized.engine = data["backend"]
    with quiet():
        int8.load_state_dict(data["state_dict"])
    return int8


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    """Load an exported TorchScript model, setting the quantized engine it was packed for."""
    extra = {EXTRA_FILE: ""}
    with quiet():
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    meta = json.loads(extra[EXTRA_FILE] or "{}")
    if meta.get("backend"):
        check_backend(meta["backend"])
        torch.backends.quantized.engine = meta["backend"]
    return module


@torch.inference_mode()
def latency_ms(model: Any, example: torch.Tensor, runs: int = 50, warmup: int = 10) -> float:
    """Median wall time of one forward pass in milliseconds."""
    for _ in range(warmup):
        model(example)
    times = []
    for _ in range(max(runs, 1)):
        start = time.perf_counter()
        model(example)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def format_size(n_bytes: int) -> str:
    return f"{n_bytes / 1024:.1f} KiB" if n_bytes < 1024 ** 2 else f"{n_bytes / 1024 ** 2:.2f} MiB"
