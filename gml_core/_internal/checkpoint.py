"""Safe checkpoint reading and atomic writing.

Every checkpoint gml writes holds only tensors and plain containers, so it loads
under ``torch.load(weights_only=True)``. A foreign checkpoint that needs other
globals loads only with ``trust=True`` (``--trust-checkpoint``), with a warning.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .atomic import atomic_write, atomic_write_text  # noqa: F401 (re-exported)
from .errors import GmlUserError


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename."""
    return atomic_write(path, lambda fh: torch.save(obj, fh))


def load_file(path: str | Path, trust: bool = False, map_location: str = "cpu") -> Any:
    """Load a checkpoint file safely; ``trust`` allows unsafe globals after a warning."""
    path = Path(path)
    if not path.is_file():
        raise GmlUserError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsupported global"
            raise GmlUserError(
                f"checkpoint {path} needs globals that weights_only loading refuses ({first[:160]}); "
                "if you trust its source, pass --trust-checkpoint"
            ) from None
    warnings.warn(f"loading {path} with weights_only=False (--trust-checkpoint): it can run code", stacklevel=2)
    return torch.load(path, map_location=map_location, weights_only=False)


def extract_state_dict(checkpoint: Any) -> dict[str, torch.Tensor]:
    """The model weights of a gml, mmengine or torchvision checkpoint (prefixes stripped)."""
    state = checkpoint
    if isinstance(state, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise GmlUserError("checkpoint holds no state dict of tensors")
    out = dict(state)
    for prefix in ("module.",):
        if out and all(k.startswith(prefix) for k in out):
            out = {k[len(prefix):]: v for k, v in out.items()}
    return out


def load_weights(module: nn.Module, checkpoint: Any, trust: bool = False, prefix: str = "",
                 strict: bool = True, source: str | Path | None = None) -> None:
    """Load weights into ``module`` from a checkpoint path or an already loaded checkpoint;
    ``prefix`` selects a sub-tree (e.g. ``"model."``). ``source`` names the file in errors."""
    if isinstance(checkpoint, (str, Path)):
        source = source or checkpoint
        checkpoint = load_file(checkpoint, trust)
    path = source or "checkpoint"
    state = extract_state_dict(checkpoint)
    if prefix:
        picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        state = picked or state
    elif any(k.startswith("model.") for k in state) and not set(module.state_dict()) & set(state):
        # an algorithm's checkpoint: the trained model sits under "model." beside other parts
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensor shapes differ
        sizes = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise GmlUserError(f"checkpoint {path} does not fit the model: "
                           f"{sizes[0] if sizes else str(exc).splitlines()[0]}"
                           f"{f' (and {len(sizes) - 1} more)' if len(sizes) > 1 else ''}") from None
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if strict and (missing or unexpected):
        raise GmlUserError(
            f"checkpoint {path} does not fit the model: {len(missing)} missing keys "
            f"({', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}), {len(unexpected)} unexpected keys "
            f"({', '.join(unexpected[:3])}{'...' if len(unexpected) > 3 else ''})"
        )
