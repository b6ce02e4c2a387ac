"""The ``torchvision`` scope: ``torchvision.resnet18`` and every other torchvision model."""

from __future__ import annotations

from typing import Any, Callable

from ..errors import GmlUserError, did_you_mean, one_of


def _adapt_stem(model: Any, in_channels: int) -> None:
    """Replace the first conv when the data has other than 3 channels."""
    import torch.nn as nn

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels == in_channels:
                return
            new = nn.Conv2d(in_channels, module.out_channels, module.kernel_size, module.stride,
                            module.padding, module.dilation, module.groups, module.bias is not None)
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            setattr(parent, name.rsplit(".", 1)[-1], new)
            return


def resolve_torchvision(kind: str, name: str) -> Callable[..., Any]:
    """Builder for a torchvision classification model; ``in_channels`` adapts the stem."""
    if kind != "model":
        raise GmlUserError(f"scope 'torchvision' provides models only, not a {kind} '{name}'")
    import torchvision.models as tvm

    available = tvm.list_models(module=tvm)
    if name not in available:
        raise GmlUserError(f"unknown torchvision model '{name}'{did_you_mean(name, available)}; "
                           f"available: {one_of(available, 12)}")

    def build(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> Any:
        if kwargs.get("weights"):
            raise GmlUserError("torchvision weights are downloaded from the internet; load a local "
                               "checkpoint with init_from instead")
        model = tvm.get_model(name, num_classes=num_classes, **kwargs)
        _adapt_stem(model, in_channels)
        return model

    build.__name__ = f"torchvision.{name}"
    return build
