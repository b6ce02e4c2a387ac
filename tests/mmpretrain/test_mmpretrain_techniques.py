"""One KD, one DMCP and one QAT step on an mmpretrain ResNet-18 with CIFAR-10 data in its on-disk
format; the pruned and the int8 results load back into mmpretrain for inference.

The shipped configs of configs/mmpretrain are used, pointed at the tiny data and narrowed to a
quarter of ResNet-18's width by --cfg-options style overrides.
"""

from __future__ import annotations

import pytest
import torch
from mmp_helpers import CONFIGS, check_inference, narrow, tiny_overrides
from torch.utils.data import DataLoader

from gml_core._internal.algorithms.base import BuildContext
from gml_core._internal.components import build
from gml_core._internal.config.loader import load_config
from gml_core._internal.training.run_info import RunInfo


def build_algorithm(host, config, overrides, work):
    cfg = load_config(config, overrides)
    bundle = build("dataset", cfg.data, "data")
    algo = host.hook.gml_build_algorithm(config=cfg.algorithm, context=BuildContext(bundle.info, cfg.train, work))
    loader = DataLoader(bundle.train, batch_size=cfg.train.batch_size)
    run = RunInfo(work, loader, DataLoader(bundle.val, batch_size=4), bundle.info, cfg, max_iters=1,
                  iters_per_epoch=len(loader))
    return cfg, algo, loader, run


def one_step(cfg, algo, loader, run) -> dict:
    wrapper = algo.build_optim_wrapper(cfg.train)
    algo.train()
    algo.before_train(run)
    algo.before_train_iter(0, 0, run.max_iters)
    log = algo.train_step(next(iter(loader)), wrapper)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in log.values()), log
    return log


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def changed(before: dict, module: torch.nn.Module) -> bool:
    after = module.state_dict()
    return any(not torch.equal(v, after[k]) for k, v in before.items())


def test_kd_step(host, cifar_root, tmp_path):
    pytest.importorskip("gml_kd")
    teacher = "algorithm.distiller.distill_cfg.teacher[0]"
    overrides = [*tiny_overrides(cifar_root), *narrow(f"{teacher}.model"), f'{teacher}.ckpt_path=""']
    cfg, algo, loader, run = build_algorithm(host, CONFIGS / "kd_resnet18_cifar10.toml", overrides, tmp_path)
    from mmpretrain.models import ImageClassifier

    teachers = list(algo.distiller.teachers)
    assert isinstance(algo.model, ImageClassifier) and isinstance(teachers[0], ImageClassifier)
    assert teachers[0].backbone.depth == 34 and algo.model.backbone.depth == 18
    student_before, teacher_before = snapshot(algo.model), snapshot(teachers[0])
    log = one_step(cfg, algo, loader, run)
    assert {"loss_cls", "loss_kd", "loss_hint3"} <= set(log)
    assert changed(student_before, algo.model)
    assert not changed(teacher_before, teachers[0])  # the teacher is frozen


def test_dmcp_step_and_pruned_model_in_mmpretrain(host, cifar_root, tmp_path):
    pytest.importorskip("gml_prune")
    from gml_core.api import explicit_model_spec
    from gml_mmpretrain.export import export_for_mmpretrain
    from gml_prune.export import model_spec, prefix_keep, save_pruned

    overrides = [*tiny_overrides(cifar_root), 'algorithm.model.init_from=""', "algorithm.arch_start_training=0"]
    config = CONFIGS / "dmcp_resnet18_cifar10.toml"
    cfg, algo, loader, run = build_algorithm(host, config, overrides, tmp_path)
    weights, arch = snapshot(algo.model), snapshot(algo.mutator)
    log = one_step(cfg, algo, loader, run)
    assert {"loss_0_max", "loss_1_min", "arch_task", "arch_flops", "expected_flops_ratio"} <= set(log)
    assert changed(weights, algo.model) and changed(arch, algo.mutator)  # weight and architecture steps

    counts = algo.mutator.expected_sample()
    small = algo.export_pruned(prefix_keep(counts)).eval()
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in algo.plain_model().parameters())
    spec = model_spec(explicit_model_spec(cfg.algorithm.model, 10, 3).to_dict(), algo.graph, counts)
    pruned = save_pruned(tmp_path / "pruned.pth", small, spec)
    result = export_for_mmpretrain(pruned, tmp_path / "mm", config, overrides)
    assert result.model_type == "GmlClassifier" and result.max_abs_diff <= 1e-4
    check_inference(result, cifar_root, small)


def test_qat_step_and_int8_model_in_mmpretrain(host, cifar_root, tmp_path):
    pytest.importorskip("gml_qat")
    from gml_mmpretrain.export import export_for_mmpretrain

    # from scratch, mmpretrain's zero-initialised last BN of each block (zero_init_residual) would make
    # torch's fused ConvBn QAT divide by a zero scale; a trained model (the shipped init_from) has none
    overrides = [*tiny_overrides(cifar_root), 'algorithm.model.init_from=""', "algorithm.latency_runs=1",
                 "algorithm.model.backbone.zero_init_residual=false", "train.lr=0.01"]
    config = CONFIGS / "iao_resnet18_8xb16_cifar10.py"  # an mmpretrain _base_ config plus an algorithm block
    cfg, algo, loader, run = build_algorithm(host, config, overrides, tmp_path)
    names = [type(m).__name__ for m in algo.model.modules()]
    assert any("FakeQuantize" in n for n in names)  # the traced mmpretrain model carries fake quantization
    weights = snapshot(algo.model)
    log = one_step(cfg, algo, loader, run)
    assert "loss_cls" in log and changed(weights, algo.model)

    from gml_qat.report import int8_report

    report = int8_report(algo.quantizer, algo.model, algo.float_start, algo.from_checkpoint, run, tmp_path,
                         algo.config, algo.float_spec, algo.context.data.input_shape)
    script = report["files"]["int8_torchscript"]
    result = export_for_mmpretrain(script, tmp_path / "mm", config, overrides)
    assert result.model_type == "GmlTorchScriptClassifier" and result.weights is None
    assert result.max_abs_diff == 0.0
    check_inference(result, cifar_root, torch.jit.load(script))
