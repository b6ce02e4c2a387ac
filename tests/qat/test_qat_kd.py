"""Composition with gml-kd: QAT with a float teacher (runs only where gml-kd is installed), and the
clear error when it is not."""

from __future__ import annotations

import sys

import pytest
import torch

from gml_core._internal.errors import ConfigError


def test_distiller_table_without_gml_kd_is_a_clear_error(monkeypatch):
    from gml_core._internal.config.loader import structure_algorithm

    monkeypatch.setitem(sys.modules, "gml_kd", None)  # as if gml-kd were not installed
    monkeypatch.setitem(sys.modules, "gml_kd.config", None)
    table = {"type": "IAO", "model": {"type": "gml.SmallCNN"},
             "distiller": {"distill_cfg": {"teacher": {"model": {"type": "gml.SmallCNN"}}}}}
    with pytest.raises(ConfigError) as exc:
        structure_algorithm(table)
    (path, message), = exc.value.problems
    assert path == "algorithm.distiller" and "pip install gml-kd" in message


def test_qat_with_a_float_teacher(tmp_path, fp32_checkpoint):
    pytest.importorskip("gml_kd", reason="optional dependency gml-kd (pip install gml-qat[kd])")
    import json

    from qat_helpers import REPO

    from gml_core._internal.config.loader import load_config
    from gml_core._internal.training.runner import build_runner

    overrides = [f'algorithm.model.init_from="{fp32_checkpoint}"', "algorithm.model.width=16",
                 f'algorithm.distiller.distill_cfg.teacher[0].ckpt_path="{fp32_checkpoint}"', "train.epochs=1",
                 "algorithm.latency_runs=5", "runtime.progress=false"]
    cfg = load_config(REPO / "configs/qat/iao_kd_digits.toml", overrides, work_dir=str(tmp_path))
    runner, algorithm, hook = build_runner(cfg, tmp_path)
    x, y = torch.randn(4, 1, 16, 16), torch.arange(4)
    losses = algorithm.loss(x, y)
    assert set(losses) == {"loss_kd", "loss_cls"}
    assert all(torch.isfinite(v) for v in losses.values())
    teacher = algorithm.distiller.teachers[0]
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not any(k.startswith("distiller.teachers") for k in algorithm.state_dict())
    runner.train()
    report = json.loads((tmp_path / "qat_report.json").read_text())
    assert report["int8"]["top1"] >= report["fp32"]["top1"] - 2.0
    assert "int8 top1" in hook.summary_rows
