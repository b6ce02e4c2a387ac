"""Fixtures for gml-prune tests: a subprocess ``gml`` runner and small models."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def gml():
    """Run the gml CLI in a subprocess (single-threaded torch); returns CompletedProcess."""

    def _run(*args, cwd=None):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.run([sys.executable, "-m", "gml_core", *map(str, args)], capture_output=True, text=True,
                              env=env, cwd=cwd or REPO, timeout=600)

    return _run
