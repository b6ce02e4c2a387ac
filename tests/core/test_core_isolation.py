"""The four plugin fault kinds, each isolated and reported in one line, through the real CLI.

Plugins are real distributions found through entry-point metadata on PYTHONPATH (a written
``*.dist-info``), exactly as ``pip install`` would leave them.
"""

import json
import os
from pathlib import Path

import pytest

DIGITS = ('[data]\ntype = "digits"\n[train]\nepochs = 1\n[runtime]\nprogress = false\nwork_dir = "{wd}"\n'
          '[algorithm]\ntype = "Supervised"\nmodel = {{ type = "gml.SmallCNN", width = 4 }}\n')


def make_dist(root: Path, dist: str, ep_name: str, module: str, code: str) -> None:
    """A minimal installed distribution: METADATA, a ``gml`` entry point and its module."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[gml]\n{ep_name} = {module}\n")
    (root / f"{module}.py").write_text(code)


def env_with(*roots: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join([*(str(r) for r in roots), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path, **extra}


def plugins_json(gml, env) -> dict:
    result = gml("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)}


def run_digits(gml, tmp_path: Path, env, name: str = "run"):
    config = tmp_path / f"{name}.toml"
    config.write_text(DIGITS.format(wd=tmp_path / name))
    return gml("run", str(config), env=env)


GOOD = ("from gml_core.api import hookimpl\n\n@hookimpl\ndef gml_register_loss(register):\n"
        "    register('GoodLoss', 'torch.nn:L1Loss')\n")


def test_raising_registrar_is_listed_broken_and_the_rest_work(gml, tmp_path):
    make_dist(tmp_path, "gml-crashy", "crashy", "gml_crashy_mod",
              "from gml_core.api import hookimpl\n\n@hookimpl\ndef gml_register_loss(register):\n"
              "    register('HalfLoss', 'torch.nn:L1Loss')\n    raise RuntimeError('registry exploded')\n")
    make_dist(tmp_path, "gml-good", "good", "gml_good_mod", GOOD)
    env = env_with(tmp_path)
    rows = plugins_json(gml, env)
    assert rows["crashy"]["status"] == "broken"
    assert rows["crashy"]["error"] == "gml_register_loss: RuntimeError: registry exploded"
    assert rows["good"]["status"] == "ok" and rows["good"]["provides"] == {"loss": ["GoodLoss"]}
    text = gml("plugins", env=env).stdout
    assert "crashy  (gml-crashy 1.0): gml_register_loss: RuntimeError: registry exploded" in text
    assert run_digits(gml, tmp_path, env).returncode == 0


def test_raising_registrar_drops_all_its_names(tmp_path, monkeypatch):
    make_dist(tmp_path, "gml-crashy", "crashy", "gml_crashy_mod",
              "from gml_core.api import hookimpl\n\n@hookimpl\ndef gml_register_loss(register):\n"
              "    register('HalfLoss', 'torch.nn:L1Loss')\n    raise RuntimeError('registry exploded')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from gml_core._internal.plugins import PluginHost

    host = PluginHost()
    assert "HalfLoss" not in host.registry("loss") and "CrossEntropyLoss" in host.registry("loss")
    assert host.plugin_info("crashy").broken


def test_raising_event_hook_is_warned_once_and_the_run_finishes(gml, tmp_path):
    make_dist(tmp_path, "gml-noisy", "noisy", "gml_noisy_mod",
              "from gml_core.api import hookimpl\n\n@hookimpl\ndef gml_on_train_step(algorithm, iteration, epoch, losses):\n"
              "    raise ValueError('cannot log ' + str(iteration))\n\n"
              "@hookimpl\ndef gml_on_evaluate(metrics):\n    raise KeyError('top9')\n")
    env = env_with(tmp_path)
    result = run_digits(gml, tmp_path, env)
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: plugin noisy")]
    assert warnings == [
        "warning: plugin noisy (gml-noisy 1.0): gml_on_train_step raised ValueError: cannot log 1; "
        "it is disabled for the rest of this run",
        "warning: plugin noisy (gml-noisy 1.0): gml_on_evaluate raised KeyError: 'top9'; "
        "it is disabled for the rest of this run",
    ]
    assert "Traceback" not in result.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["metrics"]["accuracy/top1"] > 20


def test_name_clash_fails_only_configs_that_use_the_name(gml, tmp_path):
    for dist, ep in (("gml-alpha", "alpha"), ("gml-beta", "beta")):
        make_dist(tmp_path, dist, ep, f"gml_{ep}_mod",
                  "from gml_core.api import hookimpl\n\n@hookimpl\ndef gml_register_loss(register):\n"
                  "    register('ClashLoss', 'torch.nn:L1Loss')\n")
    make_dist(tmp_path, "gml-good", "good", "gml_good_mod", GOOD)
    env = env_with(tmp_path)
    listing = gml("plugins", env=env)
    assert listing.returncode == 0, listing.stderr
    assert ("loss name 'ClashLoss' is registered by gml-alpha (plugin alpha) and by gml-beta (plugin beta)"
            in listing.stdout)
    rows = plugins_json(gml, env)
    assert rows["alpha"]["status"] == rows["beta"]["status"] == "ok"
    assert rows["alpha"]["provides"] == {"loss": ["ClashLoss"]} and rows["alpha"]["clashes"]
    assert run_digits(gml, tmp_path, env).returncode == 0
    # a KD config naming the clashing loss fails, naming both distributions; one line, exit 2
    config = tmp_path / "kd.toml"
    config.write_text(DIGITS.format(wd=tmp_path / "kd").replace(
        '[algorithm]\ntype = "Supervised"\nmodel = { type = "gml.SmallCNN", width = 4 }\n',
        '[algorithm]\ntype = "TeacherStudentDistillation"\nmodel = { type = "gml.SmallCNN", width = 4 }\n'
        '[algorithm.distiller]\ntype = "TeacherDistiller"\n[algorithm.distiller.distill_cfg]\n'
        'teacher = [{ model = { type = "gml.SmallCNN", width = 4 }, distill_head_cfg = [{ '
        'student_module = "head.fc", teacher_module = "head.fc", head = { type = "BaseDistillationHead", '
        'name = "kd", loss = { type = "ClashLoss" } } }] }]\n'))
    result = gml("config", "check", str(config), env=env)
    if "unknown algorithm 'TeacherStudentDistillation'" in result.stderr:
        pytest.skip("gml-kd is not installed")
    assert result.returncode == 2
    assert "loss name 'ClashLoss' is registered by gml-alpha (plugin alpha) and by gml-beta (plugin beta)" \
        in result.stderr
    assert "Traceback" not in result.stderr


def test_import_error_and_unknown_hook_are_listed_broken(gml, tmp_path):
    make_dist(tmp_path, "gml-missing", "missing", "gml_missing_mod", "import gml_no_such_dependency\n")
    make_dist(tmp_path, "gml-typo", "typo", "gml_typo_mod",
              "from gml_core.api import hookimpl\n\n@hookimpl\ndef gml_register_losss(register):\n    pass\n")
    env = env_with(tmp_path)
    rows = plugins_json(gml, env)
    assert rows["missing"]["error"] == "ModuleNotFoundError: No module named 'gml_no_such_dependency'"
    assert rows["typo"]["error"] == ("unknown hook implementation 'gml_register_losss' "
                                     "(did you mean 'gml_register_loss'?)")
    assert run_digits(gml, tmp_path, env).returncode == 0


def test_plugin_hookspecs_let_third_parties_extend_a_plugin(tmp_path, monkeypatch):
    """A third party registers a searcher through gml-hpo's own hookspec; optionalhook keeps it
    working when gml-hpo is absent."""
    pytest.importorskip("gml_hpo")
    import types

    from gml_core._internal import hookspecs
    from gml_core._internal.plugins import PluginHost

    @hookspecs.hookimpl(optionalhook=True)
    def gml_register_searcher(register):
        register("ThirdPartySearcher", "builtins:object")

    third = types.ModuleType("third")
    third.gml_register_searcher = gml_register_searcher
    monkeypatch.setenv("GML_LOAD_PLUGINS", "hpo")
    host = PluginHost(extra_plugins={"third": third})
    assert host.registry("searcher").entry("ThirdPartySearcher").plugin == "third"
    monkeypatch.delenv("GML_LOAD_PLUGINS")
    alone = PluginHost(autoload=False, extra_plugins={"third": third})
    assert not alone.plugin_info("third").broken and "searcher" not in alone.registries


def test_unknown_load_list_name_is_an_error(gml):
    result = gml("plugins", env={"GML_LOAD_PLUGINS": "kd,nass"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: GML_LOAD_PLUGINS: no installed plugin named 'nass'")


def test_install_hints_for_missing_plugins(gml, tmp_path):
    env = {"GML_DISABLE_PLUGIN_AUTOLOAD": "1"}
    config = tmp_path / "c.toml"
    config.write_text('[algorithm]\ntype = "BigNAS"\nmodel = { type = "mmpretrain.ImageClassifier" }\n')
    result = gml("config", "check", str(config), env=env)
    assert result.returncode == 2
    off = "which is installed but not loaded (GML_DISABLE_PLUGIN_AUTOLOAD is set)"
    assert f"algorithm 'BigNAS' is provided by gml-nas, {off}" in result.stderr
    config.write_text('[algorithm]\ntype = "Supervised"\nmodel = { type = "mmpretrain.ImageClassifier" }\n')
    result = gml("config", "check", str(config), env=env)
    assert f"scope 'mmpretrain' is provided by gml-mmpretrain, {off}" in result.stderr
    result = gml("prune", "export", env=env)
    assert result.returncode == 2 and f"command 'prune' is provided by gml-prune, {off}" in result.stderr
