import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def gml(tmp_path):
    """Run the gml CLI in a subprocess; returns CompletedProcess."""
    import subprocess

    def _run(*args, env=None, cwd=None):
        import os

        full_env = {**os.environ, **(env or {})}
        return subprocess.run([sys.executable, "-m", "gml_core", *args], capture_output=True, text=True,
                              env=full_env, cwd=cwd or REPO, timeout=600)

    return _run


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
