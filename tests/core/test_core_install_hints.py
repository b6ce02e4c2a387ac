"""One shape of install hint for every name a missing plugin owns: algorithms, scopes, commands,
config keys and GML_LOAD_PLUGINS names (not installed, installed but not loaded, broken, loaded)."""

import pytest

from gml_core._internal import install_hints
from gml_core._internal.config.loader import load_config
from gml_core._internal.errors import ConfigError, GmlUserError
from gml_core._internal.plugins import PluginHost

MISSING = "gml-not-installed-anywhere"
TABLE = {"algorithm": {"FarAlgo": MISSING, "NearAlgo": "gml-nas"}, "scope": {"farzoo": MISSING, "nearzoo": "gml-nas"},
         "config_key": {"far_loader": MISSING, "far_pipeline": MISSING}, "plugin": {"far": MISSING},
         "command": {"far": MISSING}}
NOT_INSTALLED = f"is provided by {MISSING}, which is not installed: pip install {MISSING}"


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(install_hints, "_table", lambda: TABLE)


def problems(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return dict(info.value.problems)


def test_algorithm_and_scope_of_a_plugin_that_is_not_installed(table, tmp_path):
    found = problems(tmp_path, '[algorithm]\ntype = "FarAlgo"\nmodel = { type = "gml.SmallCNN" }\n')
    assert found["algorithm.type"].endswith(f"; algorithm 'FarAlgo' {NOT_INSTALLED}")
    found = problems(tmp_path, '[algorithm]\ntype = "Supervised"\nmodel = { type = "farzoo.Net" }\n')
    assert found["algorithm.model.type"].endswith(f"; scope 'farzoo' {NOT_INSTALLED}")


def test_a_loaded_plugin_gives_no_hint_and_one_not_loaded_says_why(table, tmp_path, monkeypatch):
    found = problems(tmp_path, '[algorithm]\ntype = "NearAlgo"\nmodel = { type = "gml.SmallCNN" }\n')
    assert found["algorithm.type"].startswith("unknown algorithm 'NearAlgo'") and "provided" not in found[
        "algorithm.type"]
    monkeypatch.setenv("GML_LOAD_PLUGINS", "kd")
    from gml_core._internal import plugins

    plugins.set_host(None)
    found = problems(tmp_path, '[algorithm]\ntype = "NearAlgo"\nmodel = { type = "gml.SmallCNN" }\n')
    assert found["algorithm.type"].endswith(
        "; algorithm 'NearAlgo' is provided by gml-nas, which is installed but not loaded (GML_LOAD_PLUGINS=kd)")


def test_config_keys_of_a_missing_translator_are_one_line(table, tmp_path):
    found = problems(tmp_path, "far_loader = dict(batch_size=4)\nfar_pipeline = []\nother = 1\n", "c.py")
    # the dialect's other keys and its missing [algorithm] follow from the hint: one line in all
    assert found == {"far_loader": f"config keys far_loader, far_pipeline are read by {MISSING}, which is not "
                                   f"installed: pip install {MISSING}"}


def test_default_scope_names_the_plugin_of_a_shared_dialect(table, tmp_path):
    found = problems(tmp_path, "default_scope = 'farzoo'\nfar_loader = 1\n", "c.py")
    assert set(found) == {"far_loader"} and f"read by {MISSING}" in found["far_loader"]
    # a loaded plugin's scope: no hint, the keys are plainly unknown
    found = problems(tmp_path, "default_scope = 'nearzoo'\nfar_loader = 1\n", "c.py")
    assert found["far_loader"].startswith("unknown key") and "read by" not in found["far_loader"]


def test_load_list_name_of_a_plugin_that_is_not_installed(table, monkeypatch):
    monkeypatch.setenv("GML_LOAD_PLUGINS", "far")
    with pytest.raises(GmlUserError) as info:
        PluginHost()
    assert str(info.value).startswith("GML_LOAD_PLUGINS: no installed plugin named 'far'")
    assert str(info.value).endswith(f"; plugin 'far' {NOT_INSTALLED}")


def test_command_of_a_plugin_that_is_not_installed(table):
    from click.testing import CliRunner

    from gml_core._internal.cli import cli

    result = CliRunner().invoke(cli, ["far"])
    assert result.exit_code == 2 and f"No such command 'far': command 'far' {NOT_INSTALLED}" in result.output
