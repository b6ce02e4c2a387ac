"""The digits-detection set: canvases composed from scikit-learn's digits, in COCO format.

Each canvas (``size`` x ``size`` pixels, 3 channels) holds 1-3 real 8x8 digit images of
scikit-learn's bundled set, each scaled up (nearest neighbour) to a random side between
``min_side`` and ``max_side`` and placed without overlap on a dark noisy background. Boxes
are the tight boxes of the digits' inked pixels; labels are the digits. Train and val
canvases use disjoint digit images. Everything derives from ``seed``; the set is written
once (PNG files + ``train.json``/``val.json``) into a folder named after its parameters and
reused afterwards (the JSON files are written last and atomically, so a half-written set is
never taken for a complete one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gml_core.api import atomic_write_bytes, atomic_write_text

CLASSES = tuple(str(i) for i in range(10))


def default_root() -> Path:
    """``$GML_DATA_DIR`` or ``~/.cache/gml``, then ``digits_det``."""
    import os

    base = os.environ.get("GML_DATA_DIR") or Path.home() / ".cache" / "gml"
    return Path(base) / "digits_det"


def _place(rng: np.random.Generator, size: int, sides: list[int], taken: list[tuple[int, int, int, int]]
           ) -> tuple[int, int] | None:
    side = sides[-1]
    for _ in range(50):
        x, y = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
        if all(x + side <= a or a + c <= x or y + side <= b or b + d <= y for a, b, c, d in taken):
            return x, y
    return None


def _canvas(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, size: int, min_side: int,
            max_side: int) -> tuple[np.ndarray, list[dict[str, Any]]]:
    canvas = rng.normal(12, 6, (size, size)).clip(0, 40)
    anns, taken = [], []
    for _ in range(int(rng.integers(1, 4))):
        side = int(rng.integers(min_side, max_side + 1))
        spot = _place(rng, size, [side], taken)
        if spot is None:
            continue
        index = int(rng.integers(0, len(images)))
        scale = side / 8.0
        rows = (np.arange(side) / scale).astype(int)
        digit = images[index][np.ix_(rows, rows)] * (255.0 / 16.0)
        x, y = spot
        region = canvas[y:y + side, x:x + side]
        canvas[y:y + side, x:x + side] = np.maximum(region, digit)
        inked = np.argwhere(digit > 40)
        (y0, x0), (y1, x1) = inked.min(0), inked.max(0) + 1
        anns.append({"bbox": [float(x + x0), float(y + y0), float(x1 - x0), float(y1 - y0)],
                     "category_id": int(labels[index])})
        taken.append((x, y, side, side))
    tint = rng.uniform(0.7, 1.0, 3)
    rgb = (canvas[..., None] * tint).clip(0, 255).astype(np.uint8)
    return rgb, anns


def _png(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _write_split(folder: Path, name: str, rng: np.random.Generator, images: np.ndarray, labels: np.ndarray,
                 count: int, size: int, min_side: int, max_side: int) -> None:
    (folder / name).mkdir(parents=True, exist_ok=True)
    coco: dict[str, Any] = {"images": [], "annotations": [],
                            "categories": [{"id": i, "name": c} for i, c in enumerate(CLASSES)]}
    for i in range(count):
        image, anns = _canvas(rng, images, labels, size, min_side, max_side)
        file = f"{name}/{i:05d}.png"
        atomic_write_bytes(folder / file, _png(image))
        coco["images"].append({"id": i, "file_name": file, "width": size, "height": size})
        for ann in anns:
            x, y, w, h = ann["bbox"]
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": i, "area": w * h,
                                        "iscrowd": 0, **ann})
    atomic_write_text(folder / f"{name}.json", json.dumps(coco))


def digits_detection(root: str | Path | None = None, num_train: int = 400, num_val: int = 100, size: int = 64,
                     min_side: int = 12, max_side: int = 28, seed: int = 0) -> Path:
    """The folder of the set with these parameters, generated on first use."""
    if not 8 <= min_side <= max_side < size:
        raise ValueError(f"digits detection: need 8 <= min_side <= max_side < size, got {min_side}, {max_side}, "
                         f"{size}")
    folder = Path(root or default_root()) / f"n{num_train}-{num_val}_s{size}_d{min_side}-{max_side}_seed{seed}"
    if (folder / "train.json").is_file() and (folder / "val.json").is_file():
        return folder
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    cut = int(len(order) * 0.8)
    for name, part, count, offset in (("val", order[cut:], num_val, 1), ("train", order[:cut], num_train, 2)):
        rng = np.random.default_rng([seed, offset])
        _write_split(folder, name, rng, digits.images[part], digits.target[part], count, size, min_side, max_side)
    return folder
