"""Export of any gml model spec (here a gml.SmallCNN, as a NAS subnet or other gml model would be)."""

from __future__ import annotations

import pytest
import torch

from gml_core._internal.checkpoint import atomic_save
from gml_core._internal.errors import GmlUserError


def test_gml_model_spec_file_loads_into_mmpretrain(host, tmp_path):
    from mmpretrain.apis import get_model

    from gml_core._internal.models.small_cnn import SmallCNN
    from gml_mmpretrain.export import export_for_mmpretrain

    model = SmallCNN(num_classes=10, in_channels=1, width=4).eval()
    spec = {"type": "gml.SmallCNN", "num_classes": 10, "in_channels": 1, "width": 4}
    path = atomic_save({"model_spec": spec, "state_dict": model.state_dict()}, tmp_path / "subnet.pth")
    result = export_for_mmpretrain(path, tmp_path / "mm")
    assert result.model_type == "GmlClassifier" and result.max_abs_diff == 0.0
    mm_model = get_model(str(result.config), pretrained=str(result.weights), device="cpu").eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(mm_model(x, mode="tensor"), model(x))
        preds = mm_model(x, mode="predict")
    assert [int(p.pred_label) for p in preds] == model(x).argmax(1).tolist()
    assert "gml_mmpretrain.mm_modules" in result.config.read_text()


def test_export_errors_are_clear(host, tmp_path):
    from gml_mmpretrain.export import export_for_mmpretrain

    plain = atomic_save({"state_dict": {"w": torch.zeros(1)}}, tmp_path / "plain.pth")
    with pytest.raises(GmlUserError, match="has no model_spec; give the run config"):
        export_for_mmpretrain(plain, tmp_path / "a")
    int8 = atomic_save({"format": "gml-qat-int8", "state_dict": {}}, tmp_path / "model_int8.pth")
    with pytest.raises(GmlUserError, match="export the TorchScript file"):
        export_for_mmpretrain(int8, tmp_path / "b")


def test_exported_config_runs_mmpretrains_test_loop(host, tmp_path):
    """The exported config + weights evaluated by mmpretrain's own Runner (what tools/test.py does)
    give gml's top-1 on an ImageNet-style folder (file loading, BGR->RGB, resize, normalisation)."""
    import cv2
    import numpy as np
    from mmengine.config import Config
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader

    from gml_core._internal.components import build
    from gml_core._internal.config.loader import load_config
    from gml_core._internal.training.metric import evaluate_model
    from gml_mmpretrain.export import export_for_mmpretrain

    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("val", 6)):
        for cls in ("a", "b", "c"):
            (tmp_path / "images" / split / cls).mkdir(parents=True)
            for i in range(count):
                cv2.imwrite(str(tmp_path / "images" / split / cls / f"{i}.png"),
                            rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    config = tmp_path / "run.toml"
    config.write_text(
        f'[data]\ntype = "mmpretrain.CustomDataset"\ndata_root = "{tmp_path / "images"}"\nresize = 16\n'
        '[algorithm]\ntype = "Supervised"\n'
        'model = {type = "mmpretrain.ImageClassifier", backbone = {type = "ResNet_CIFAR", depth = 18, '
        'base_channels = 8, stem_channels = 8}, neck = {type = "GlobalAveragePooling"}, '
        'head = {type = "LinearClsHead", in_channels = 64}}\n')
    cfg = load_config(config)
    bundle = build("dataset", cfg.data, "data")
    model = build("model", cfg.algorithm.model, "model", num_classes=3, in_channels=3).eval()
    with torch.no_grad():  # make the head informative enough that predictions differ between images
        model.head.fc.weight.normal_(0, 1.0)
    ckpt = atomic_save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}},
                       tmp_path / "best.pth")
    result = export_for_mmpretrain(ckpt, tmp_path / "mm", config)
    assert result.model_type == "ImageClassifier"
    ours = evaluate_model(model, DataLoader(bundle.val, batch_size=6), 3)["accuracy/top1"]
    mm_cfg = Config.fromfile(str(result.config))
    mm_cfg.work_dir, mm_cfg.load_from = str(tmp_path / "mm_test"), str(result.weights)
    mm_cfg.test_dataloader.num_workers = 0
    metrics = Runner.from_cfg(mm_cfg).test()
    assert metrics["accuracy/top1"] == pytest.approx(ours)
    # per image: mmpretrain's inferencer on the files against gml's model on gml's items
    from mmpretrain import ImageClassificationInferencer

    paths = [bundle.val.dataset.get_data_info(i)["img_path"] for i in range(len(bundle.val))]
    inferencer = ImageClassificationInferencer(str(result.config), pretrained=str(result.weights), device="cpu")
    theirs = torch.stack([torch.as_tensor(p["pred_scores"]) for p in inferencer(paths, batch_size=6)])
    with torch.no_grad():
        gml_scores = model(torch.stack([bundle.val[i][0] for i in range(len(bundle.val))])).softmax(1)
    torch.testing.assert_close(theirs.float(), gml_scores, atol=1e-5, rtol=1e-4)


def test_nas_subnet_loads_into_mmpretrain(host, tmp_path):
    pytest.importorskip("gml_nas")
    from mmp_helpers import REPO
    from mmpretrain.apis import get_model

    from gml_core._internal.algorithms.base import BuildContext
    from gml_core._internal.components import build
    from gml_core._internal.config.loader import load_config
    from gml_mmpretrain.export import export_for_mmpretrain
    from gml_nas.export import export_subnet

    config = REPO / "configs" / "nas" / "bignas_digits.toml"
    cfg = load_config(config)
    bundle = build("dataset", cfg.data, "data")
    algo = host.hook.gml_build_algorithm(config=cfg.algorithm, context=BuildContext(bundle.info, cfg.train, tmp_path))
    shape = bundle.info.input_shape
    out = export_subnet(algo.model, algo.mutator.min_subnet(), cfg.algorithm.model, 10, shape[1], tmp_path, shape)
    result = export_for_mmpretrain(out["checkpoint"], tmp_path / "mm", config)
    assert result.model_type == "GmlClassifier" and result.max_abs_diff <= 1e-4
    mm_model = get_model(str(result.config), pretrained=str(result.weights), device="cpu").eval()
    x = torch.stack([bundle.val[i][0] for i in range(4)])
    with torch.no_grad():
        torch.testing.assert_close(mm_model(x, mode="tensor"), out["model"].eval()(x))
