"""CPU-friendly data parallelism: average gradients before every optimiser step.

mmengine's DDP wrapper only runs the default ``train_step`` and pins CUDA device
ids; gml algorithms have their own multi-pass steps (sandwich rule, DMCP), so
gml syncs parameters once and averages gradients in an optimiser pre-step hook,
which works for any ``train_step``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist
from mmengine.registry import MODEL_WRAPPERS
from torch import nn


def init_distributed(launcher: str) -> bool:
    """Initialise torch.distributed for ``launcher`` (gloo on CPU, nccl on GPU); True if this call did."""
    if launcher == "none" or dist.is_initialized():
        return False
    if launcher == "slurm":
        os.environ.setdefault("RANK", os.environ.get("SLURM_PROCID", "0"))
        os.environ.setdefault("WORLD_SIZE", os.environ.get("SLURM_NTASKS", "1"))
        os.environ.setdefault("LOCAL_RANK", os.environ.get("SLURM_LOCALID", "0"))
        os.environ.setdefault("MASTER_PORT", "29500")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return True


def shutdown_distributed() -> None:
    """Destroy the process group before the interpreter exits, as torch asks: left to interpreter
    teardown, a gloo rank that had finished aborted once in CI ("terminate called without an
    active exception", SIGABRT), failing a run that had trained and saved everything."""
    if dist.is_initialized():
        dist.destroy_process_group()


def _average_grads(optimizer: torch.optim.Optimizer, *_: Any) -> None:
    world = dist.get_world_size()
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad.div_(world)


def sync_gradients(optim_wrapper: Any) -> None:
    """Register gradient averaging on every optimiser of an (dict of) OptimWrapper."""
    wrappers = optim_wrapper.values() if hasattr(optim_wrapper, "values") else [optim_wrapper]
    for wrapper in wrappers:
        wrapper.optimizer.register_step_pre_hook(_average_grads)


@MODEL_WRAPPERS.register_module(force=True)
class GmlDataParallel(nn.Module):
    """Holds ``module``; broadcasts rank 0's parameters and buffers, delegates the steps."""

    def __init__(self, module: nn.Module, **_: Any):
        super().__init__()
        self.module = module
        with torch.no_grad():
            for tensor in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(tensor.data, src=0)

    def train_step(self, data: Any, optim_wrapper: Any) -> Any:
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data: Any) -> Any:
        return self.module.val_step(data)

    def test_step(self, data: Any) -> Any:
        return self.module.test_step(data)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)
