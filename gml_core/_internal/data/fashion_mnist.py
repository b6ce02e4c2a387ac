"""Fashion-MNIST (70,000 real 28x28 images) read from its standard IDX files."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

from ..errors import GmlUserError
from . import DataBundle, DataInfo
from .tensors import check_sizes, prepare_images, tensor_dataset

#: where Debian's ``dataset-fashion-mnist`` package puts the files; also ``$GML_FASHION_MNIST``
DEFAULT_DIRS = ("/usr/share/datasets/fashion-mnist",)
_FILES = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte", "val_labels": "t10k-labels-idx1-ubyte",
}


def find_root(root: str = "") -> Path | None:
    """The first folder holding the four IDX files (plain or ``.gz``)."""
    candidates = [root] if root else [os.environ.get("GML_FASHION_MNIST", ""), *DEFAULT_DIRS]
    for cand in filter(None, candidates):
        path = Path(cand)
        if all(_locate(path, f) for f in _FILES.values()):
            return path
    return None


def _locate(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the MNIST container format) into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise GmlUserError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


#: the label of a training image whose label is hidden (``label_limit``): PyTorch's ``ignore_index``
UNLABELLED = -100


def fashion_mnist(root: str = "", resize: int = 0, channels: int = 1, train_limit: int = 0,
                  val_limit: int = 0, label_limit: int = 0) -> DataBundle:
    """Train (60,000) and test (10,000) splits; ``*_limit`` take the first N for quick runs.

    ``label_limit`` N > 0 keeps the labels of the first N training images only; the others
    are labelled ``UNLABELLED`` (-100), which ``cross_entropy`` ignores: unlabelled images
    for a teacher to label (distillation), never a label loss.
    """
    check_sizes(resize=resize, train_limit=train_limit, val_limit=val_limit, label_limit=label_limit)
    if channels not in (1, 3):
        raise GmlUserError(f"data.channels: accepted 1 or 3, got {channels}")
    folder = find_root(root)
    if folder is None:
        where = root or ", ".join(DEFAULT_DIRS)
        raise GmlUserError(f"data.root: Fashion-MNIST IDX files not found in {where}; "
                           "install Debian's dataset-fashion-mnist or point data.root to the folder")
    arrays = {k: read_idx(_locate(folder, stem)) for k, stem in _FILES.items()}
    def split(prefix: str, limit: int):
        images = torch.from_numpy(arrays[f"{prefix}_images"].copy()).float().unsqueeze(1) / 255.0
        labels = torch.from_numpy(arrays[f"{prefix}_labels"].copy()).long()
        return (images[:limit], labels[:limit]) if limit else (images, labels)
    tr_x, tr_y = split("train", train_limit)
    if label_limit:
        if label_limit > len(tr_y):
            raise GmlUserError(f"data.label_limit: must be <= the {len(tr_y)} training images, got {label_limit}")
        tr_y = tr_y.clone()
        tr_y[label_limit:] = UNLABELLED
    va_x, va_y = split("val", val_limit)
    mean, std = 0.2860, 0.3530  # the training set's pixel statistics
    size = resize or 28
    return DataBundle(
        tensor_dataset(prepare_images(tr_x, resize, channels, mean, std), tr_y),
        tensor_dataset(prepare_images(va_x, resize, channels, mean, std), va_y),
        DataInfo(10, channels, (size, size)),
    )
