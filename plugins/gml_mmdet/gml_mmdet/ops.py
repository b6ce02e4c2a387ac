"""Pure-torch stand-in for mmcv's compiled extension (``mmcv._ext``) on mmcv-lite.

mmdet 3.x imports ``mmcv.ops``, whose modules load ``mmcv._ext`` at import time. When the
compiled extension is missing (mmcv-lite, or a CPU-only build without ops), ``install()``
puts a module in its place that implements the ops the common detectors call:

- ``nms`` through ``torchvision.ops.nms`` (mmcv's ``batched_nms`` is built on it);
- ``roi_align_forward`` / ``roi_align_backward`` (average pooling) through
  ``torchvision.ops.roi_align``; RoIAlign is linear in its input, so the backward pass is
  the vector-Jacobian product of torchvision's op, which needs only the input's shape;
- ``sigmoid_focal_loss_forward`` / ``_backward``: mmcv's kernel formulas in torch
  (mmcv has no CPU kernel for them at all).

Every other op raises a one-line ``GmlUserError`` naming the op and the model being
built. A present compiled extension is never replaced.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any, Iterator

import torch

from gml_core.api import GmlUserError

#: the ops this module implements (documented in docs/mmdet.md)
FALLBACK_OPS = ("nms", "roi_align_forward", "roi_align_backward", "sigmoid_focal_loss_forward",
                "sigmoid_focal_loss_backward")
_MODULE = "mmcv._ext"
_current_model = ["(no model)"]


@contextlib.contextmanager
def building(model_name: str) -> Iterator[None]:
    """Name ``model_name`` in errors of ops without a fallback while it is built or run."""
    previous = _current_model[0]
    _current_model[0] = model_name
    try:
        yield
    finally:
        _current_model[0] = previous


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, offset: int = 0) -> torch.Tensor:
    """Indices kept by greedy NMS, by decreasing score (mmcv's ``nms`` kernel contract)."""
    import torchvision

    if boxes.numel() == 0:
        return boxes.new_zeros(0, dtype=torch.long)
    if offset:  # mmcv's legacy "+1" box convention: widen the boxes, IoU is then the same
        boxes = boxes.clone()
        boxes[:, 2:] += offset
    return torchvision.ops.nms(boxes.float(), scores.float(), float(iou_threshold))


def _roi_align(input: torch.Tensor, rois: torch.Tensor, aligned_height: int, aligned_width: int,
               spatial_scale: float, sampling_ratio: int, pool_mode: int, aligned: bool) -> torch.Tensor:
    import torchvision

    if pool_mode != 1:
        _missing("roi_align (pool_mode='max')")
    return torchvision.ops.roi_align(input, rois.to(input.dtype), (aligned_height, aligned_width),
                                     spatial_scale=spatial_scale, sampling_ratio=sampling_ratio, aligned=aligned)


def roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height=7, aligned_width=7,
                      spatial_scale=1.0, sampling_ratio=0, pool_mode=1, aligned=True) -> None:
    """Writes RoIAlign of ``input`` over ``rois`` (``[batch_index, x1, y1, x2, y2]``) into ``output``."""
    with torch.no_grad():
        output.copy_(_roi_align(input, rois, aligned_height, aligned_width, spatial_scale, sampling_ratio,
                                pool_mode, aligned))


def roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height=7, aligned_width=7,
                       spatial_scale=1.0, sampling_ratio=0, pool_mode=1, aligned=True) -> None:
    """Adds the gradient w.r.t. the input (shape of ``grad_input``) into ``grad_input``."""
    with torch.enable_grad():
        probe = torch.zeros_like(grad_input, requires_grad=True)
        out = _roi_align(probe, rois, aligned_height, aligned_width, spatial_scale, sampling_ratio, pool_mode,
                         aligned)
        (grad,) = torch.autograd.grad(out, probe, grad_output.to(out.dtype))
    grad_input.add_(grad)


def _focal_terms(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                 alpha: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Probabilities, positive mask and the per-element class weights of mmcv's focal kernel."""
    classes = torch.arange(input.size(1), device=input.device)
    positive = (target.view(-1, 1) == classes.view(1, -1)).to(input.dtype)
    p = torch.sigmoid(input)
    if weight.numel():
        w = weight[target.clamp(max=input.size(1) - 1)].view(-1, 1).to(input.dtype)
        w = torch.where((target < input.size(1)).view(-1, 1), w, torch.ones_like(w))
    else:
        w = torch.ones((), dtype=input.dtype, device=input.device)
    return p, positive, w, torch.tensor(torch.finfo(input.dtype).tiny, dtype=input.dtype, device=input.device)


def sigmoid_focal_loss_forward(input, target, weight, output, gamma=2.0, alpha=0.25) -> None:
    """Element-wise sigmoid focal loss (Lin et al., 2017) into ``output``; ``target`` holds class indices."""
    p, positive, w, tiny = _focal_terms(input, target, weight, alpha)
    loss_p = -alpha * (1 - p).pow(gamma) * torch.log(torch.maximum(p, tiny))
    loss_n = -(1 - alpha) * p.pow(gamma) * torch.log(torch.maximum(1 - p, tiny))
    output.copy_((positive * loss_p + (1 - positive) * loss_n) * w)


def sigmoid_focal_loss_backward(input, target, weight, grad_input, gamma=2.0, alpha=0.25) -> None:
    """d(focal loss)/d(input) element-wise, into ``grad_input`` (mmcv's closed form)."""
    p, positive, w, tiny = _focal_terms(input, target, weight, alpha)
    grad_p = -alpha * (1 - p).pow(gamma) * (1 - p - gamma * p * torch.log(torch.maximum(p, tiny)))
    grad_n = -(1 - alpha) * p.pow(gamma) * (gamma * (1 - p) * torch.log(torch.maximum(1 - p, tiny)) - p)
    grad_input.copy_((positive * grad_p + (1 - positive) * grad_n) * w)


def _missing(op: str) -> None:
    raise GmlUserError(f"mmcv op '{op}' (used by {_current_model[0]}) needs mmcv's compiled extension, which is not "
                       f"installed, and has no CPU fallback in gml-mmdet (fallbacks: {', '.join(FALLBACK_OPS)}); "
                       "install full mmcv or pick a model without it")


def _no_fallback(name: str) -> Any:
    def op(*args: Any, **kwargs: Any) -> Any:
        _missing(name)

    op.__name__ = name
    return op


def _module() -> types.ModuleType:
    module = types.ModuleType(_MODULE, "gml-mmdet's pure-torch stand-in for mmcv's compiled ops")
    for name in FALLBACK_OPS:
        setattr(module, name, globals()[name])
    module.__getattr__ = lambda name: _no_fallback(name) if not name.startswith("__") else _raise_attr(name)
    module.gml_fallback = True
    # a spec without a loader: mmengine's ``mmcv_full_available()`` then (rightly) says "no"
    module.__spec__ = importlib.machinery.ModuleSpec(_MODULE, None)
    return module


def _raise_attr(name: str) -> Any:
    raise AttributeError(name)


def compiled_ops_present() -> bool:
    """True when mmcv's own compiled extension can be imported."""
    module = sys.modules.get(_MODULE)
    if module is not None:
        return not getattr(module, "gml_fallback", False)
    try:
        return importlib.util.find_spec(_MODULE) is not None
    except ModuleNotFoundError:
        return False


def install() -> bool:
    """Put the stand-in in place when compiled mmcv ops are missing; True when it is (now) in use."""
    if compiled_ops_present():
        return False
    sys.modules.setdefault(_MODULE, _module())
    return True
