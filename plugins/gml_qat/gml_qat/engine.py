"""Quantized-engine selection and quieting of torch.ao's deprecation chatter.

torch.ao.quantization (eager and FX modes) still works in torch 2.x but warns on
every call that it is deprecated; those warnings say nothing a gml user can act on,
so the quantizers call torch.ao inside ``quiet()``.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

#: backend names accepted in configs -> ``torch.backends.quantized.engine`` values
BACKENDS = ("fbgemm", "x86", "qnnpack", "onednn")

_QUIET = (
    r"torch\.ao\.quantization is deprecated",
    r"Please use quant_min and quant_max",
    r"torch\.quantize_per_tensor, torch\.quantize_per_channel",
    r"TypedStorage is deprecated",
    r"must run observer before calling calculate_qparams",
    r"`torch\.jit\.\w+` is deprecated",
    r"Converting a tensor to a Python",
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence torch.ao/torch.jit deprecation warnings (only those) inside the block."""
    with warnings.catch_warnings():
        for pattern in _QUIET:
            warnings.filterwarnings("ignore", message=f".*{pattern}")
        yield


def check_backend(backend: str) -> None:
    """Raise a clear error when this machine's torch lacks the quantized engine ``backend``."""
    import torch

    from gml_core.api import GmlUserError, one_of
    supported = list(torch.backends.quantized.supported_engines)
    if backend not in supported:
        raise GmlUserError(
            f"algorithm.quantizer.backend: the quantized engine '{backend}' is not supported by this torch "
            f"build/CPU (torch.backends.quantized.supported_engines: {one_of(e for e in supported if e != 'none')})"
        )


@contextlib.contextmanager
def quantized_engine(backend: str) -> Iterator[None]:
    """Run the block with ``torch.backends.quantized.engine = backend``, then restore it."""
    import torch

    check_backend(backend)
    old = torch.backends.quantized.engine
    torch.backends.quantized.engine = backend
    try:
        yield
    finally:
        torch.backends.quantized.engine = old
