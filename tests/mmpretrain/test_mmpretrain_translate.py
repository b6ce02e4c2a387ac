"""mmengine-style mmpretrain configs (``_base_`` + ``algorithm``) in gml, up to a full run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mmp_helpers import CONFIGS, REPO, check_inference, narrow

from gml_core._internal.errors import ConfigError
from gml_mmpretrain.translate import MMPretrainConfigWarning, translate

BASE = "mmpretrain::resnet/resnet18_8xb16_cifar10.py"


def test_base_config_becomes_gml_tables(host, tmp_path):
    from mmengine.config import Config

    from gml_core._internal.config.loader import load_config

    path = tmp_path / "wrap.py"
    path.write_text(f"_base_ = ['{BASE}']\nalgorithm = dict(type='Supervised')\n")
    cfg = load_config(path)
    source = Config.fromfile(str(path)).to_dict()  # what mmpretrain itself would run
    data = cfg.data.args
    assert cfg.data.type == "mmpretrain.CIFAR10" and data["data_root"] == "data/cifar10"
    assert data["train"] == {"split": "train"} and data["val"] == {"split": "test"}
    strip = lambda steps: [{k: v for k, v in s.items() if k != "_scope_"} for s in steps]  # noqa: E731
    assert data["pipeline"] == strip(source["train_pipeline"])
    assert data["val_pipeline"] == strip(source["test_pipeline"])
    pre = source["data_preprocessor"]
    assert (data["mean"], data["std"], data["to_rgb"]) == (pre["mean"], pre["std"], pre["to_rgb"])
    opt = source["optim_wrapper"]["optimizer"]
    train = cfg.train
    assert (train.optimizer, train.lr, train.momentum, train.weight_decay) == \
        (opt["type"], opt["lr"], opt["momentum"], opt["weight_decay"])
    assert (train.epochs, train.lr_schedule, train.lr_steps) == \
        (source["train_cfg"]["max_epochs"], "step", list(source["param_scheduler"]["milestones"]))
    assert (train.batch_size, train.val_batch_size, train.num_workers) == (16, 16, 2)
    assert cfg.runtime.log_interval == source["default_hooks"]["logger"]["interval"]
    model = cfg.algorithm.model
    assert model.type == "mmpretrain.ImageClassifier"
    assert model.args["backbone"] == {k: v for k, v in source["model"]["backbone"].items()} | \
        {"out_indices": [3]}
    assert model.args["head"]["num_classes"] == 10 and model.args["data_preprocessor"]["to_rgb"] is False


def test_gml_and_other_configs_are_left_alone():
    assert translate({"data": {"type": "digits"}, "algorithm": {"type": "Supervised"}}) is None
    assert translate({"default_scope": "mmdet", "model": {"type": "FasterRCNN"}}) is None


def test_translation_details():
    base = {"default_scope": "mmpretrain",
            "model": {"type": "ImageClassifier", "backbone": {"type": "ResNet", "depth": 18},
                      "head": {"type": "LinearClsHead", "in_channels": 512, "num_classes": 5,
                               "loss": {"type": "LabelSmoothLoss", "label_smooth_val": 0.1}}},
            "optim_wrapper": {"optimizer": {"type": "AdamW", "lr": 0.001, "weight_decay": 0.05},
                              "clip_grad": {"max_norm": 5.0}},
            "param_scheduler": [{"type": "LinearLR", "by_epoch": False, "begin": 0, "end": 500},
                                {"type": "CosineAnnealingLR", "by_epoch": True, "T_max": 90}],
            "train_cfg": {"by_epoch": True, "max_epochs": 90},
            "algorithm": {"type": "gml.DMCP"},
            "train": {"epochs": 1}}
    with pytest.warns(MMPretrainConfigWarning, match="custom_hooks"):
        out = translate({**base, "custom_hooks": [{"type": "EMAHook"}]})
    assert out["algorithm"]["type"] == "DMCP"
    assert out["algorithm"]["model"]["type"] == "mmpretrain.ImageClassifier"
    assert out["train"] == {"optimizer": "AdamW", "lr": 0.001, "weight_decay": 0.05, "grad_clip": 5.0,
                            "warmup_iters": 500, "lr_schedule": "cosine", "label_smoothing": 0.1,
                            "epochs": 1}  # the gml table in the file wins over max_epochs
    with pytest.raises(ConfigError) as info:
        translate({**base, "optim_wrapper": {"optimizer": {"type": "LAMB"}},
                   "train_cfg": {"type": "IterBasedTrainLoop", "max_iters": 100},
                   "val_evaluator": {"type": "MultiLabelMetric"}})
    keys = [key for key, _ in info.value.problems]
    assert keys == ["train_cfg", "optim_wrapper.optimizer.type", "val_evaluator"]


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.py")))
def test_shipped_python_configs_check(host, name):
    from gml_core._internal.config.loader import load_config

    cfg = load_config(CONFIGS / name)
    assert cfg.algorithm.model.type == "mmpretrain.ImageClassifier"


def test_base_config_with_algorithm_runs_end_to_end(host, cifar_root, tmp_path):
    """mmpretrain's ResNet-18 CIFAR config + a KD block: a few iterations of ``gml run``, then the
    distilled student goes back into mmpretrain for inference."""
    work = tmp_path / "run"
    overrides = [f'data.data_root="{cifar_root}"', "data.train_limit=8", "data.val_limit=4",
                 "train.batch_size=4", "train.val_batch_size=4", "train.num_workers=0", "train.epochs=1",
                 'algorithm.distiller.distill_cfg.teacher.ckpt_path=""', "runtime.progress=false",
                 *narrow("algorithm.model"), *narrow("algorithm.distiller.distill_cfg.teacher.model")]
    config = CONFIGS / "kd_resnet18_8xb16_cifar10.py"
    proc = subprocess.run([sys.executable, "-m", "gml_core", "run", str(config), "--work-dir", str(work),
                           *overrides], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((work / "summary.json").read_text())
    assert set(summary["metrics"]) == {"accuracy/top1", "accuracy/top5"}
    assert (work / "student.pth").is_file()

    from gml_core._internal.checkpoint import load_weights
    from gml_core._internal.components import build
    from gml_core._internal.config.loader import load_config
    from gml_mmpretrain.export import export_for_mmpretrain

    result = export_for_mmpretrain(work / "student.pth", tmp_path / "mm", config, overrides)
    assert result.model_type == "ImageClassifier" and result.max_abs_diff <= 1e-4
    student = build("model", load_config(config, overrides).algorithm.model, "model", num_classes=10, in_channels=3)
    load_weights(student, work / "student.pth")
    check_inference(result, cifar_root, student)


def test_package_lookup_without_pkg_resources():
    """What mmengine needs to find ``mmpretrain::`` configs, with setuptools >= 81 (no pkg_resources)."""
    import os

    import mmcv
    import mmpretrain

    from gml_mmpretrain import compat

    assert compat.is_installed("mmpretrain") and not compat.is_installed("no_such_package_for_gml")
    assert compat.get_installed_path("mmpretrain") == os.path.dirname(mmpretrain.__file__)
    assert compat.get_installed_path("mmcv-lite") == os.path.dirname(mmcv.__file__)  # distribution != module
