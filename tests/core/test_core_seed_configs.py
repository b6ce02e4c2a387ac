"""Configs written the way the original system's documents write them load as written.

``configs/seed/`` holds transcriptions of the seed document's examples (KD, NAS, pruning, QAT)
with only model and data names swapped for ones that exist here."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from gml_core._internal.cli import cli
from gml_core._internal.config.loader import load_config
from gml_core._internal.config.python_config import helper_names
from gml_core._internal.errors import ConfigError

SEED = Path(__file__).resolve().parents[2] / "configs" / "seed"
EXAMPLES = sorted(p.name for p in SEED.glob("*.py"))


def test_every_technique_has_a_seed_example():
    assert {"kd_distiller.py", "kd_factor_transfer.py", "nas_bignas.py", "prune_dmcp.py", "qat_iao.py"} <= set(
        EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_seed_example_passes_config_check(name):
    if name.startswith("mmcls_"):
        pytest.importorskip("gml_mmpretrain", reason="mmcls_* examples need gml-mmpretrain")
    result = CliRunner().invoke(cli, ["config", "check", str(SEED / name)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"{name}: ok")


def test_seed_vocabulary_maps_to_typed_config():
    kd = load_config(SEED / "kd_distiller.py")
    assert kd.algorithm.model.type == "gml.SmallCNN" and kd.algorithm.model.args == {"width": 4}  # `model` helper
    teacher = kd.algorithm.distiller.distill_cfg.teacher[0]
    assert teacher.model.args == {"width": 16} and teacher.ckpt_path == ""  # ckpt_path=None: the default
    assert kd.train.epochs == 2 and kd.data.type == "digits"  # from the _base_ file
    nas = load_config(SEED / "nas_bignas.py")
    assert nas.algorithm.search_eval_cfg.bn_stats_calib_kwargs.num_iters == 4  # the search_eval_cfg helper
    assert nas.algorithm.mutator.type == "gml.StateslessMutator" and nas.data.args == {"resize": 12}
    qat = load_config(SEED / "qat_iao.py")
    assert (qat.train.epochs, qat.train.lr, qat.train.batch_size) == (2, 0.01, 64)  # merged over the base


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


HEAD = "algorithm = dict(type='Supervised', model=net)\n"


def test_helper_variables_are_names_the_config_reads(tmp_path):
    write(tmp_path, "base.py", "epochs = 1\ntrain = dict(epochs=epochs)\n")
    path = write(tmp_path, "c.py", f"_base_ = ['./base.py']\nunused = 3\nnet = dict(type='gml.SmallCNN')\n{HEAD}")
    assert helper_names(path) == {"net", "epochs"}
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert dict(info.value.problems) == {"unused": "unknown key; accepted keys: algorithm, data, runtime, train"}


def test_unknown_top_level_names_keep_did_you_mean_and_name_the_gml_equivalent(tmp_path):
    path = write(tmp_path, "c.py", "net = dict(type='gml.SmallCNN')\n" + HEAD +
                 "trian = dict(epochs=1)\nlog_config = dict(interval=5)\nmodel = net\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = dict(info.value.problems)
    assert problems["trian"].startswith("unknown key (did you mean 'train'?)")
    assert problems["log_config"].endswith("; in gml this setting is runtime.log_interval")
    assert problems["model"].endswith("; in gml this setting is algorithm.model")  # assigned, never read
    assert set(problems) == {"trian", "log_config", "model"}


def test_none_means_the_default_in_python_configs_only_where_a_default_exists(tmp_path):
    path = write(tmp_path, "c.py", "net = dict(type='gml.SmallCNN')\n" + HEAD +
                 "train = dict(lr=None, grad_clip=None, epochs=None)\n")
    config = load_config(path)
    assert config.train.lr == 0.05 and config.train.grad_clip is None and config.train.epochs == 5
    bad = write(tmp_path, "bad.py", "algorithm = dict(type=None, model=dict(type='gml.SmallCNN'))\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "algorithm.type" in dict(info.value.problems)
