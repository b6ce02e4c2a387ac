"""Pre-train connectors that have a ``pretrain_criterion``, then freeze them.

Factor Transfer's paraphraser learns to reconstruct the teacher's feature
(``forward_pretrain``) before the student starts; gradients are averaged across
ranks under distributed training so every rank keeps the same connector. A
connector whose ``pretrained`` flag is set (a resumed run) is only frozen.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from gml_core.api import make_optimizer


def _average_grads(params: list[torch.nn.Parameter]) -> None:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad.div_(world)


def pretrain_connectors(algorithm: Any, run: Any) -> None:
    """Train each pending connector on teacher features over ``run.train_loader``."""
    from mmengine.logging import print_log

    distiller = algorithm.distiller
    for head, connector in distiller.pretrain_connectors():
        if bool(connector.pretrained):
            connector.freeze()
            continue
        recorder = distiller.teacher_recorders[head.teacher_index]
        teacher = distiller.teachers[head.teacher_index]
        params = [p for p in connector.parameters()]
        optimizer = make_optimizer(params, algorithm.context.train)
        criterion = connector.pretrain_criterion
        connector.train()
        last = float("nan")
        for epoch in range(connector.pretrain_epochs):
            for batch in run.train_loader:
                inputs, _ = algorithm.data_preprocessor(batch, True)
                with torch.no_grad(), recorder.recording():
                    teacher(inputs)
                    feature = recorder.take(head.teacher_module)
                loss = criterion(connector.forward_pretrain(feature), feature)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                _average_grads(params)
                optimizer.step()
                last = float(loss.detach())
            print_log(f"head {head.name}: pre-trained {type(connector).__name__} epoch {epoch + 1}/"
                      f"{connector.pretrain_epochs}, reconstruction loss {last:.4f}", logger="current",
                      level=logging.INFO)
        connector.pretrained.fill_(True)
        connector.freeze()
