"""On-disk datasets through torchvision: CIFAR-10 (python format) and ImageFolder trees."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ..errors import GmlUserError
from . import DataBundle, DataInfo
from .tensors import check_sizes

_CIFAR_MEAN, _CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _transform(size: int, mean, std, train: bool):
    from torchvision import transforms as T

    steps = [T.Resize((size, size))] if size else []
    if train:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose([*steps, T.ToTensor(), T.Normalize(mean, std)])


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR-10's python batches hold: builtin containers, bytes/str and the
    numpy array reconstruction functions. Anything else (a planted ``os.system``...) is refused."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("builtins", "bytes"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def _read_cifar_batch(path: Path) -> tuple[Any, list[int]]:
    import numpy as np

    try:
        with path.open("rb") as fh:
            batch = _CifarUnpickler(fh, encoding="latin1").load()
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        labels = [int(label) for label in batch["labels"]]
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GmlUserError(f"data.root: {path} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    return data, labels


class _ArrayImages:
    """Images as an HWC uint8 array plus labels, with a torchvision transform."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def cifar10(root: str = "data/cifar10", resize: int = 0, augment: bool = True) -> DataBundle:
    """CIFAR-10 from its ``cifar-10-batches-py`` folder (the python version; never downloaded).

    Read directly rather than through ``torchvision.datasets.CIFAR10``, which checks the
    official archive's md5 sums and so refuses subsets or re-packed copies of the data.
    """
    import numpy as np

    check_sizes(resize=resize)
    folder = Path(root) / "cifar-10-batches-py"
    train_files = sorted(folder.glob("data_batch_*"))
    if not train_files or not (folder / "test_batch").is_file():
        raise GmlUserError(f"data.root: no CIFAR-10 batches (data_batch_*, test_batch) in '{folder}'; download "
                           "CIFAR-10 (python version) and extract it under data.root")
    parts = [_read_cifar_batch(f) for f in train_files]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = [label for p in parts for label in p[1]]
    val_x, val_y = _read_cifar_batch(folder / "test_batch")
    size = resize or 32
    return DataBundle(
        _ArrayImages(train_x, train_y, _transform(resize, _CIFAR_MEAN, _CIFAR_STD, augment)),
        _ArrayImages(val_x, val_y, _transform(resize, _CIFAR_MEAN, _CIFAR_STD, False)),
        DataInfo(10, 3, (size, size)),
    )


def imagefolder(root: str, resize: int = 224, train_dir: str = "train", val_dir: str = "val",
                augment: bool = True) -> DataBundle:
    """An ImageFolder tree ``root/{train,val}/<class>/<image>``."""
    from torchvision.datasets import ImageFolder

    if resize < 1:
        raise GmlUserError(f"data.resize: must be >= 1 for image folders, got {resize}")
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
