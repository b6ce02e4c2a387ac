"""Check the à-la-carte install: wheels of gml-core and one plugin, installed alone into a fresh venv.

    python scripts/check_wheels.py [--plugin nas] [--workdir DIR]

Builds the two wheels with scripts/build_wheels.sh, creates a fresh venv (--system-site-packages),
installs them with ``pip install --no-deps --no-index --find-links`` and checks, from outside the
source tree, that gml-core is the installed copy, that ``gml plugins`` finds exactly the built-in
plugin and the chosen one, and that a command of a plugin that is not installed says what to
install. The third-party modules the CLI imports (pluggy, click, rich, ...) come from this
interpreter through a folder of links, so the check runs offline and never sees this
environment's other gml distributions. Exit code 0 when every check passes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: a command of each plugin, to check the install hint when that plugin is missing
COMMANDS = {"nas": "nas", "prune": "prune", "qat": "qat", "hpo": "search", "mmpretrain": "mmpretrain"}


def sh(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)


def must(proc: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if proc.returncode != 0:
        sys.exit(f"check_wheels: {what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def cli_dependencies(out: Path) -> dict[str, str]:
    """Top-level third-party modules that ``gml plugins`` imports here, and where they live."""
    code = (
        "import json, sys\n"
        "from gml_core._internal.cli import main\n"
        "try:\n    main(['plugins', '--json'])\n"
        "except SystemExit:\n    pass\n"
        "site = [p for p in sys.path if p.endswith('-packages')]\n"
        "found = {}\n"
        "for name, mod in list(sys.modules.items()):\n"
        "    path = getattr(mod, '__file__', None) or ''\n"
        "    top = name.partition('.')[0]\n"
        "    if '.' in name or top.startswith('gml') or not any(path.startswith(s) for s in site):\n"
        "        continue\n"
        "    found[top] = path.rsplit('/__init__.py', 1)[0] if path.endswith('__init__.py') else path\n"
        f"open({str(out)!r}, 'w').write(json.dumps(found))\n"
    )
    must(sh([sys.executable, "-c", code], cwd=REPO), "listing the CLI's dependencies")
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", default="nas", choices=sorted(COMMANDS) + ["kd"])
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="gml-wheels-"))).resolve()
    dist, env_dir, deps = work / "dist", work / "venv", work / "deps"
    must(sh(["bash", str(REPO / "scripts" / "build_wheels.sh"), ".", f"plugins/gml_{args.plugin}"],
            env={**os.environ, "PYTHON": sys.executable, "DIST_DIR": str(dist)}), "building the wheels")
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(must(sh([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]),
                     "the new venv").stdout.strip())
    deps.mkdir(exist_ok=True)
    for name, path in cli_dependencies(work / "deps.json").items():
        link = deps / Path(path).name
        if not link.exists():
            link.symlink_to(path)
    (site / "gml_check_deps.pth").write_text(f"{deps}\n")
    dist_name = f"gml-{args.plugin}"
    # outside the source tree and without PYTHONPATH: nothing but the installed wheels provides gml
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    must(sh([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
             "--find-links", str(dist), "gml-core", dist_name], cwd=work, env=env), "installing the wheels")
    located = must(sh([str(python), "-c", "import gml_core; print(gml_core.__file__)"], cwd=work, env=env),
                   "importing gml_core").stdout.strip()
    if not located.startswith(str(site)):
        sys.exit(f"check_wheels: gml_core imported from {located}, not from the venv's {site}")
    listed = json.loads(must(sh([str(env_dir / "bin" / "gml"), "plugins", "--json"], cwd=work, env=env),
                             "gml plugins").stdout)
    seen = {(p["name"], p["distribution"], p["status"]) for p in listed}
    expected = {("gml-core builtin", "gml-core", "ok"), (args.plugin, dist_name, "ok")}
    if seen != expected:
        sys.exit(f"check_wheels: gml plugins listed {sorted(seen)}, expected {sorted(expected)}")
    missing = next(p for p in ("prune", "nas") if p != args.plugin)
    hint = sh([str(env_dir / "bin" / "gml"), COMMANDS[missing]], cwd=work, env=env)
    if hint.returncode != 2 or f"pip install gml-{missing}" not in hint.stderr:
        sys.exit(f"check_wheels: 'gml {COMMANDS[missing]}' without gml-{missing} gave exit {hint.returncode}: "
                 f"{hint.stderr.strip()}")
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    print(f"check_wheels: ok: {', '.join(wheels)} installed alone into {env_dir} "
          f"(python {sysconfig.get_python_version()}); gml plugins lists gml-core and {dist_name}")


if __name__ == "__main__":
    main()
