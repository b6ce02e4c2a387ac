"""Detection KD: PKD and dense sigmoid KD against hand computations, and a KD step on RetinaNets."""

import numpy as np
import pytest
import torch
from mmdet_helpers import CONFIGS, tiny
from torch.utils.data import DataLoader

from gml_core._internal.algorithms.base import BuildContext
from gml_core._internal.components import build
from gml_core._internal.config.loader import load_config
from gml_core._internal.training.run_info import RunInfo
from gml_mmdet.losses import DenseSigmoidKDLoss, PKDLoss


def test_pkd_is_one_minus_channel_pearson():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.double)
    t = 0.5 * s + torch.randn(3, 4, 5, 6, generator=g, dtype=torch.double)
    rs = [np.corrcoef(s[:, c].reshape(-1).numpy(), t[:, c].reshape(-1).numpy())[0, 1] for c in range(4)]
    expected = float(np.mean([1 - r for r in rs]))
    loss = PKDLoss(loss_weight=1.0, eps=0.0)
    assert float(loss(s, t)) == pytest.approx(expected, rel=1e-9)
    # invariant to per-channel scale and offset of the teacher; zero for a positively scaled copy
    scale = torch.tensor([2.0, 0.1, 5.0, 1.0], dtype=torch.double).view(1, 4, 1, 1)
    assert float(loss(s, t * scale + 3)) == pytest.approx(expected, rel=1e-9)
    assert float(loss(s, 7 * s - 1)) == pytest.approx(0.0, abs=1e-12)
    assert float(PKDLoss(loss_weight=2.0, eps=0.0)(s, t)) == pytest.approx(2 * expected, rel=1e-9)
    # a smaller student map is resized to the teacher's
    assert torch.isfinite(loss(torch.randn(3, 4, 3, 3), torch.randn(3, 4, 6, 6)))


def test_dense_sigmoid_kd_hand_case():
    s, t = torch.tensor([[0.0, 2.0]]), torch.tensor([[0.0, -2.0]])
    q = 1 / (1 + np.exp(2.0))  # sigmoid(-2)
    p = 1 / (1 + np.exp(-2.0))  # sigmoid(2)
    bce = [np.log(2.0), -(q * np.log(p) + (1 - q) * np.log(1 - p))]
    assert float(DenseSigmoidKDLoss(tau=1.0)(s, t)) == pytest.approx(np.mean(bce), rel=1e-6)
    x = torch.randn(2, 6, requires_grad=True)
    DenseSigmoidKDLoss(tau=2.0)(x, x.detach()).backward()
    assert torch.allclose(x.grad, torch.zeros_like(x.grad), atol=1e-7)  # the minimum is s = t


def test_kd_step_on_retinanets(host, det_root, tmp_path):
    pytest.importorskip("gml_kd")
    teacher = "algorithm.distiller.distill_cfg.teacher[0]"
    cfg = load_config(CONFIGS / "kd_retinanet_r18_digits.toml", [*tiny(det_root), f'{teacher}.ckpt_path=""'])
    bundle = build("dataset", cfg.data, "data")
    algo = host.hook.gml_build_algorithm(config=cfg.algorithm, context=BuildContext(bundle.info, cfg.train, tmp_path))
    teachers = list(algo.distiller.teachers)
    assert algo.model.backbone.depth == 18 and teachers[0].backbone.depth == 34
    loader = DataLoader(bundle.train, batch_size=8)
    run = RunInfo(tmp_path, loader, DataLoader(bundle.val, batch_size=8), bundle.info, cfg, max_iters=1,
                  iters_per_epoch=len(loader))
    wrapper = algo.build_optim_wrapper(cfg.train)
    before_s = {k: v.clone() for k, v in algo.model.state_dict().items() if v.is_floating_point()}
    before_t = {k: v.clone() for k, v in teachers[0].state_dict().items() if v.is_floating_point()}
    algo.train()
    algo.before_train(run)
    log = algo.train_step(next(iter(loader)), wrapper)
    assert {"loss_cls", "loss_pkd0", "loss_pkd2", "loss_cls0", "loss_cls2"} <= set(log)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    after_s, after_t = algo.model.state_dict(), teachers[0].state_dict()
    assert any(not torch.equal(v, after_s[k]) for k, v in before_s.items())
    assert all(torch.equal(v, after_t[k]) for k, v in before_t.items())  # the teacher is frozen
    # the student's label loss is the detector's own loss on the box targets
    images, targets = next(iter(loader))
    own = algo.model.task_losses(algo.model(images), targets)
    assert torch.isclose(algo._label_loss(algo.model(images), targets), own["loss_cls"] + own["loss_bbox"])
