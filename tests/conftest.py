"""Shared test setup: quiet, single-threaded torch, fresh plugin host per test."""

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _fresh_plugin_host():
    """Each test sees a plugin host built from the current environment."""
    from gml_core._internal import plugins

    plugins.set_host(None)
    yield
    plugins.set_host(None)
