"""StatelessMutator sampling kinds, and DynamicDistEvalHook / NaiveEvaluator / BN re-calibration."""

import pytest
import torch
from nas_helpers import batches, build_model, classifier_spec
from nas_helpers import make_algorithm as make

from gml_core._internal.errors import ConfigError
from gml_core._internal.resources import count_flops, count_params
from gml_nas.algorithms.bignas import BigNAS, BigNASConfig
from gml_nas.evaluation import NaiveEvaluator, calibrate_bn, evaluate_accuracy, preserved_bn_state
from gml_nas.mutator import StatelessMutator
from gml_nas.space import SearchSpace


def test_mutate_and_crossover():
    space = SearchSpace({"a": [{"type": "Int", "lower": 0, "upper": 100} for _ in range(20)]})
    m = StatelessMutator(0).prepare(space)
    parent = m.min_subnet()
    assert m.mutate(parent, 0.0) == parent
    changed = m.mutate(parent, 1.0)
    assert sum(changed[k] != parent[k] for k in parent) >= 15
    other = m.max_subnet()
    child = m.crossover(parent, other)
    assert all(child[k] in (parent[k], other[k]) for k in child)
    assert 0 < sum(child[k] == other[k] for k in child) < 20
    assert m.sample("max") == other and m.sample("min") == parent
    with pytest.raises(ValueError):
        m.sandwich(1)


def test_calibration_estimates_the_subnet_statistics():
    torch.manual_seed(0)
    model = build_model(classifier_spec(resolution=False))
    model.set_subnet(model.space.min())
    data = batches(4, shape=(32, 1, 12, 12))
    with preserved_bn_state(model):
        used = calibrate_bn(model, data, -1)
        stem_bn = model.backbone.stem.bn
        c = stem_bn.active_features
        feats = torch.cat([model.backbone.stem.conv(x) for x, _ in data])
        assert used == 4
        assert torch.allclose(stem_bn.running_mean[:c], feats.mean((0, 2, 3)), atol=1e-5)
        assert stem_bn.momentum is not None
    assert torch.all(model.backbone.stem.bn.running_mean == 0)  # restored afterwards


def test_dynamic_eval_hook_reports_max_min_and_listed_subnets():
    torch.manual_seed(1)
    fixed = {"resize_process": {"resolution": 8},
             "backbone": {"MB_stage_blocks": [1, 2, 1, 1], "MB_kernel_size": [3, 5, 3, 1],
                          "MB_expand_ratio": [1, 2, 3, 2], "MB_out_channels": [8, 16, 16, 48]}}
    algo = make(BigNAS, BigNASConfig, search_eval_cfg={
        "subnets": [fixed], "evaluator": {"units": "K", "default_shape": [1, 1, 12, 12]},
        "bn_stats_calib_kwargs": {"num_iters": 2}})
    state = {k: v.clone() for k, v in algo.model.state_dict().items()}
    results = algo.eval_hook.run(algo, batches(3), batches(2, seed=4), 10, (1, 1, 12, 12))
    assert list(results) == ["max", "min", "subnet0"]
    assert all(torch.equal(state[k], v) for k, v in algo.model.state_dict().items())
    model = algo.model
    subnet = model.space.parse_subnet(fixed)
    model.set_subnet(subnet)
    static = model.export()
    assert results["subnet0"]["params"] == pytest.approx(count_params(static) / 1e3)
    assert results["subnet0"]["flops"] == pytest.approx(count_flops(static, (1, 1, 12, 12)) / 1e3)
    with preserved_bn_state(model):
        calibrate_bn(model, batches(3), 2)
        assert results["subnet0"]["accuracy/top1"] == evaluate_accuracy(model, batches(2, seed=4), 10)["accuracy/top1"]
    assert results["max"]["flops"] > results["subnet0"]["flops"] > results["min"]["flops"]


def test_listed_subnet_must_match_the_space():
    with pytest.raises(ConfigError, match=r"algorithm.search_eval_cfg.subnets\[0\].backbone: missing"):
        make(BigNAS, BigNASConfig, search_eval_cfg={"subnets": [{"resize_process": {"resolution": 8}}]})


def test_naive_evaluator_units():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
    m = NaiveEvaluator("K", (1, 1, 8, 8)).measure(model)
    assert m["params"] == pytest.approx((4 * 9 + 4 + 144 * 10 + 10) / 1e3)
    assert m["flops"] == pytest.approx(2 * (4 * 9 * 36 + 144 * 10) / 1e3)


def test_mutator_draws_follow_torch_seed():
    """Without an explicit seed the mutator derives its stream from ``torch.manual_seed`` (``runtime.seed``)."""
    space = build_model(classifier_spec()).space

    def draws(seed):
        torch.manual_seed(seed)
        m = StatelessMutator().prepare(space)
        return [m.random_subnet() for _ in range(5)] + [m.mutate(m.max_subnet(), 0.5)]

    assert draws(11) == draws(11)
    assert draws(11) != draws(12)
    assert StatelessMutator(seed=4).seed == 4
