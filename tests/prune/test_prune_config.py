"""Config vocabulary and bad input: one line per problem, each with its key path."""

from pathlib import Path

import pytest

from gml_core._internal.algorithms import BuildContext, DataInfo
from gml_core._internal.config.loader import load_config
from gml_core._internal.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

DMCP = """
[algorithm]
type = "DMCP"
arch_start_training = 500
arch_train_freq = 1
arch_sample_num = 10
[algorithm.model]
type = "torchvision.resnet18"
[algorithm.mutator]
type = "DMCPMutator"
num_sample = {num_sample}
arch_sample_type = {types}
width = {{ max = 1.0, min = 0.1, offset = 0.1 }}
arch_learning_rate = 0.5
arch_weight_decay = 0.0
input_shape = [1, 3, 32, 32]
target_flops = {target}
"""


def load(tmp_path, num_sample=4, types='["max", "min", "scheduled_random", "scheduled_random"]', target="0.5"):
    path = tmp_path / "c.toml"
    path.write_text(DMCP.format(num_sample=num_sample, types=types, target=target))
    return load_config(path)


def problems(tmp_path, **kw):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, **kw)
    return str(err.value)


def test_the_issue_vocabulary_structures(tmp_path):
    cfg = load(tmp_path)
    m = cfg.algorithm.mutator
    assert (cfg.algorithm.arch_start_training, cfg.algorithm.arch_train_freq, cfg.algorithm.arch_sample_num) == \
        (500, 1, 10)
    assert m.num_sample == 4 and m.arch_sample_type[2] == "scheduled_random"
    assert (m.width.max, m.width.min, m.width.offset) == (1.0, 0.1, 0.1)
    assert m.input_shape == [1, 3, 32, 32] and m.target_flops == 0.5
    assert load(tmp_path, target='"300M"').algorithm.mutator.target_flops == "300M"


def test_sample_count_mismatch(tmp_path):
    text = problems(tmp_path, num_sample=3)
    assert "algorithm.mutator.arch_sample_type" in text and "2 entries" not in text
    assert "has 4 entries but num_sample = 3" in text and len(text.splitlines()) == 1


def test_unknown_sample_type(tmp_path):
    text = problems(tmp_path, num_sample=2, types='["max", "uniform"]')
    assert "algorithm.mutator.arch_sample_type[1]" in text and "non_uni_random" in text


@pytest.mark.parametrize("target", ['"lots"', "-1", "true", '"150%"'])
def test_bad_target_flops(tmp_path, target):
    assert "algorithm.mutator.target_flops" in problems(tmp_path, target=target)


def test_unknown_keys_are_reported_with_their_path(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(DMCP.format(num_sample=4, types='["max", "min", "max", "min"]', target="0.5")
                    .replace("arch_train_freq", "arch_train_frq"))
    with pytest.raises(ConfigError, match=r"algorithm.arch_train_frq: unknown key \(did you mean 'arch_train_freq'"):
        load_config(path)


def test_build_time_errors_name_the_key():
    from gml_core._internal.config import structure
    from gml_prune.algorithms.dmcp import DMCP
    from gml_prune.config import DMCPConfig

    context = BuildContext(DataInfo(10, 1, (8, 8)))

    def build(**mutator):
        cfg = structure({"type": "DMCP", "model": {"type": "gml.SmallCNN", "width": 4}, "mutator": mutator},
                        DMCPConfig, "algorithm")
        return DMCP(cfg, context)

    with pytest.raises(ConfigError, match=r"^algorithm.mutator.input_shape: the model cannot take .*\[1, 3, 8, 8\]"):
        build(input_shape=[1, 3, 8, 8])
    with pytest.raises(ConfigError, match=r"^algorithm.mutator.target_flops: .* below .* minimum width"):
        build(target_flops=0.001)
    assert build(target_flops="0.05M").mutator.target == 50000.0


@pytest.mark.parametrize("name", ["dmcp_digits.toml", "l1_digits.toml", "finetune_digits.toml",
                                  "baseline_digits.toml"])
def test_shipped_configs_are_valid(name):
    load_config(REPO / "configs" / "prune" / name)
