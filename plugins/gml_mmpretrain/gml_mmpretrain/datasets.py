"""mmpretrain datasets and pipelines as a gml ``DataBundle`` of ``(image_tensor, label)`` items.

The mmpretrain dataset runs its own pipeline (ending in ``PackInputs``); the
adapter then does what mmpretrain's ``ClsDataPreprocessor`` does per batch -
optional BGR->RGB swap and ``(x - mean) / std`` - per sample, so gml algorithms
receive normalised float tensors and integer labels.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Callable, Optional, Sequence

import torch
from torch.utils.data import Dataset

from gml_core.api import GmlUserError, did_you_mean, one_of

from . import registries
from .checks import PipelineCfg, accepted_params, check_kwargs, check_pipeline

#: per-dataset normalisation used by mmpretrain's configs (0-255 pixel scale)
_STATS = {
    "CIFAR10": ([125.307, 122.961, 113.8575], [51.5865, 50.847, 51.255]),
    "CIFAR100": ([129.304, 124.07, 112.434], [68.17, 65.392, 70.418]),
    "MNIST": ([33.46], [78.87]),
    "FashionMNIST": ([72.94], [90.02]),
}
_IMAGENET = ([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
#: datasets whose held-out split is named "val" (the others use "test")
_VAL_SPLIT = {"ImageNet", "ImageNet21k"}
#: datasets that are not single-label image classification
_UNSUPPORTED = {"BaseDataset", "MultiLabelDataset", "MultiTaskDataset", "VOC", "NLVR2", "InShop", "KFoldDataset"}
#: arguments the adapter sets per split itself
_PER_SPLIT = ("split", "pipeline", "test_mode", "indices", "download")


class MMPretrainSamples(Dataset):
    """Items of an mmpretrain dataset as ``(normalised CxHxW float tensor, int label)``."""

    def __init__(self, dataset: Any, mean: Sequence[float], std: Sequence[float], to_rgb: bool,
                 dataset_cfg: Optional[dict] = None):
        self.dataset = dataset
        #: the mmpretrain dataset dict (type, split arguments, pipeline) this split was built from
        self.dataset_cfg = dict(dataset_cfg or {})
        self.norm = {"mean": list(mean), "std": list(std), "to_rgb": bool(to_rgb)}
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.to_rgb = to_rgb

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def metainfo(self) -> dict[str, Any]:
        """The mmpretrain dataset's meta information (class names), as mmengine expects."""
        return dict(self.dataset.metainfo)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.dataset[index]
        inputs, sample = item["inputs"], item["data_samples"]
        image = torch.as_tensor(inputs)
        if self.to_rgb and image.shape[0] == 3:
            image = image.flip(0)
        if image.shape[0] != self.mean.shape[0]:
            raise GmlUserError(f"data: images have {image.shape[0]} channels but mean/std have "
                               f"{self.mean.shape[0]} values")
        image = (image.float() - self.mean) / self.std
        label = getattr(sample, "gt_label", None)
        if label is None or label.numel() != 1:
            raise GmlUserError("data: this split has no single class label per image (e.g. an unlabelled test "
                               "split); choose a labelled split with val = {split = ...}")
        return image, int(label.view(-1)[0])


