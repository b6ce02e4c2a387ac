"""Export gml results as an mmpretrain config plus checkpoint, for mmpretrain inference.

``export_for_mmpretrain(checkpoint, out_dir, run_config)`` writes ``config.py`` and
``weights.pth`` (``{"state_dict", "meta": {"dataset_meta": {"classes"}}}``) that
``mmpretrain.get_model(config, pretrained=weights)`` and
``ImageClassificationInferencer`` load:

- a plain ``mmpretrain.ImageClassifier`` (supervised, KD student, QAT's float model)
  becomes a native mmpretrain config: no gml needed at inference;
- any other gml model - a ``{"model_spec", "state_dict"}`` file such as a pruned model
  (``gml.PrunedModel``) or a NAS subnet - becomes ``GmlClassifier`` (gml rebuilds the
  architecture, mmpretrain loads the weights), with ``custom_imports`` of this package;
- a TorchScript file (gml-qat's ``model_int8.ts``) becomes ``GmlTorchScriptClassifier``.

The data preprocessor and test pipeline come from the run config's mmpretrain dataset
(the same normalisation gml trained with). Every export is checked by loading it back
through mmpretrain and comparing logits with gml's model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import attrs
import torch

from gml_core.api import GmlUserError

from . import registries
from .models import CFG_ATTR

MM_MODULES = "gml_mmpretrain.mm_modules"


@attrs.frozen
class ExportResult:
    """What an export wrote and how well it reloads."""

    config: Path
    weights: Optional[Path]
    model_type: str
    max_abs_diff: float


@attrs.frozen
class _DataSide:
    num_classes: Optional[int] = None
    in_channels: Optional[int] = None
    image_size: Optional[tuple[int, int]] = None
    classes: Optional[list[str]] = None
    norm: Mapping[str, Any] = attrs.field(factory=lambda: {"mean": [0.0], "std": [1.0], "to_rgb": False})
    test_dataset: Optional[dict[str, Any]] = None


def _data_side(config: Any) -> _DataSide:
    """Shape, class names, normalisation and test dataset of a run config's data."""
    if config is None:
        return _DataSide()
    from gml_core.api import build_component
    bundle = build_component("dataset", config.data, "data")
    info, val = bundle.info, bundle.val
    classes = list(getattr(val, "metainfo", {}).get("classes") or []) or None
    norm = getattr(val, "norm", None)
    if norm is None:
        norm = {"mean": [0.0] * info.in_channels, "std": [1.0] * info.in_channels, "to_rgb": False}
    test = dict(getattr(val, "dataset_cfg", {}) or {}) or None
    if test:
        test.pop("indices", None)
    return _DataSide(info.num_classes, info.in_channels, tuple(info.image_size), classes, norm, test)


def _model_spec_and_state(checkpoint: Path, config: Any, trust: bool) -> tuple[dict, dict[str, torch.Tensor]]:
    from gml_core.api import extract_state_dict, load_checkpoint
    ckpt = load_checkpoint(checkpoint, trust)
    if isinstance(ckpt, Mapping) and ckpt.get("format") == "gml-qat-int8":
        raise GmlUserError(f"{checkpoint}: an int8 state file; export the TorchScript file written next to it "
                           "(model_int8.ts) instead")
    if isinstance(ckpt, Mapping) and isinstance(ckpt.get("model_spec"), Mapping):
        return dict(ckpt["model_spec"]), extract_state_dict(ckpt)
    if config is None:
        raise GmlUserError(f"{checkpoint}: has no model_spec; give the run config (--config) that trained it")
    spec = config.algorithm.model.to_dict()
    init_from = spec.pop("init_from", "")
    if init_from:
        base = load_checkpoint(init_from, trust)
        if isinstance(base, Mapping) and isinstance(base.get("model_spec"), Mapping):
            spec = dict(base["model_spec"])
    state = extract_state_dict(ckpt)
    if any(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    return spec, state


def _native_cfg(model: Any, spec: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """The plain mmpretrain config of ``model`` when mmpretrain alone rebuilds it exactly.

    Only a model built from an ``mmpretrain.ImageClassifier`` spec with mmpretrain parts
    qualifies, and only if mmpretrain's model from that config has the same state-dict
    shapes (a pruned or otherwise reshaped copy goes through ``GmlClassifier``).
    """
    cfg = getattr(model, CFG_ATTR, None)
    scope, _, name = str(spec.get("type", "")).partition(".")
    if not isinstance(cfg, dict) or scope not in registries.SCOPES or name != "ImageClassifier":
        return None
    for role in ("backbone", "neck", "head"):
        part = cfg.get(role)
        if isinstance(part, dict) and registries.is_foreign_scope(part.get("type", "")):
            return None
    cfg = registries.strip_scopes(cfg)
    mm_model = registries.in_mmpretrain_scope(registries.models().build)(dict(cfg))
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in mm_model.state_dict().items()}
    return cfg if ours == theirs else None


def _preprocessor(side: _DataSide) -> dict[str, Any]:
    pre = {"type": "ClsDataPreprocessor", "mean": list(side.norm["mean"]), "std": list(side.norm["std"]),
           "to_rgb": bool(side.norm["to_rgb"])}
    if side.num_classes:
        pre["num_classes"] = side.num_classes
    return pre


def _test_parts(side: _DataSide) -> dict[str, Any]:
    if side.test_dataset:
        dataset = dict(side.test_dataset)
    else:
        size = list(side.image_size or (224, 224))
        dataset = {"type": "CustomDataset", "data_root": "", "pipeline": [
            {"type": "LoadImageFromFile"}, {"type": "Resize", "scale": size}, {"type": "PackInputs"}]}
    return {"test_dataloader": {"batch_size": 32, "num_workers": 2, "dataset": dataset,
                                "sampler": {"type": "DefaultSampler", "shuffle": False}},
            "test_evaluator": {"type": "Accuracy", "topk": [1, 5] if (side.num_classes or 0) > 5 else [1]},
            "test_cfg": {}}


def _write_config(path: Path, cfg: dict[str, Any]) -> Path:
    from mmengine.config import Config

    from gml_core.api import atomic_write_text
    text = Config(cfg).pretty_text
    return atomic_write_text(path, "# mmpretrain config written by gml-mmpretrain's export\n" + text)


def _example(side: _DataSide, model: Any = None, shape: Optional[list[int]] = None) -> torch.Tensor:
    """A fixed random batch shaped like the data (or the model's first convolution / recorded shape)."""
    channels, size = side.in_channels, side.image_size
    if shape and len(shape) == 4:
        channels, size = channels or shape[1], size or tuple(shape[2:])
    if channels is None and model is not None:
        conv = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
        channels = conv.in_channels if conv is not None else None
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, channels or 3, *(size or (32, 32)), generator=gen)


