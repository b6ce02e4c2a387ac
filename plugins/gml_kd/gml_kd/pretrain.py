"""Stages that run before the main schedule, over the same training loader.

* **Connector pre-training**: a connector with a ``pretrain_criterion`` (Factor
  Transfer's paraphraser) learns to reconstruct its side's feature through its own
  ``forward_pretrain``, then is frozen.
* **Initialisation stage** (``init_epochs``, FitNet's hint stage, AB's activation-
  boundary transfer): the student trains on the ``init_heads`` alone for
  ``init_epochs`` extra passes, with its own optimiser and a cosine decay of
  ``train.lr`` over the stage, so the main schedule keeps every epoch and its full
  learning-rate curve. The stage's losses are logged by the stage only; the main
  training log never shows them.

Both run in ``before_train``, so their losses never enter the main loop's log. Under
distributed training the gradients are averaged across ranks, so every rank keeps the
same weights. A resumed run does not repeat a finished stage (the ``pretrained`` /
``init_done`` flags are buffers, saved in checkpoints).
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from gml_core.api import make_optimizer


def _log(message: str) -> None:
    from mmengine.logging import print_log

    print_log(message, logger="current", level=logging.INFO)


def _average_grads(params: list[torch.nn.Parameter]) -> None:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad.div_(world)


def _epoch_batches(loader: Any, epoch: int) -> Any:
    """The loader with its sampler set to ``epoch`` (a different order per pass, same per seed)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    return loader


@contextmanager
def _buffers_kept(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in training mode and restore its buffers (BatchNorm statistics) afterwards."""
    saved = [b.detach().clone() for b in model.buffers()]
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)
        with torch.no_grad():
            for buffer, value in zip(model.buffers(), saved):
                buffer.copy_(value)


def pretrain_connectors(algorithm: Any, run: Any) -> None:
    """Train each pending connector on its side's features over ``run.train_loader``, then freeze it.

    A teacher-side connector learns from the frozen teacher's features; a student-side one
    from the student's features at this point (its initial or ``pretrained`` weights; the
    student's BatchNorm statistics are left as they were).
    """
    distiller = algorithm.distiller
    for head, connector, side in distiller.pretrain_connectors():
        if bool(connector.pretrained):
            connector.freeze()
            continue
        if side == "teacher":
            recorder = distiller.teacher_recorders[head.teacher_index]
            model, path = distiller.teachers[head.teacher_index], head.teacher_module
        else:
            recorder, model, path = distiller.student_recorder, algorithm.model, head.student_module
        params = list(connector.parameters())
        optimizer = make_optimizer(params, algorithm.context.train)
        criterion = connector.pretrain_criterion
        connector.train()
        last = float("nan")
        for epoch in range(connector.pretrain_epochs):
            for batch in _epoch_batches(run.train_loader, epoch):
                inputs, _ = algorithm.data_preprocessor(batch, True)
                with torch.no_grad(), recorder.recording():
                    if side == "teacher":
                        model(inputs)
                    else:
                        with _buffers_kept(model):
                            model(inputs)
                    feature = recorder.take(path)
                loss = criterion(connector.forward_pretrain(feature), feature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                _average_grads(params)
                optimizer.step()
                last = float(loss.detach())
            _log(f"head {head.name}: pre-trained {type(connector).__name__} ({side} side) epoch {epoch + 1}/"
                 f"{connector.pretrain_epochs}, reconstruction loss {last:.4f}")
        connector.pretrained.fill_(True)
        connector.freeze()


def run_init_stage(algorithm: Any, run: Any) -> None:
    """Train the student on the initialisation heads alone for ``init_epochs`` extra passes."""
    epochs = algorithm.config.init_epochs
    names = sorted(algorithm.init_heads)
    if epochs <= 0 or not names or bool(algorithm.init_done):
        return
    distiller = algorithm.distiller
    heads = [distiller.heads[n] for n in names]
    params = [p for p in algorithm.model.parameters() if p.requires_grad]
    params += [p for h in heads for p in h.parameters() if p.requires_grad]
    train = algorithm.context.train
    optimizer = make_optimizer(params, train, lr=algorithm.config.init_lr or None)
    total = max(1, epochs * len(run.train_loader))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 0.5 * (1.0 + math.cos(math.pi * i / total)))
    norms = bn_conv_norms(algorithm.model) if algorithm.config.init_keep_norms else {}
    algorithm.model.train()
    for h in heads:
        h.train()
    for epoch in range(epochs):
        sums = dict.fromkeys(names, 0.0)
        steps = 0
        for batch in _epoch_batches(run.train_loader, epoch):
            inputs, _ = algorithm.data_preprocessor(batch, True)
            with distiller.recording():
                distiller.teacher_forward(inputs)
                algorithm.model(inputs)
                losses = distiller.head_losses(set(names))
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            _average_grads(params)
            optimizer.step()
            schedule.step()
            for n in names:
                sums[n] += float(losses[f"loss_{n}"].detach())
            steps += 1
        means = ", ".join(f"loss_{n} {sums[n] / max(steps, 1):.4f}" for n in names)
        _log(f"init stage epoch {epoch + 1}/{epochs} (before the main schedule): {means}")
    if norms:
        restore_norms(algorithm.model, norms)
        _log(f"init stage: {len(norms)} convolution weights feeding BatchNorm scaled back to their norms")
    algorithm.init_done.fill_(True)


def bn_conv_norms(model: nn.Module) -> dict[str, float]:
    """Weight norm of each convolution whose output goes straight into a BatchNorm.

    Found by the layout ``conv`` then ``bn`` as consecutive children of one module with
    matching channels (torchvision's ResNets, gml's SmallCNN). Such a weight's scale does
    not change the network's output, only its effective learning rate (~ lr / norm^2).
    """
    out: dict[str, float] = {}
    for parent_name, parent in model.named_modules():
        children = list(parent.named_children())
        for (name, conv), (_, bn) in zip(children, children[1:]):
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
                    and bn.num_features == conv.out_channels):
                out[f"{parent_name}.{name}" if parent_name else name] = float(conv.weight.detach().norm())
    return out


def restore_norms(model: nn.Module, norms: dict[str, float]) -> None:
    """Scale each named convolution's weight to the recorded norm (same function after its BatchNorm)."""
    with torch.no_grad():
        for name, norm in norms.items():
            weight = model.get_submodule(name).weight
            current = float(weight.norm())
            if current > 0:
                weight.mul_(norm / current)
