"""scikit-learn's bundled digits (1,797 real 8x8 images, 10 classes), offline."""

from __future__ import annotations

import torch

from ..errors import GmlUserError
from . import DataBundle, DataInfo
from .tensors import check_sizes, prepare_images, tensor_dataset


def digits(resize: int = 0, channels: int = 1, val_ratio: float = 0.2, split_seed: int = 0) -> DataBundle:
    """Deterministic stratified split; pixel values scaled to [0, 1] then normalised."""
    check_sizes(resize=resize)
    if not 0.0 < val_ratio < 1.0:
        raise GmlUserError(f"data.val_ratio: must be between 0 and 1, got {val_ratio}")
    if channels not in (1, 3):
        raise GmlUserError(f"data.channels: accepted 1 or 3, got {channels}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target)
    idx_train, idx_val = train_test_split(range(len(labels)), test_size=val_ratio, random_state=split_seed,
                                          stratify=bunch.target)
    mean, std = images[idx_train].mean().item(), images[idx_train].std().item()
    images = prepare_images(images, resize, channels, mean, std)
    size = resize or 8
    return DataBundle(
        tensor_dataset(images[idx_train], labels[idx_train]),
        tensor_dataset(images[idx_val], labels[idx_val]),
        DataInfo(10, channels, (size, size)),
    )
