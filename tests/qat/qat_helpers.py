"""Helpers shared by the gml-qat tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]

#: SmallCNN layout names for a depth-1 model (the shipped configs use the same)
FUSE_SMALLCNN = {"backbone": [["conv1", "bn1", "relu"]],
                 **{f"backbone.layer{i}.0": [["conv", "bn", "relu"]] for i in range(1, 5)}}


def accuracy(model: torch.nn.Module, dataset) -> float:
    model.eval()
    x, y = dataset.tensors
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).float().mean())


def run_gml(*args: str, env: dict | None = None):
    """The ``gml`` CLI in a subprocess (exit codes and stderr as a user sees them)."""
    import os
    import subprocess

    full_env = {**os.environ, "GML_LOAD_PLUGINS": "qat,kd", **(env or {})}
    return subprocess.run([sys.executable, "-m", "gml_core", *args], capture_output=True, text=True,
                          env=full_env, cwd=REPO, timeout=600)
