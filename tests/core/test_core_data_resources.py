"""Built-in datasets and resource counting against hand computations."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gml_core._internal.data.digits import digits
from gml_core._internal.data.fashion_mnist import fashion_mnist, find_root
from gml_core._internal.data.folders import cifar10, imagefolder
from gml_core._internal.errors import GmlUserError
from gml_core._internal.resources import count_flops, count_params, format_count, parse_count


def test_digits_split_is_deterministic_and_stratified():
    a, b = digits(), digits()
    assert len(a.train) + len(a.val) == 1797 and len(a.val) == 360
    assert torch.equal(a.val.tensors[0], b.val.tensors[0])
    counts = torch.bincount(a.val.tensors[1], minlength=10)
    assert counts.min() >= 35  # stratified: ~36 per class
    assert a.info.input_shape == (1, 1, 8, 8)


def test_digits_resize_and_channels():
    bundle = digits(resize=32, channels=3)
    assert bundle.train[0][0].shape == (3, 32, 32) and bundle.info.input_shape == (1, 3, 32, 32)
    with pytest.raises(GmlUserError, match="data.channels"):
        digits(channels=2)


@pytest.mark.skipif(find_root() is None, reason="Fashion-MNIST IDX files absent (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_from_idx_files():
    bundle = fashion_mnist(train_limit=100, val_limit=50)
    assert (len(bundle.train), len(bundle.val)) == (100, 50)
    assert bundle.train[0][0].shape == (1, 28, 28) and 0 <= int(bundle.train[0][1]) < 10


def test_fashion_mnist_idx_parser_on_generated_files(tmp_path):
    import gzip
    import struct

    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for prefix, n in (("train", 2), ("t10k", 2)):
        with gzip.open(tmp_path / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">HBB3I", 0, 8, 3, n, 28, 28) + images.tobytes())
        with open(tmp_path / f"{prefix}-labels-idx1-ubyte", "wb") as fh:
            fh.write(struct.pack(">HBBI", 0, 8, 1, n) + bytes([3, 7]))
    bundle = fashion_mnist(root=str(tmp_path))
    assert [int(bundle.train[i][1]) for i in range(2)] == [3, 7]
    expected = (torch.tensor(images[1], dtype=torch.float32) / 255 - 0.2860) / 0.3530
    assert torch.allclose(bundle.train[1][0][0], expected)


def test_fashion_mnist_missing_folder(tmp_path):
    with pytest.raises(GmlUserError, match="Fashion-MNIST IDX files not found"):
        fashion_mnist(root=str(tmp_path))


def _write_cifar(root: Path, per_batch: int = 4) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ["data_batch_1", "data_batch_2", "test_batch"]:
        batch = {"data": rng.integers(0, 255, (per_batch, 3072), dtype=np.uint8),
                 "labels": [int(i) % 10 for i in range(per_batch)]}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, fh)


def test_cifar10_real_on_disk_format(tmp_path):
    _write_cifar(tmp_path)
    bundle = cifar10(root=str(tmp_path), augment=False)
    assert (len(bundle.train), len(bundle.val)) == (8, 4)
    image, label = bundle.val[1]
    assert image.shape == (3, 32, 32) and label == 1
    with pytest.raises(GmlUserError, match="no CIFAR-10 batches"):
        cifar10(root=str(tmp_path / "missing"))


def test_imagefolder(tmp_path):
    from PIL import Image

    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.new("RGB", (20, 20), (10, 200, 30)).save(tmp_path / split / cls / "a.png")
    bundle = imagefolder(root=str(tmp_path), resize=16)
    assert bundle.info.num_classes == 2 and bundle.train[0][0].shape == (3, 16, 16)
    with pytest.raises(GmlUserError, match="train folder .* not found"):
        imagefolder(root=str(tmp_path / "train"))


def test_flops_and_params_match_hand_computation():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(32, 10))
    # conv: 2 out channels x 16 positions x 9 MACs; linear: 32 x 10 MACs; 2 FLOPs per MAC
    assert count_flops(model, (1, 1, 4, 4)) == 2 * (2 * 16 * 9 + 32 * 10)
    assert count_params(model) == (2 * 9 + 2) + (32 * 10 + 10)
    shared = nn.Linear(3, 3)
    assert count_params(nn.Sequential(shared, shared)) == 12


def test_units():
    assert format_count(1.5e6, "M") == "1.500M" and format_count(2.5e9) == "2.500G"
    assert parse_count("300M") == 3e8 and parse_count(5) == 5.0
    with pytest.raises(ValueError):
        format_count(1, "X")
