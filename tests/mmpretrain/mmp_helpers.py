"""Helpers of the gml-mmpretrain tests (a unique module name: imported by several test files)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "mmpretrain"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

#: a ResNet-18 (CIFAR stem) at a quarter of the width keeps technique steps fast on a CPU
NARROW = {"stem_channels": 16, "base_channels": 16}


def write_cifar10(root: Path, per_batch: int = 4, test: int = 8, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` exactly as the CIFAR-10 "python version" lays it out.

    Five ``data_batch_*`` pickles and ``test_batch`` (dicts with ``data`` uint8 N x 3072 in
    R,G,B planes and ``labels``) plus ``batches.meta`` with ``label_names``.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(name: str, n: int, offset: int) -> None:
        labels = [(offset + i) % 10 for i in range(n)]
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        entry = {"batch_label": name, "labels": labels, "data": images.reshape(n, 3072),
                 "filenames": [f"img_{offset + i}.png" for i in range(n)]}
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)

    for i in range(5):
        batch(f"data_batch_{i + 1}", per_batch, i * per_batch)
    batch("test_batch", test, 3)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072}, fh)
    return root


def read_cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """Images as N x 32 x 32 x 3 (RGB) and labels, read independently of mmpretrain."""
    with open(path, "rb") as fh:
        entry = pickle.load(fh, encoding="latin1")
    return entry["data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), list(entry["labels"])


def tiny_overrides(root: Path, prefix: str = "algorithm.model", limit: int = 4) -> list[str]:
    """--cfg-options that point a CIFAR-10 config at the tiny data and narrow its ResNet-18."""
    return [f'data.data_root="{root}"', f"data.train_limit={limit}", f"data.val_limit={limit}",
            f"train.batch_size={limit}", "train.num_workers=0", *narrow(prefix)]


def narrow(prefix: str) -> list[str]:
    return [f"{prefix}.backbone.stem_channels=16", f"{prefix}.backbone.base_channels=16",
            f"{prefix}.head.in_channels=128"]


def check_inference(result, cifar_root, gml_model) -> None:
    """mmpretrain's inferencer on raw CIFAR images agrees with gml's model on gml's data items."""
    import torch
    from mmpretrain import ImageClassificationInferencer

    from gml_core._internal.components import build
    from gml_core._internal.config.spec import ComponentSpec

    images, _ = read_cifar_batch(cifar_root / "cifar-10-batches-py" / "test_batch")
    inferencer = ImageClassificationInferencer(model=str(result.config),
                                               pretrained=str(result.weights) if result.weights else None,
                                               device="cpu")
    theirs = torch.stack([torch.as_tensor(p["pred_scores"]) for p in inferencer(list(images[:4]), batch_size=4)])
    bundle = build("dataset", ComponentSpec("mmpretrain.CIFAR10", {"data_root": str(cifar_root)}), "data")
    x = torch.stack([bundle.val[i][0] for i in range(4)])
    with torch.no_grad():
        ours = gml_model.eval()(x).float().softmax(1)
    torch.testing.assert_close(theirs.float(), ours, atol=1e-5, rtol=1e-4)
