"""Fixtures of the gml-mmpretrain tests: a tiny CIFAR-10 in its real on-disk format, the plugin host."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmp_helpers import write_cifar10


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    return write_cifar10(tmp_path_factory.mktemp("cifar10"))


@pytest.fixture
def host():
    """The plugin host (loads gml-mmpretrain, which lets mmengine find ``mmpretrain::`` configs)."""
    from gml_core._internal.plugins import get_host

    return get_host()
