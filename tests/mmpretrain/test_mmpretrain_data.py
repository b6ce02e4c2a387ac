"""mmpretrain datasets, pipelines and metrics in gml; gml's digits with an mmpretrain model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mmp_helpers import CLASSES, CONFIGS, read_cifar_batch

from gml_core._internal.components import build
from gml_core._internal.config.spec import ComponentSpec
from gml_core._internal.errors import GmlUserError

CIFAR_MEAN = np.array([125.307, 122.961, 113.8575])
CIFAR_STD = np.array([51.5865, 50.847, 51.255])


def cifar(root, **args):
    return build("dataset", ComponentSpec("mmpretrain.CIFAR10", {"data_root": str(root), **args}), "data")


def expected(image_hwc: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(((image_hwc - mean) / std).transpose(2, 0, 1)).float()


def test_cifar10_real_on_disk_format(host, cifar_root):
    bundle = cifar(cifar_root)
    assert (len(bundle.train), len(bundle.val)) == (20, 8)
    assert (bundle.info.num_classes, bundle.info.in_channels, bundle.info.image_size) == (10, 3, (32, 32))
    assert bundle.train.metainfo["classes"] == tuple(CLASSES) or list(bundle.train.metainfo["classes"]) == CLASSES
    folder = cifar_root / "cifar-10-batches-py"
    parts = [read_cifar_batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    images = np.concatenate([p[0] for p in parts])
    labels = [label for p in parts for label in p[1]]
    for i in (0, 7, 19):
        x, y = bundle.train[i]
        torch.testing.assert_close(x, expected(images[i], CIFAR_MEAN, CIFAR_STD))
        assert y == labels[i]
    test_images, test_labels = read_cifar_batch(folder / "test_batch")
    x, y = bundle.val[5]
    torch.testing.assert_close(x, expected(test_images[5], CIFAR_MEAN, CIFAR_STD))
    assert y == test_labels[5]


def test_pipeline_limits_and_normalisation(host, cifar_root):
    bundle = cifar(cifar_root, pipeline=[{"type": "RandomFlip", "prob": 1.0, "direction": "horizontal"},
                                         {"type": "PackInputs"}],
                   mean=[0.0, 0.0, 0.0], std=[255.0, 255.0, 255.0], train_limit=6, val_limit=3)
    assert (len(bundle.train), len(bundle.val)) == (6, 3)
    images, _ = read_cifar_batch(cifar_root / "cifar-10-batches-py" / "data_batch_1")
    x, _ = bundle.train[1]
    torch.testing.assert_close(x, expected(images[1][:, ::-1], np.zeros(3), np.full(3, 255.0)))


def test_checked_and_missing_data_are_clear_errors(host, cifar_root, tmp_path):
    with pytest.raises(GmlUserError, match="CIFAR10 could not be loaded"):
        cifar(cifar_root, verify_md5=True)  # the generated files are not the official ones
    with pytest.raises(GmlUserError, match="Cannot find CIFAR10"):
        cifar(tmp_path / "nowhere")  # never downloads


def test_imagenet_style_folders(host, tmp_path):
    import cv2

    rng = np.random.default_rng(1)
    written = {}
    for split, count in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(count):
                rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
                cv2.imwrite(str(tmp_path / split / cls / f"{i}.png"), rgb[:, :, ::-1])  # cv2 writes BGR
                written[(split, cls, i)] = rgb
    bundle = build("dataset", ComponentSpec("mmpretrain.CustomDataset", {"data_root": str(tmp_path),
                                                                         "resize": 16}), "data")
    assert (len(bundle.train), len(bundle.val), bundle.info.num_classes) == (6, 4, 2)
    assert list(bundle.train.metainfo["classes"]) == ["cat", "dog"]
    mean, std = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])
    for index in range(len(bundle.val)):
        x, y = bundle.val[index]
        path = bundle.val.dataset.get_data_info(index)["img_path"]
        cls, i = path.split("/")[-2], int(path.split("/")[-1][0])
        assert y == ["cat", "dog"].index(cls)
        torch.testing.assert_close(x, expected(written[("val", cls, i)], mean, std))  # BGR file -> RGB


def test_topk_accuracy_matches_mmpretrain_metric():
    from mmpretrain.evaluation import Accuracy

    from gml_core._internal.training.metric import topk_correct

    gen = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(50, 10, generator=gen), torch.randint(0, 10, (50,), generator=gen)
    ours = [100.0 * c / 50 for c in topk_correct(logits, labels, (1, 5))]
    # mmpretrain scores softmax probabilities (its threshold 0 would reject negative raw logits)
    theirs = Accuracy.calculate(logits.softmax(1), labels, topk=(1, 5))
    assert ours == pytest.approx([float(t[0]) for t in theirs])


def test_gml_digits_with_an_mmpretrain_model(host, tmp_path):
    from gml_core._internal.algorithms.base import BuildContext
    from gml_core._internal.config.loader import load_config

    cfg = load_config(CONFIGS / "resnet18_digits.toml", ["train.batch_size=16"])
    bundle = build("dataset", cfg.data, "data")
    algo = host.hook.gml_build_algorithm(config=cfg.algorithm, context=BuildContext(bundle.info, cfg.train, tmp_path))
    assert algo.model.backbone.conv1.in_channels == 1
    inputs = torch.stack([bundle.train[i][0] for i in range(16)])
    labels = torch.tensor([bundle.train[i][1] for i in range(16)])
    log = algo.train_step((inputs, labels), algo.build_optim_wrapper(cfg.train))
    assert torch.isfinite(log["loss"])
