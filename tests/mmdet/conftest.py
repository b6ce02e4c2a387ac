"""Fixtures of the gml-mmdet tests: a tiny digits-detection set, the plugin host."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mmdet", reason="gml-mmdet tests need mmdet (pip install gml-mmdet)")


@pytest.fixture(scope="session")
def det_root(tmp_path_factory) -> Path:
    """Root folder for a small digits-detection set (generated once per session)."""
    return tmp_path_factory.mktemp("digits_det")


@pytest.fixture
def host():
    from gml_core._internal.plugins import get_host

    return get_host()