def _defaults(name: str, cls: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split arguments for training and validation when the user gives none."""
    params, _ = accepted_params(cls)
    if "split" in params:
        return {"split": "train"}, {"split": "val" if name in _VAL_SPLIT else "test"}
    if "data_prefix" in params:
        return {"data_prefix": "train"}, {"data_prefix": "val"}
    return {}, {}


def _md5_free(cls: Any) -> dict[str, Any]:
    """Instance attributes that turn ``cls``'s file checks into presence checks (no md5 gate)."""
    attrs: dict[str, Any] = {}
    for attr in ("train_list", "test_list"):
        if isinstance(getattr(cls, attr, None), list):
            attrs[attr] = [[entry[0], None] for entry in getattr(cls, attr)]
    if isinstance(getattr(cls, "meta", None), dict):
        attrs["meta"] = {**cls.meta, "md5": None}
    return attrs


def _default_pipeline(sample: dict[str, Any], resize: int) -> list[dict[str, Any]]:
    if "img" in sample:  # in-memory arrays (CIFAR, MNIST)
        return [dict(type="PackInputs")]
    return [dict(type="LoadImageFromFile"), dict(type="Resize", scale=(resize, resize)), dict(type="PackInputs")]


def _transforms(pipeline: Sequence[dict[str, Any]]) -> list[Any]:
    reg = registries.transforms()
    steps = []
    for step in registries.strip_scopes(list(pipeline)):
        steps.append(reg.build(step))
    return steps


def _open(cls: Any, args: dict[str, Any], pipeline: Optional[Sequence[dict]], what: str,
          verify_md5: bool) -> Any:
    try:
        dataset = cls.__new__(cls)
        if not verify_md5:
            vars(dataset).update(_md5_free(cls))
        dataset.__init__(**args, pipeline=_transforms(pipeline or []))
        dataset.full_init()
    except (RuntimeError, AssertionError, FileNotFoundError, ValueError, KeyError) as exc:
        raise GmlUserError(f"data ({what}): mmpretrain {cls.__name__} could not be loaded: "
                           f"{type(exc).__name__}: {exc}") from None
    if len(dataset) == 0:
        raise GmlUserError(f"data ({what}): mmpretrain {cls.__name__} found no samples with {args}")
    return dataset


def _cfg(name: str, args: dict[str, Any], pipeline: Sequence[dict]) -> dict[str, Any]:
    return {"type": name, **copy.deepcopy(args), "pipeline": registries.strip_scopes(list(pipeline))}


@registries.in_mmpretrain_scope
def build_dataset(name: str, data_root: str = "", train: Optional[dict] = None, val: Optional[dict] = None,
                  pipeline: Optional[PipelineCfg] = None, val_pipeline: Optional[PipelineCfg] = None,
                  mean: Optional[list[float]] = None, std: Optional[list[float]] = None,
                  to_rgb: Optional[bool] = None, resize: int = 224, train_limit: int = 0, val_limit: int = 0,
                  verify_md5: bool = False, **common: Any) -> Any:
    """Train and validation splits of mmpretrain dataset ``name`` as a ``DataBundle``."""
    from gml_core.api import DataBundle, DataInfo
    reg = registries.datasets()
    cls = reg.get(name)
    train_args, val_args = _defaults(name, cls)
    common = registries.strip_scopes(common)
    if data_root:
        common["data_root"] = data_root
    params, _ = accepted_params(cls)
    train_args = {**train_args, **common, **registries.strip_scopes(train or {})}
    val_args = {**val_args, **common, **registries.strip_scopes(val or {})}
    if "download" in params:
        train_args.setdefault("download", False)
        val_args.setdefault("download", False)
    if "test_mode" in params:
        val_args.setdefault("test_mode", True)
    if train_limit:
        train_args["indices"] = train_limit
    if val_limit:
        val_args["indices"] = val_limit
    for what, args in (("train", train_args), ("val", val_args)):
        check_kwargs(cls, {k: v for k, v in args.items() if k != "pipeline"}, f"data.{what} ({name})")
    for what, steps in (("data.pipeline", pipeline), ("data.val_pipeline", val_pipeline)):
        if steps is not None:
            check_pipeline(steps, what)
    train_set = _open(cls, train_args, pipeline, "train", verify_md5)
    val_set = _open(cls, val_args, val_pipeline, "val", verify_md5)
    sample = train_set.get_data_info(0)
    if pipeline is None:
        pipeline = _default_pipeline(sample, resize)
        train_set.pipeline.transforms[:] = _transforms(pipeline)
    if val_pipeline is None:
        val_pipeline = _default_pipeline(sample, resize)
        val_set.pipeline.transforms[:] = _transforms(val_pipeline)
    default_mean, default_std = _STATS.get(name, _IMAGENET)
    mean, std = list(mean or default_mean), list(std or default_std)
    if len(mean) != len(std):
        raise GmlUserError(f"data: mean has {len(mean)} values but std has {len(std)}")
    rgb = ("img" not in sample) if to_rgb is None else to_rgb
    train_items = MMPretrainSamples(train_set, mean, std, rgb, _cfg(name, train_args, pipeline))
    val_items = MMPretrainSamples(val_set, mean, std, rgb, _cfg(name, val_args, val_pipeline))
    first, _ = val_items[0]
    classes = train_set.CLASSES or val_set.CLASSES
    num_classes = len(classes) if classes else int(max(train_set.get_gt_labels())) + 1
    info = DataInfo(num_classes, int(first.shape[0]), (int(first.shape[1]), int(first.shape[2])))
    return DataBundle(train_items, val_items, info)


def dataset_builder(name: str, scope: str = "mmpretrain") -> Callable[..., Any]:
    """The gml dataset factory for ``scope.name`` with a signature gml can check."""
    reg = registries.datasets()
    if name not in reg.module_dict or name in _UNSUPPORTED:
        names = [n for n in registries.registered_names(reg) if n not in _UNSUPPORTED]
        if name in _UNSUPPORTED:
            raise GmlUserError(f"'{scope}.{name}' is not a single-label classification dataset; "
                               f"supported: {one_of(names)}")
        raise GmlUserError(f"unknown mmpretrain dataset '{scope}.{name}'{did_you_mean(name, names)}; "
                           f"registered: {one_of(names)}")
    cls = reg.get(name)

    def build(**kwargs: Any) -> Any:
        return build_dataset(name, **kwargs)

    own = inspect.signature(build_dataset).parameters
    params = [p for n, p in own.items() if n not in ("name", "common")]
    names, is_open = accepted_params(cls)
    taken = {p.name for p in params}
    for extra in sorted(names - taken - set(_PER_SPLIT) - {"self", "data_root"}):
        params.append(inspect.Parameter(extra, inspect.Parameter.KEYWORD_ONLY, default=None))
    if is_open:
        params.append(own["common"])
    build.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    build.__annotations__ = {k: v for k, v in build_dataset.__annotations__.items() if k not in ("name", "common")}
    build.__name__ = f"{scope}.{name}"
    build.__doc__ = f"mmpretrain dataset {name} (train and validation splits) for gml."
    return build
