"""`make dist` wheels install à la carte: gml-core plus one plugin into a fresh venv (~20 s)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_core_and_one_plugin_wheel_install_alone_into_a_fresh_venv(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "check_wheels.py"), "--plugin", "prune",
                             "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert sorted(p.name for p in (tmp_path / "dist").glob("*.whl")) == [
        "gml_core-0.1.0-py3-none-any.whl", "gml_prune-0.1.0-py3-none-any.whl"]
    assert "gml plugins lists gml-core and gml-prune" in result.stdout
