"""On-disk datasets through torchvision: CIFAR-10 (python format) and ImageFolder trees."""

from __future__ import annotations

from pathlib import Path

from ..errors import GmlUserError
from . import DataBundle, DataInfo

_CIFAR_MEAN, _CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _transform(size: int, mean, std, train: bool):
    from torchvision import transforms as T

    steps = [T.Resize((size, size))] if size else []
    if train:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


def cifar10(root: str = "data/cifar10", resize: int = 0, augment: bool = True) -> DataBundle:
    """CIFAR-10 from its ``cifar-10-batches-py`` folder (never downloaded)."""
    from torchvision.datasets import CIFAR10

    folder = Path(root)
    if not (folder / "cifar-10-batches-py").is_dir():
        raise GmlUserError(f"data.root: no cifar-10-batches-py folder in '{root}'; download CIFAR-10 "
                           "(python version) and extract it there")
    train = CIFAR10(str(folder), train=True, download=False,
                    transform=_transform(resize, _CIFAR_MEAN, _CIFAR_STD, augment))
    val = CIFAR10(str(folder), train=False, download=False, transform=_transform(resize, _CIFAR_MEAN, _CIFAR_STD, False))
    size = resize or 32
    return DataBundle(train, val, DataInfo(10, 3, (size, size)))


def imagefolder(root: str, resize: int = 224, train_dir: str = "train", val_dir: str = "val",
                augment: bool = True) -> DataBundle:
    """An ImageFolder tree ``root/{train,val}/<class>/<image>``."""
    from torchvision.datasets import ImageFolder

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    paths = {split: Path(root) / sub for split, sub in (("train", train_dir), ("val", val_dir))}
    for split, path in paths.items():
        if not path.is_dir():
            raise GmlUserError(f"data.root: {split} folder '{path}' not found; expected root/{train_dir} and root/{val_dir}")
    train = ImageFolder(str(paths["train"]), transform=_transform(resize, mean, std, augment))
    val = ImageFolder(str(paths["val"]), transform=_transform(resize, mean, std, False))
    if train.classes != val.classes:
        raise GmlUserError(f"data.root: train and val class folders differ ({len(train.classes)} vs {len(val.classes)})")
    return DataBundle(train, val, DataInfo(len(train.classes), 3, (resize, resize)))
