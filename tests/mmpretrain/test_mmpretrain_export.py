"""Export of any gml model spec (here a gml.SmallCNN, as a NAS subnet or other gml model would be)."""

from __future__ import annotations

import pytest
import torch

from gml_core.checkpoint import atomic_save
from gml_core.errors import GmlUserError


def test_gml_model_spec_file_loads_into_mmpretrain(host, tmp_path):
    from mmpretrain.apis import get_model

    from gml_core.models.small_cnn import SmallCNN
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
