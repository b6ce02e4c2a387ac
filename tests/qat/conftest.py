"""Shared fixtures of the gml-qat tests: a trained fp32 digits CNN and helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _only_qat_plugins(monkeypatch):
    """Load gml-qat (and gml-kd, for the composition tests) only: the tests check this plugin alone."""
    monkeypatch.setenv("GML_LOAD_PLUGINS", "qat,kd")


@pytest.fixture(scope="session")
def digits16():
    from gml_core._internal.data.digits import digits

    return digits(resize=16)


@pytest.fixture(scope="session")
def fp32_checkpoint(tmp_path_factory, digits16) -> Path:
    """A SmallCNN(width=16) trained 4 epochs on digits (16x16), saved as ``{"state_dict": ...}``."""
    from gml_core._internal.models.small_cnn import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN(width=16)
    loader = torch.utils.data.DataLoader(digits16.train, batch_size=64, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    for _ in range(4):
        for x, y in loader:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    path = tmp_path_factory.mktemp("fp32") / "digits_cnn.pth"
    torch.save({"state_dict": model.state_dict()}, path)
    return path
