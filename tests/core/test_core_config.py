"""Typed config structuring: strictness, key paths, did-you-mean, overrides."""

from pathlib import Path

import pytest

from gml_core._internal.config.loader import apply_overrides, load_config, parse_override
from gml_core._internal.errors import ConfigError, GmlUserError

BASE = """
[data]
type = "digits"
[train]
epochs = 2
[algorithm]
type = "Supervised"
model = { type = "gml.SmallCNN", width = 4 }
"""


def cfg(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(tmp_path, text, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_config(cfg(tmp_path, text), overrides)
    return dict(info.value.problems), str(info.value)


def test_valid_config_is_typed(tmp_path):
    config = load_config(cfg(tmp_path, BASE))
    assert config.train.epochs == 2 and isinstance(config.train.lr, float)
    assert config.algorithm.model.type == "gml.SmallCNN" and config.algorithm.model.args == {"width": 4}
    assert config.data.type == "digits"


def test_float_for_int_and_string_for_float_are_errors_all_at_once(tmp_path):
    found, text = problems(tmp_path, BASE.replace("epochs = 2", 'epochs = 3.7\nlr = "1e-3"'))
    assert found["train.epochs"] == "expected an integer, got 3.7 (float)"
    assert found["train.lr"] == "expected a number, got '1e-3' (str)"
    assert text.count("\n") == 1  # two problems, one line each


def test_int_is_accepted_for_float(tmp_path):
    assert load_config(cfg(tmp_path, BASE.replace("epochs = 2", "lr = 1"))).train.lr == 1.0


def test_unknown_key_did_you_mean(tmp_path):
    found, _ = problems(tmp_path, BASE.replace("epochs = 2", "epoch = 2"))
    assert "did you mean 'epochs'" in found["train.epoch"]


def test_unknown_algorithm_lists_installed_and_provider(tmp_path):
    found, _ = problems(tmp_path, BASE.replace('"Supervised"', '"Supervisd"'))
    assert "did you mean 'Supervised'" in found["algorithm.type"]
    assert "installed:" in found["algorithm.type"]


def test_known_but_missing_algorithm_names_its_package(tmp_path, monkeypatch):
    monkeypatch.setenv("GML_DISABLE_PLUGIN_AUTOLOAD", "1")
    found, _ = problems(tmp_path, BASE.replace('"Supervised"', '"BigNAS"'))
    assert found["algorithm.type"].endswith("; algorithm 'BigNAS' is provided by gml-nas, which is installed but not "
                                           "loaded (GML_DISABLE_PLUGIN_AUTOLOAD is set)")


def test_unknown_scope_names_installed_scopes(tmp_path):
    found, _ = problems(tmp_path, BASE.replace("gml.SmallCNN", "tochvision.resnet18"))
    msg = found["algorithm.model.type"]
    assert "unknown scope 'tochvision'" in msg and "did you mean 'torchvision'" in msg and "gml" in msg


def test_model_arguments_are_checked_against_the_builder(tmp_path):
    found, _ = problems(tmp_path, BASE.replace("width = 4", "widht = 4"))
    assert "did you mean 'width'" in found["algorithm.model.widht"]
    found, _ = problems(tmp_path, BASE.replace("width = 4", "width = 4.5"))
    assert "expected an integer" in found["algorithm.model.width"]


def test_literal_values_are_checked(tmp_path):
    found, _ = problems(tmp_path, BASE.replace("epochs = 2", 'optimizer = "sgd"'))
    assert "train.optimizer" in found


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(GmlUserError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_invalid_toml_names_the_file(tmp_path):
    with pytest.raises(GmlUserError, match="invalid TOML"):
        load_config(cfg(tmp_path, "[train\nepochs = 1"))


def test_overrides_are_typed_like_toml(tmp_path):
    config = load_config(cfg(tmp_path, BASE), ["train.lr=0.5", "train.epochs=7", "data.resize=16"])
    assert (config.train.lr, config.train.epochs, config.data.args["resize"]) == (0.5, 7, 16)
    found, _ = problems(tmp_path, BASE, ["train.epochs=1.5"])
    assert "train.epochs" in found


def test_override_paths_with_indices():
    raw = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert apply_overrides(raw, ["a.b[1].c=5"])["a"]["b"][1]["c"] == 5
    assert raw["a"]["b"][1]["c"] == 2  # the input is not mutated
    assert parse_override("x.y=hello") == ("x.y", "hello")
    with pytest.raises(GmlUserError):
        apply_overrides(raw, ["a.b[5].c=1"])


def test_python_config_with_base(tmp_path):
    (tmp_path / "base.py").write_text("train = dict(epochs=3, lr=0.2)\ndata = dict(type='digits')\n")
    (tmp_path / "child.py").write_text(
        "_base_ = ['base.py']\ntrain = dict(epochs=4)\n"
        "algorithm = dict(type='Supervised', model=dict(type='gml.SmallCNN', width=4))\n")
    config = load_config(tmp_path / "child.py")
    assert (config.train.epochs, config.train.lr) == (4, 0.2)
    assert config.algorithm.type == "Supervised"


def test_python_config_is_typed_strictly(tmp_path):
    (tmp_path / "c.py").write_text("train = dict(epochs=2.5)\nalgorithm = dict(type='Supervised', "
                                   "model=dict(type='gml.SmallCNN'))\n")
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(tmp_path / "c.py")


def test_literal_error_lists_choices_with_did_you_mean(tmp_path):
    found, _ = problems(tmp_path, BASE.replace("epochs = 2", 'lr_schedule = "cosin"'))
    assert found["train.lr_schedule"] == ("expected one of 'cosine', 'step', 'constant', 'cosine_iter', got 'cosin' "
                                          "(did you mean 'cosine'?)")


def test_cross_field_config_error_keeps_its_own_path():
    import attrs

    from gml_core._internal.config import structure

    @attrs.frozen
    class Inner:
        n: int = 1
        items: list[int] = attrs.field(factory=list)

        def __attrs_post_init__(self):
            if len(self.items) != self.n:
                raise ConfigError([("algorithm.inner.items", f"has {len(self.items)} entries but n = {self.n}")])

    @attrs.frozen
    class Outer:
        inner: Inner

    with pytest.raises(ConfigError) as info:
        structure({"inner": {"n": 2, "items": [1]}}, Outer, "algorithm")
    assert info.value.problems == [("algorithm.inner.items", "has 1 entries but n = 2")]


def test_a_type_error_does_not_hide_a_bad_value_in_another_key():
    """Value checks run once the types are right; a wrong type in one key used to hide them for the others."""
    import attrs

    from gml_core._internal.config import structure

    @attrs.frozen
    class Options:
        size: int = 4
        rate: float = 0.5
        name: str = "a"

        def __attrs_post_init__(self):
            problems = [(f"opts.{k}", f"must be > 0, got {getattr(self, k)}") for k in ("size", "rate")
                        if getattr(self, k) <= 0]
            if problems:
                raise ConfigError(problems)

    @attrs.frozen
    class Required:
        count: int
        size: int = 1

        def __attrs_post_init__(self):
            if self.size < 0:
                raise ConfigError([("req.size", "must be >= 0")])

    with pytest.raises(ConfigError) as info:
        structure({"size": "big", "rate": -1.0}, Options, "opts")
    assert dict(info.value.problems) == {"opts.size": "expected an integer, got 'big' (str)",
                                         "opts.rate": "must be > 0, got -1.0"}
    with pytest.raises(ConfigError) as info:  # the other keys are fine: the type error alone
        structure({"size": "big", "name": "b"}, Options, "opts")
    assert info.value.problems == [("opts.size", "expected an integer, got 'big' (str)")]
    # a failing key without a default cannot be left out: the class is not built again
    with pytest.raises(ConfigError) as info:
        structure({"count": "x", "size": -1}, Required, "req")
    assert info.value.problems == [("req.count", "expected an integer, got 'x' (str)")]


def test_config_show_keeps_the_algorithm_class_fields(tmp_path, monkeypatch):
    import sys

    from gml_core._internal import plugins
    from gml_core._internal.config.loader import config_to_dict

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "gml_hello_plugin"))
    monkeypatch.setattr(sys, "path", sys.path)
    import gml_hello.plugin as hello

    plugins.set_host(plugins.PluginHost(autoload=False, extra_plugins={"hello": hello}))
    text = BASE.replace('type = "Supervised"', 'type = "HelloMixup"\nalpha = 0.3')
    shown = config_to_dict(load_config(cfg(tmp_path, text)))
    assert shown["algorithm"]["alpha"] == 0.3 and shown["algorithm"]["loss"] == {"type": "HelloFocalLoss"}


def test_gml_scoped_algorithm_type_and_positive_epochs(tmp_path):
    assert load_config(cfg(tmp_path, BASE.replace('"Supervised"', '"gml.Supervised"'))).algorithm.type == "Supervised"
    found, _ = problems(tmp_path, BASE.replace("epochs = 2", "epochs = 0"))
    assert found["train.epochs"] == "must be >= 1, got 0"
