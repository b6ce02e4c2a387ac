"""Export gml detectors as an mmdet config plus checkpoint (``init_detector`` / ``inference_detector``).

``export_for_mmdet(checkpoint, out_dir, run_config)`` writes ``config.py`` and ``weights.pth``
(``{"state_dict", "meta": {"dataset_meta": {"classes"}}}``):

- a plain mmdet detector (supervised, KD student) becomes mmdet's own config
  (``type='RetinaNet'``, ``'FasterRCNN'``, ...): mmdet alone rebuilds it;
- a ``{"model_spec", "state_dict"}`` file such as a pruned detector becomes ``GmlDetector``
  (``gml_mmdet.mm_modules``, in ``custom_imports``): gml rebuilds the architecture.

The data preprocessor (mean/std/BGR->RGB) and the test pipeline (resize to the trained size)
come from the run config's data. Each export is checked by loading it back through mmdet
(``init_detector``) and comparing the raw head outputs with gml's model on one image.
Processes without compiled mmcv ops import ``gml_mmdet.mm_modules`` (or call
``gml_mmdet.ops.install()``) before ``mmdet.apis``.
"""

from __future__ import annotations

import pprint
from pathlib import Path
from typing import Any, Mapping, Optional

import attrs
import torch

from gml_core.api import GmlUserError, atomic_write_text, save_checkpoint

from .models import CFG_ATTR

MM_MODULES = "gml_mmdet.mm_modules"


@attrs.frozen
class ExportResult:
    config: Path
    weights: Path
    model_type: str
    max_abs_diff: float


def _spec_and_state(checkpoint: Path, config: Any, trust: bool) -> tuple[dict, dict[str, torch.Tensor]]:
    from gml_core.api import extract_state_dict, load_checkpoint

    ckpt = load_checkpoint(checkpoint, trust)
    if isinstance(ckpt, Mapping) and isinstance(ckpt.get("model_spec"), Mapping):
        return dict(ckpt["model_spec"]), extract_state_dict(ckpt)
    if config is None:
        raise GmlUserError(f"{checkpoint}: has no model_spec; give the run config (--config) that trained it")
    spec = config.algorithm.model.to_dict()
    spec.pop("init_from", None)
    state = extract_state_dict(ckpt)
    if any(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    return spec, state


def export_for_mmdet(checkpoint: str | Path, out_dir: str | Path, run_config: Optional[str | Path] = None,
                     overrides: tuple[str, ...] = (), trust: bool = False) -> ExportResult:
    """Write ``config.py`` + ``weights.pth`` for mmdet and check them by reloading through mmdet."""
    from gml_core.api import build_component, load_config

    config = load_config(run_config, list(overrides)) if run_config else None
    if config is None:
        raise GmlUserError("export needs the run config (--config): it gives the data's classes, size and "
                           "normalisation")
    bundle = build_component("dataset", config.data, "data")
    val = bundle.val
    spec, state = _spec_and_state(Path(checkpoint), config, trust)
    model = build_component("model", spec, "model", num_classes=bundle.info.num_classes, in_channels=3)
    model.load_state_dict(state)
    model.eval()
    size = bundle.info.image_size
    norm = val.norm
    preprocessor = dict(type="DetDataPreprocessor", mean=norm["mean"], std=norm["std"], bgr_to_rgb=norm["to_rgb"],
                        pad_size_divisor=1)
    native = getattr(model, CFG_ATTR, None) if str(spec.get("type", "")).startswith("mmdet.") else None
    if native is not None:
        model_cfg = {**native, "data_preprocessor": preprocessor}
        model_cfg.pop("init_cfg", None)
        if isinstance(model_cfg.get("backbone"), dict):
            model_cfg["backbone"] = {**model_cfg["backbone"], "init_cfg": None}
        kind, prefix = native["type"], ""
    else:
        model_cfg = dict(type="GmlDetector", model=spec, num_classes=bundle.info.num_classes, in_channels=3,
                         data_preprocessor=preprocessor, backbone=dict(init_cfg=None))
        kind, prefix = f"GmlDetector ({spec.get('type')})", "model."
    pipeline = [dict(type="LoadImageFromFile"), dict(type="Resize", scale=(size[1], size[0]), keep_ratio=False),
                dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape",
                                                      "scale_factor"))]
    classes = tuple(val.metainfo.get("classes") or ())
    cfg = {"default_scope": "mmdet", "custom_imports": dict(imports=[MM_MODULES], allow_failed_imports=False),
           "model": model_cfg, "test_pipeline": pipeline,
           "test_dataloader": dict(dataset=dict(type="CocoDataset", metainfo=dict(classes=classes),
                                                pipeline=pipeline, test_mode=True))}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = "# Exported by gml-mmdet: load with mmdet.apis.init_detector(config, weights)\n" + "".join(
        f"{key} = {pprint.pformat(value, width=110, sort_dicts=False)}\n" for key, value in cfg.items())
    atomic_write_text(out / "config.py", text)
    weights = save_checkpoint({"state_dict": {prefix + k: v.detach().cpu() for k, v in model.state_dict().items()},
                               "meta": {"dataset_meta": {"classes": classes}}}, out / "weights.pth")
    diff = _reload_check(out / "config.py", weights, model, val)
    return ExportResult(out / "config.py", weights, kind, diff)


def _reload_check(config: Path, weights: Path, model: torch.nn.Module, val: Any) -> float:
    """Max |difference| of the head outputs between mmdet's reloaded model and gml's, on one val image."""
    import importlib

    importlib.import_module(MM_MODULES)
    from mmdet.apis import init_detector

    mm = init_detector(str(config), str(weights), device="cpu")
    image, _ = val[0]
    with torch.no_grad():
        ours = model(image[None])
        if hasattr(mm, "rpn_head"):  # two-stage: FPN features and RPN outputs (mmdet's own tensor mode needs
            feats = mm.extract_feat(image[None])  # data samples for the RoI head's proposals)
            theirs = (list(feats), *mm.rpn_head(feats))
        else:
            theirs = mm(image[None], mode="tensor")
    if isinstance(theirs, tuple) and theirs and isinstance(theirs[0], (list, tuple)):
        pairs = [(a, b) for xs, ys in zip(ours, theirs) for a, b in zip(xs, ys)]
    else:
        raise GmlUserError(f"{config}: the reloaded mmdet model returned {type(theirs).__name__}")
    return max(float((a - b).abs().max()) for a, b in pairs)
