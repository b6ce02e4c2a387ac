"""Export a subnet as a plain static model: a gml checkpoint plus TorchScript.

The checkpoint is ``{"model_spec": {...}, "state_dict": {...}}`` where
``model_spec = {type = "gml.StaticSubnet", supernet = <the supernet's model
table>, subnet = <nested architecture>}``; ``init_from = "subnet.pth"`` in any gml
config rebuilds the static network from it and loads the weights (no slice ops
remain: only ``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.Linear`` and activations).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import torch
from torch import nn

from gml_core.api import save_checkpoint

from .classifier import ImageClassifierSearch
from .evaluation import calibrate_bn, preserved_bn_state
from .specs import plain


def supernet_spec(model_table: Any, num_classes: int, in_channels: int) -> dict[str, Any]:
    """The supernet's model table as plain data, with the sizes the core injected made explicit."""
    spec = plain(model_table)
    spec.pop("init_from", None)
    spec["num_classes"], spec["in_channels"] = num_classes, in_channels
    return spec


def static_subnet(model: ImageClassifierSearch, subnet: Mapping[str, Any], calib_loader: Optional[Iterable] = None,
                  calib_batches: int = -1) -> nn.Module:
    """The ``subnet`` of ``model`` as a static module (BN re-calibrated on ``calib_loader`` if given).

    The supernet is left as it was (active subnet and BatchNorm statistics).
    """
    previous = dict(model.subnet)
    try:
        with preserved_bn_state(model):
            model.set_subnet(subnet)
            model.set_dropout(0.0)
            model.set_drop_path(0.0)
            if calib_loader is not None:
                calibrate_bn(model, calib_loader, calib_batches)
            static = model.export().eval()
    finally:
        model.set_subnet(previous)
    return static


def save_torchscript(module: nn.Module, path: Path, example: torch.Tensor) -> str:
    """Script ``module`` (trace if scripting fails), save atomically; returns ``"script"`` or ``"trace"``."""
    module = module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compiled, how = torch.jit.script(module), "script"
        except Exception:
            compiled, how = torch.jit.trace(module, example), "trace"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        try:
            torch.jit.save(compiled, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return how


def export_subnet(model: ImageClassifierSearch, subnet: Mapping[str, Any], model_table: Any, num_classes: int,
                  in_channels: int, out_dir: Path, input_shape: tuple[int, ...], name: str = "subnet",
                  calib_loader: Optional[Iterable] = None, calib_batches: int = -1) -> dict[str, Any]:
    """Write ``<name>.pth`` (gml checkpoint) and ``<name>.torchscript.pt``; returns paths and the static model."""
    static = static_subnet(model, subnet, calib_loader, calib_batches)
    spec = {"type": "gml.StaticSubnet", "supernet": supernet_spec(model_table, num_classes, in_channels),
            "subnet": plain(model.space.nest(subnet))}
    state = {k: v.detach().cpu().clone() for k, v in static.state_dict().items()}
    ckpt = save_checkpoint({"model_spec": spec, "state_dict": state}, Path(out_dir) / f"{name}.pth")
    ts_path = Path(out_dir) / f"{name}.torchscript.pt"
    how = save_torchscript(static, ts_path, torch.zeros(*input_shape))
    return {"checkpoint": ckpt, "torchscript": ts_path, "torchscript_mode": how, "model": static, "model_spec": spec}
