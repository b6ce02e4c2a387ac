"""Distillation on images without labels (``data.label_limit``) and the init stage's own learning rate."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kd_helpers import FakeRun, batch, build, head, save_teacher, table

from gml_core._internal.config.loader import structure_algorithm
from gml_core._internal.data.fashion_mnist import UNLABELLED, fashion_mnist
from gml_core._internal.errors import ConfigError, GmlUserError
from gml_kd.algorithms import UNLABELLED as KD_UNLABELLED

LOGITS = head("head.fc", "head.fc", "kd", {"type": "DistillKLDivLoss", "tau": 1.0})
AB = head("backbone.layer3.0.bn", "backbone.layer3.0.bn", "ab3", {"type": "ABLoss", "loss_weight": 0.01},
          stu_connector={"type": "ConvBNConnector"})


def _write_idx(folder, n: int) -> list[int]:
    labels = [i % 10 for i in range(n)]
    images = np.arange(n * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(n, 28, 28)
    for prefix in ("train", "t10k"):
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as fh:
            fh.write(struct.pack(">HBB3I", 0, 8, 3, n, 28, 28) + images.tobytes())
        with open(folder / f"{prefix}-labels-idx1-ubyte", "wb") as fh:
            fh.write(struct.pack(">HBBI", 0, 8, 1, n) + bytes(labels))
    return labels


def test_label_limit_hides_the_labels_after_the_first_n_and_keeps_the_images(tmp_path):
    labels = _write_idx(tmp_path, 6)
    full = fashion_mnist(root=str(tmp_path))
    part = fashion_mnist(root=str(tmp_path), label_limit=2)
    assert KD_UNLABELLED == UNLABELLED == -100   # PyTorch's ignore_index
    assert [int(part.train[i][1]) for i in range(6)] == labels[:2] + [UNLABELLED] * 4
    assert all(torch.equal(part.train[i][0], full.train[i][0]) for i in range(6))
    assert [int(part.val[i][1]) for i in range(6)] == labels    # the test split keeps every label
    assert [int(full.train[i][1]) for i in range(6)] == labels   # nothing changed in place
    with pytest.raises(GmlUserError, match=r"data\.label_limit: must be <= the 3 training images, got 4"):
        fashion_mnist(root=str(tmp_path), train_limit=3, label_limit=4)
    with pytest.raises(GmlUserError, match=r"data\.label_limit: must be >= 0"):
        fashion_mnist(root=str(tmp_path), label_limit=-1)


def test_unlabelled_images_get_the_distillation_loss_only(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    algo = build(table(str(ckpt), [LOGITS]))
    algo.train()
    inputs, labels = batch(8)
    hidden = labels.clone()
    hidden[3:] = UNLABELLED
    torch.manual_seed(0)
    losses = algo.loss(inputs, hidden)
    with torch.no_grad():
        logits = algo.model(inputs)
        teacher = algo.distiller.teachers[0](inputs)
    # independent computation: cross-entropy of the 3 labelled images over the batch size (the default
    # label_loss_norm = "batch"), KL over all 8
    expected_cls = -F.log_softmax(logits[:3], 1).gather(1, labels[:3, None]).sum() / 8
    p_t = F.softmax(teacher, 1)
    expected_kd = (p_t * (p_t.log() - F.log_softmax(logits, 1))).sum() / 8
    assert float(losses["loss_cls"].detach()) == pytest.approx(float(expected_cls), rel=1e-4)
    assert float(losses["loss_kd"].detach()) == pytest.approx(float(expected_kd), rel=1e-4)
    none = algo.loss(inputs, torch.full_like(labels, UNLABELLED))
    assert float(none["loss_cls"].detach()) == 0.0 and torch.isfinite(none["loss_kd"])
    none["loss_cls"].backward()   # a batch without labels still backpropagates (zero gradient)


def test_init_lr_is_the_stage_peak_learning_rate(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    batches = [batch(16, seed=s) for s in range(3)]

    def stage(init_lr: float, lr: float) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        algo = build(table(str(ckpt), [AB, LOGITS], type="ABTeacherStudentDistillation", init_heads=["ab3"],
                           init_keep_norms=False, init_lr=init_lr), lr=lr)
        algo.before_train(FakeRun(tmp_path, batches))
        return {k: v.clone() for k, v in algo.model.state_dict().items()}

    default = stage(0.0, 0.1)
    own = stage(0.01, 0.1)
    as_train = stage(0.0, 0.01)
    assert all(torch.equal(default[k], stage(0.1, 0.5)[k]) for k in default)   # init_lr replaces train.lr
    assert all(torch.equal(own[k], as_train[k]) for k in own)                   # ... exactly
    assert not all(torch.equal(own[k], default[k]) for k in own)


def test_init_lr_must_not_be_negative():
    with pytest.raises(ConfigError, match=r"algorithm\.init_lr: must be >= 0 \(0: train\.lr\), got -0\.1"):
        structure_algorithm(table("t.pth", [LOGITS], init_lr=-0.1))


@pytest.mark.parametrize("schedule", ["cosine_iter", "cosine"])
def test_cosine_iter_follows_the_cosine_every_iteration(tmp_path, schedule):
    """``train.lr_schedule = "cosine_iter"`` (the unlabelled-image benchmark's schedule): lr at step i of N
    is ``lr * (1 + cos(pi * i / N)) / 2``; ``"cosine"`` keeps one value per epoch."""
    import json
    import math
    from pathlib import Path

    from gml_core._internal.config.loader import load_config
    from gml_core._internal.training.runner import run

    config = Path(__file__).resolve().parents[2] / "configs" / "kd" / "teacher_digits.toml"
    cfg = load_config(config, ["train.epochs=2", "train.lr=0.1", "train.batch_size=256", "runtime.log_interval=1",
                               "runtime.progress=false", f'runtime.work_dir="{tmp_path}"', "algorithm.model.width=2",
                               f'train.lr_schedule="{schedule}"'])
    run(cfg)
    rows = [json.loads(line) for line in next(tmp_path.glob("*/vis_data/scalars.json")).read_text().splitlines()]
    lrs = [(r["iter"], r["lr"]) for r in rows if "lr" in r]
    per_epoch = len(lrs) // 2
    assert per_epoch >= 3
    for step, lr in lrs:
        i = step - 1 if schedule == "cosine_iter" else per_epoch * ((step - 1) // per_epoch)
        assert lr == pytest.approx(0.05 * (1 + math.cos(math.pi * i / len(lrs))), abs=1e-9), (step, lr)


def test_label_loss_norm_batch_divides_the_labelled_sum_by_the_batch_size(tmp_path):
    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    inputs, labels = batch(8)
    hidden = labels.clone()
    hidden[[1, 4, 5, 7]] = UNLABELLED
    out = {}
    for norm in ("labelled", "batch"):
        torch.manual_seed(0)
        algo = build(table(str(ckpt), [LOGITS], label_loss_norm=norm))
        algo.eval()   # BatchNorm statistics fixed: both builds compute the same logits
        out[norm] = (float(algo.loss(inputs, hidden)["loss_cls"].detach()),
                     float(algo.loss(inputs, labels)["loss_cls"].detach()))
        with torch.no_grad():
            logits = algo.model(inputs)
    keep = hidden != UNLABELLED
    per_image = -F.log_softmax(logits, 1).gather(1, labels[:, None])[:, 0]
    assert out["labelled"][0] == pytest.approx(float(per_image[keep].mean()), rel=1e-5)
    assert out["batch"][0] == pytest.approx(float(per_image[keep].sum() / 8), rel=1e-5)
    assert out["batch"][1] == pytest.approx(out["labelled"][1], rel=1e-6)   # all labelled: the same
    with pytest.raises(ConfigError, match=r"algorithm\.label_loss_norm: expected one of 'batch', 'labelled'"):
        structure_algorithm(table("t.pth", [LOGITS], label_loss_norm="mean"))


def test_mix_batch_is_a_convex_mix_with_a_beta_distributed_weight():
    from gml_kd.algorithms import mix_batch

    x = torch.randn(16, 1, 4, 4)
    torch.manual_seed(3)
    mixed, (perm, lam) = mix_batch(x, 0.4)
    assert sorted(perm.tolist()) == list(range(16)) and 0.0 <= lam <= 1.0
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm])
    # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)); 4,000 draws, tolerances of about 5 standard errors
    lams = torch.tensor([mix_batch(x, 0.4)[1][1] for _ in range(4000)])
    assert float(lams.mean()) == pytest.approx(0.5, abs=0.03)
    assert float(lams.var()) == pytest.approx(1 / (4 * 1.8), abs=0.012)


def test_mixup_alpha_feeds_both_networks_the_mixed_images_and_mixes_the_label_term(tmp_path):
    from gml_kd.algorithms import mix_batch

    ckpt = tmp_path / "t.pth"
    save_teacher(ckpt)
    algo = build(table(str(ckpt), [LOGITS], mixup_alpha=0.5))
    inputs, labels = batch(8)
    hidden = labels.clone()
    hidden[5:] = UNLABELLED
    algo.eval()   # BatchNorm statistics fixed, so the logits can be recomputed; mixing is for training only
    plain = algo.loss(inputs, hidden)
    algo.training = True   # this module only: the mixing switch, BatchNorm layers stay in eval mode
    torch.manual_seed(7)
    losses = algo.loss(inputs, hidden)
    torch.manual_seed(7)
    mixed, (perm, lam) = mix_batch(inputs, 0.5)
    assert 0.0 < lam < 1.0 and not torch.equal(perm, torch.arange(8))
    with torch.no_grad():
        logits = algo.model(mixed)
        teacher = algo.distiller.teachers[0](mixed)
    log_p = F.log_softmax(logits, 1)

    def ce(targets):   # labelled members only, summed over the batch size
        keep = targets != UNLABELLED
        return -log_p[keep].gather(1, targets[keep][:, None]).sum() / 8

    expected_cls = lam * ce(hidden) + (1 - lam) * ce(hidden[perm])
    p_t = F.softmax(teacher, 1)
    expected_kd = (p_t * (p_t.log() - log_p)).sum() / 8
    assert float(losses["loss_cls"].detach()) == pytest.approx(float(expected_cls), rel=1e-4)
    assert float(losses["loss_kd"].detach()) == pytest.approx(float(expected_kd), rel=1e-4)
    assert float(plain["loss_kd"].detach()) != pytest.approx(float(expected_kd), rel=1e-3)


def test_mixup_alpha_must_not_be_negative():
    with pytest.raises(ConfigError, match=r"algorithm\.mixup_alpha: must be >= 0 \(0: no mixing\), got -1\.0"):
        structure_algorithm(table("t.pth", [LOGITS], mixup_alpha=-1.0))
