"""Safe checkpoint reading and atomic writing.

Every checkpoint gml writes holds only tensors and plain containers, so it loads
under ``torch.load(weights_only=True)``. A foreign checkpoint that needs other
globals loads only with ``trust=True`` (``--trust-checkpoint``), with a warning.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .atomic import atomic_write, atomic_write_text  # noqa: F401 (re-exported)
from .errors import GmlUserError


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename."""
    return atomic_write(path, lambda fh: torch.save(obj, fh))


class CheckpointError(GmlUserError):
    """A checkpoint file that cannot be used; ``reason`` is the short cause."""

    def __init__(self, path: str | Path, reason: str, advice: str = ""):
        self.path, self.reason = Path(path), reason
        super().__init__(f"checkpoint {path} {reason}{f'; {advice}' if advice else ''}")


_UNTRUSTED_MARKERS = ("Unsupported global", "Unsupported operand", "weights_only")


def _format_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable torch checkpoint at all (``None`` when it may be one)."""
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes): it was never written completely"
    with path.open("rb") as fh:
        head = fh.read(4)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()  # CRC of every member: torch itself does not check them
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            return f"is truncated or corrupt ({type(exc).__name__}: {_first(str(exc))})"
        return f"is corrupt (CRC mismatch in {bad})" if bad else None
    if head.startswith(b"PK"):
        return f"is truncated or corrupt (an incomplete zip archive of {size} bytes)"
    if head[:1] == b"\x80":  # a legacy (non-zip) pickle: torch.load decides
        return None
    return f"is not a PyTorch checkpoint (unknown format, {size} bytes)"


def load_file(path: str | Path, trust: bool = False, map_location: str = "cpu") -> Any:
    """Load a checkpoint file safely; ``trust`` allows unsafe globals after a warning.

    Missing, empty, truncated, corrupt and untrusted checkpoints each raise a
    ``CheckpointError`` with its own one-line message.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "not found" if not path.exists() else "is not a file")
    problem = _format_problem(path)
    if problem:
        raise CheckpointError(path, problem)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if not any(m in text for m in _UNTRUSTED_MARKERS):
            raise CheckpointError(path, f"is corrupt ({_first(text)})") from None
        if not trust:
            detail = next((line.strip() for line in text.splitlines() if "Unsupported" in line), _first(text))
            raise CheckpointError(path, f"needs pickle globals that safe loading refuses ({detail[:160]})",
                                  "if you trust its source, pass --trust-checkpoint") from None
    except (EOFError, OSError, KeyError, RuntimeError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(path, f"is truncated or corrupt ({type(exc).__name__}: {_first(str(exc))})") from None
    warnings.warn(f"loading {path} with weights_only=False (--trust-checkpoint): it can run code", stacklevel=2)
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise CheckpointError(path, f"cannot be loaded ({type(exc).__name__}: {_first(str(exc))})") from None


def _first(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0][:200] if lines else "no details"


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
