"""COCO-format detection data through mmdet's own dataset and pipeline, as a gml ``DataBundle``.

Items are ``(image, targets)``: the image normalised as mmdet's ``DetDataPreprocessor``
would (BGR->RGB, ``(x - mean) / std``) and zero-padded to ``image_size`` (bottom/right),
and ``targets`` a dict of fixed-shape tensors so torch's default collate batches them:
``boxes`` (``max_boxes`` x 4, x1y1x2y2 in the resized image), ``labels`` (-1 = padding),
``img_shape``/``ori_shape`` (h, w), ``scale_factor`` (w, h) and ``img_id``. The bundle
carries mmdet's ``CocoMetric`` (pycocotools mAP) as its validation metric.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from torch.utils.data import Dataset

from gml_core.api import GmlUserError

from . import registries

_MEAN, _STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def default_pipeline(size: int, train: bool) -> list[dict[str, Any]]:
    """mmdet's usual steps at a fixed square size (random flips when training)."""
    steps: list[dict[str, Any]] = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
                                   dict(type="Resize", scale=(size, size), keep_ratio=False)]
    if train:
        steps.append(dict(type="RandomFlip", prob=0.5))
    steps.append(dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape",
                                                         "scale_factor", "flip", "flip_direction")))
    return steps


class DetSamples(Dataset):
    """An mmdet dataset's packed items as ``(normalised padded image, padded box targets)``."""

    def __init__(self, dataset: Any, image_size: int, max_boxes: int, mean: list[float], std: list[float],
                 to_rgb: bool, dataset_cfg: Optional[dict] = None):
        self.dataset = dataset
        self.image_size, self.max_boxes = image_size, max_boxes
        self.norm = {"mean": list(mean), "std": list(std), "to_rgb": bool(to_rgb)}
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.dataset_cfg = dict(dataset_cfg or {})

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def metainfo(self) -> dict[str, Any]:
        return dict(self.dataset.metainfo)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        item = self.dataset[index]
        image, sample = torch.as_tensor(item["inputs"]), item["data_samples"]
        if self.norm["to_rgb"] and image.shape[0] == 3:
            image = image.flip(0)
        image = (image.float() - self.mean) / self.std
        h, w = image.shape[1:]
        if h > self.image_size or w > self.image_size:
            raise GmlUserError(f"data: the pipeline gives {h}x{w} images, larger than image_size = {self.image_size}; "
                               "resize in the pipeline or raise data.image_size")
        image = torch.nn.functional.pad(image, (0, self.image_size - w, 0, self.image_size - h))
        gt = sample.gt_instances
        boxes = torch.as_tensor(getattr(gt.bboxes, "tensor", gt.bboxes)).float()
        labels = torch.as_tensor(gt.labels).long()
        if len(labels) > self.max_boxes:
            raise GmlUserError(f"data: image {sample.metainfo.get('img_path')} has {len(labels)} boxes, more than "
                               f"max_boxes = {self.max_boxes}; raise data.max_boxes")
        padded_boxes = torch.zeros(self.max_boxes, 4)
        padded_labels = torch.full((self.max_boxes,), -1, dtype=torch.long)
        padded_boxes[:len(labels)], padded_labels[:len(labels)] = boxes, labels
        meta = sample.metainfo
        scale = meta.get("scale_factor", (1.0, 1.0))
        return image, {"boxes": padded_boxes, "labels": padded_labels,
                       "img_shape": torch.tensor([self.image_size, self.image_size]),
                       "ori_shape": torch.tensor(meta["ori_shape"][:2]),
                       "scale_factor": torch.tensor([float(scale[0]), float(scale[1])]),
                       "img_id": torch.tensor(int(meta.get("img_id", index)))}


