"""The digits-detection set and the COCO-format dataset adapter."""

import json

import numpy as np
import torch
from PIL import Image

from gml_mmdet.digits_det import digits_detection


def test_digits_detection_deterministic_cached_and_tight(tmp_path):
    a = digits_detection(tmp_path / "a", num_train=12, num_val=6, seed=3)
    b = digits_detection(tmp_path / "b", num_train=12, num_val=6, seed=3)
    ja, jb = (json.loads((p / "train.json").read_text()) for p in (a, b))
    assert ja == jb and len(ja["images"]) == 12
    assert (a / "train" / "00000.png").read_bytes() == (b / "train" / "00000.png").read_bytes()
    mtime = (a / "train.json").stat().st_mtime_ns
    assert digits_detection(tmp_path / "a", num_train=12, num_val=6, seed=3) == a
    assert (a / "train.json").stat().st_mtime_ns == mtime  # reused, not rewritten
    for ann in ja["annotations"]:
        image = np.asarray(Image.open(a / ja["images"][ann["image_id"]]["file_name"]))[..., 0]
        x, y, w, h = (int(v) for v in ann["bbox"])
        assert 0 <= ann["category_id"] < 10 and w > 0 and h > 0
        box = image[y:y + h, x:x + w]
        # tight: the border rows/columns of the box hold inked pixels
        assert box[0].max() > 25 and box[-1].max() > 25 and box[:, 0].max() > 25 and box[:, -1].max() > 25


def test_dataset_items_and_metric_bundle(host, det_root):
    from gml_core._internal.components import build
    from gml_core._internal.config.spec import ComponentSpec

    bundle = build("dataset", ComponentSpec("mmdet.DigitsDetection", {"root": str(det_root), "num_train": 16,
                                                                     "num_val": 8}), "data")
    assert bundle.info.num_classes == 10 and bundle.info.image_size == (64, 64)
    assert bundle.best_indicator == "coco/bbox_mAP"
    image, target = bundle.val[0]
    assert image.shape == (3, 64, 64)
    folder = digits_detection(det_root, num_train=16, num_val=8)
    coco = json.loads((folder / "val.json").read_text())
    anns = [a for a in coco["annotations"] if a["image_id"] == int(target["img_id"])]
    n = int((target["labels"] >= 0).sum())
    assert n == len(anns)
    xywh = torch.tensor([a["bbox"] for a in anns])
    expected = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
    assert torch.allclose(target["boxes"][:n], expected)
    assert sorted(target["labels"][:n].tolist()) == sorted(a["category_id"] for a in anns)
    # normalised with mmdet's ImageNet mean/std after BGR->RGB
    raw = np.asarray(Image.open(folder / coco["images"][int(target["img_id"])]["file_name"]).convert("RGB"))
    ref = (torch.as_tensor(raw).permute(2, 0, 1).float() - torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)) \
        / torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    assert torch.allclose(image, ref, atol=1e-4)