def _script_meta(path: Path) -> dict[str, Any]:
    import json

    extra = {"gml_qat.json": ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra["gml_qat.json"] or "{}")


def verify(config: Path, weights: Optional[Path], reference: Any, example: torch.Tensor) -> float:
    """Load the export through mmpretrain and return the largest logit difference to ``reference``."""
    from mmpretrain.apis import get_model

    registries.models()
    mm_model = get_model(str(config), pretrained=str(weights) if weights else False, device="cpu").eval()
    with torch.no_grad():
        ours = reference(example)
        theirs = mm_model(example, mode="tensor")
    return _check_diff(float((ours.float() - theirs.float()).abs().max()), config)


def export_for_mmpretrain(checkpoint: str | Path, out_dir: str | Path, run_config: str | Path | None = None,
                          overrides: Iterable[str] = (), trust: bool = False) -> ExportResult:
    """Write ``config.py`` (+ ``weights.pth``) under ``out_dir`` and verify them through mmpretrain."""
    from gml_core.api import save_checkpoint
    checkpoint, out = Path(checkpoint), Path(out_dir)
    if not checkpoint.is_file():
        raise GmlUserError(f"checkpoint not found: {checkpoint}")
    config = None
    if run_config is not None:
        from gml_core.api import load_config
        config = load_config(run_config, list(overrides))
    side = _data_side(config)
    out.mkdir(parents=True, exist_ok=True)
    base = {"default_scope": "mmpretrain", **_test_parts(side)}
    if checkpoint.suffix == ".ts":
        shutil.copyfile(checkpoint, out / "model.ts")
        model_cfg = {"type": "GmlTorchScriptClassifier", "file": "{{fileDirname}}/model.ts",
                     "data_preprocessor": _preprocessor(side)}
        cfg_path = _write_config(out / "config.py", {**base, "model": model_cfg,
                                                    "custom_imports": {"imports": [MM_MODULES]}})
        reference = torch.jit.load(str(checkpoint), map_location="cpu")
        diff = verify(cfg_path, None, reference, _example(side, shape=_script_meta(checkpoint).get("input_shape")))
        return ExportResult(cfg_path, None, model_cfg["type"], diff)
    from gml_core.api import ComponentSpec, build_component, converter
    spec, state = _model_spec_and_state(checkpoint, config, trust)
    defaults = {k: v for k, v in (("num_classes", side.num_classes), ("in_channels", side.in_channels)) if v}
    model = build_component("model", converter.structure(spec, ComponentSpec), "model_spec", **defaults)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise GmlUserError(f"{checkpoint}: weights do not fit the model {spec.get('type')}: "
                           f"{str(exc).splitlines()[0]}") from None
    model.eval()
    native = _native_cfg(model, spec)
    if native is not None:
        model_cfg = {**native, "data_preprocessor": _preprocessor(side)}
        extra: dict[str, Any] = {}
        weights_state = model.state_dict()
    else:
        model_cfg = {"type": "GmlClassifier", "model": spec, **defaults, "data_preprocessor": _preprocessor(side)}
        extra = {"custom_imports": {"imports": [MM_MODULES]}}
        weights_state = {f"model.{k}": v for k, v in model.state_dict().items()}
    cfg_path = _write_config(out / "config.py", {**base, **extra, "model": model_cfg})
    meta = {"dataset_meta": {"classes": side.classes} if side.classes else {},
            "gml": {"source": str(checkpoint), "model_spec": spec}}
    weights = save_checkpoint({"state_dict": {k: v.detach().cpu() for k, v in weights_state.items()}, "meta": meta},
                          out / "weights.pth")
    diff = verify(cfg_path, weights, model, _example(side, model))
    return ExportResult(cfg_path, weights, model_cfg["type"], diff)


def _check_diff(diff: float, config: Path) -> float:
    if not diff <= 1e-4:
        raise GmlUserError(f"{config}: the model mmpretrain loads from this export differs from gml's "
                           f"(max |logit difference| {diff:.3g}); the export is not usable")
    return diff