def _tupled(value: Any) -> Any:
    """Lists of numbers as tuples (TOML/JSON have no tuples; mmcv's transforms test for them)."""
    if isinstance(value, dict):
        return {k: _tupled(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_tupled(v) for v in value]
        return tuple(items) if all(isinstance(v, (int, float)) for v in items) else items
    return value


def _open(cfg: dict[str, Any], what: str) -> Any:
    from .ops import install

    install()
    try:
        dataset = registries.datasets().build(cfg)
        dataset.full_init()
    except (FileNotFoundError, AssertionError, KeyError, ValueError, TypeError, OSError) as exc:
        raise GmlUserError(f"data ({what}): mmdet {cfg.get('type')} could not be loaded: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if len(dataset) == 0:
        raise GmlUserError(f"data ({what}): mmdet {cfg.get('type')} found no images with annotations in "
                           f"{cfg.get('data_root')}/{cfg.get('ann_file')}")
    return dataset


@registries.in_mmdet_scope
def build_coco(data_root: str, train_ann: str = "annotations/instances_train2017.json",
               val_ann: str = "annotations/instances_val2017.json", train_prefix: str = "train2017/",
               val_prefix: str = "val2017/", classes: Optional[list[str]] = None, image_size: int = 512,
               max_boxes: int = 100, pipeline: Optional[list[dict]] = None, val_pipeline: Optional[list[dict]] = None,
               mean: Optional[list[float]] = None, std: Optional[list[float]] = None, to_rgb: bool = True,
               train_limit: int = 0, val_limit: int = 0, dataset_type: str = "CocoDataset") -> Any:
    """Train and validation splits of a COCO-format dataset (mmdet's ``CocoDataset``)."""
    from gml_core.api import DataBundle, DataInfo

    splits = []
    for what, ann, prefix, steps, limit in (("train", train_ann, train_prefix, pipeline, train_limit),
                                            ("val", val_ann, val_prefix, val_pipeline, val_limit)):
        steps = _tupled(registries.strip_scopes(list(steps))) if steps else default_pipeline(image_size,
                                                                                             what == "train")
        cfg: dict[str, Any] = dict(type=dataset_type, data_root=str(data_root), ann_file=ann,
                                   data_prefix=dict(img=prefix), pipeline=steps, test_mode=what == "val",
                                   filter_cfg=dict(filter_empty_gt=what == "train", min_size=1))
        if classes:
            cfg["metainfo"] = dict(classes=tuple(classes))
        if limit:
            cfg["indices"] = limit
        dataset = _open(cfg, what)
        splits.append(DetSamples(dataset, image_size, max_boxes, list(mean or _MEAN), list(std or _STD), to_rgb,
                                 cfg))
    train, val = splits
    classes = list(train.metainfo.get("classes") or [])
    info = DataInfo(len(classes), 3, (image_size, image_size))
    from .metric import coco_metric_factory

    return DataBundle(train, val, info, metric=coco_metric_factory(classes), best_indicator="coco/bbox_mAP")


def digits_detection(root: str = "", num_train: int = 400, num_val: int = 100, size: int = 64, min_side: int = 12,
                     max_side: int = 28, seed: int = 0, max_boxes: int = 8, train_limit: int = 0,
                     val_limit: int = 0) -> Any:
    """The built-in digits-detection set (see ``digits_det``), generated on first use."""
    from .digits_det import CLASSES
    from .digits_det import digits_detection as make

    folder = make(root or None, num_train, num_val, size, min_side, max_side, seed)
    pipeline = default_pipeline(size, False)
    return build_coco(str(folder), "train.json", "val.json", "", "", list(CLASSES), size, max_boxes, pipeline,
                      pipeline, train_limit=train_limit, val_limit=val_limit)


def coco_dataset(data_root: str, **kwargs: Any) -> Any:
    if not Path(data_root).is_dir():
        raise GmlUserError(f"data.data_root: '{data_root}' is not a folder")
    return build_coco(data_root, **kwargs)


coco_dataset.__signature__ = __import__("inspect").signature(build_coco)  # type: ignore[attr-defined]
