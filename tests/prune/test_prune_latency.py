"""allocation = "latency": the greedy against hand computations, table interpolation, the disk cache, bad input."""

import json
import math

import pytest
import torch
import torchvision
from prune_helpers import assert_steps_nest
from torch import nn

from gml_core._internal.config.loader import load_config
from gml_core._internal.errors import ConfigError
from gml_prune import latency as lat
from gml_prune.flops import FlopsModel
from gml_prune.graph import analyze
from gml_prune.importance import group_round
from gml_prune.oneshot import prune


class Chain(nn.Module):
    """conv_a (3 -> 32, group A) -> conv_b (32 -> 32, group B) -> mean -> fc (32 -> 10): 1x1 convs on 8x8."""

    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 32, 1)
        self.conv_b = nn.Conv2d(32, 32, 1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(self.conv_b(torch.relu(self.conv_a(x))).mean((2, 3)))


SHAPE = (1, 3, 8, 8)
SLOW = {"conv_a": 10.0, "conv_b": 1.0, "fc": 1.0}                 # ms per (cin x cout): conv_a slow for its FLOPs


def synthetic(per_module):
    return lambda layer, cin, cout: per_module[layer.module] * cin * cout


def chain_setup():
    model = Chain()
    graph = analyze(model, SHAPE)
    groups = {g.modules("out")[0]: g.index for g in graph.prunable}
    return model, graph, FlopsModel(graph, model), groups["conv_a"], groups["conv_b"]


def flat(graph):
    return {g.index: torch.ones(g.size) for g in graph.prunable}


def test_the_first_cut_follows_utility_per_ms_by_hand():
    model, graph, flops, a, b = chain_setup()
    # full FLOPs 2*64*(3*32 + 32*32) + 2*32*10 = 144000; one block of 8 from either group meets 112000
    assert flops.full == pytest.approx(144000)
    w_a, w_b = 2 * 64 * 3 * 32 + 2 * 64 * 32 * 32, 2 * 64 * 32 * 32 + 2 * 32 * 10    # FLOPs of the layers touched
    # flat scores: utility lost by 32 -> 24 is W * log(32 / 24); ms saved from the synthetic table
    key_a = w_a * math.log(32 / 24) / (10 * 3 * 8 + 1 * 8 * 32)
    key_b = w_b * math.log(32 / 24) / (1 * 32 * 8 + 1 * 8 * 10)
    assert key_a < key_b                                           # 83.2 < 112.8: the slow layer's group goes
    counts = lat.search_latency(graph, flat(graph), lambda c: float(flops(c)), 112000, 0.05, synthetic(SLOW), 8)
    assert counts == {a: 24, b: 32}
    # the same tables, but group B's channels are all unimportant except 8 of them: B is cut instead
    scores = flat(graph)
    scores[b] = torch.tensor([1.0] * 8 + [0.01] * 24)
    mean = scores[b].mean()
    lost_b = w_b * math.log((8 + 24 * 0.01) / mean / ((8 + 16 * 0.01) / mean))
    assert lost_b / (32 * 8 + 8 * 10) < key_a
    counts = lat.search_latency(graph, scores, lambda c: float(flops(c)), 112000, 0.05, synthetic(SLOW), 8)
    assert counts == {a: 32, b: 24}


def test_the_target_is_met_on_multiples_and_nothing_fits_back():
    model, graph, flops, a, b = chain_setup()
    cost = lambda c: float(flops(c))                               # noqa: E731
    target = 0.5 * flops.full
    counts = lat.search_latency(graph, flat(graph), cost, target, 0.05, synthetic(SLOW), 8)
    assert cost(counts) <= target
    assert all(n % 8 == 0 for n in counts.values())
    for gi in counts:                                              # the refill left no block that still fits
        if counts[gi] < 32:
            assert cost({**counts, gi: counts[gi] + 8}) > target
    assert counts[a] < counts[b]                                   # the slow layer's group is cut deeper


def test_latency_proportional_to_flops_and_flat_scores_empty_no_group():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    shape = (1, 3, 32, 32)
    graph = analyze(model, shape)
    flops = FlopsModel(graph, model)
    from gml_prune.flops import layer_flops

    def proportional(layer, cin, cout):
        ins, outs = lat.widths(layer, {})
        return 1e-6 * layer_flops(layer, lambda g, n: n * (cin / ins if (g, n) in layer.inputs else cout / outs))
    counts = lat.search_latency(graph, flat(graph), lambda c: float(flops(c)), 0.5 * flops.full, 0.05,
                                proportional, 16)
    fractions = [counts[g.index] / g.size for g in graph.prunable]
    assert float(flops(counts)) <= 0.5 * flops.full
    assert min(fractions) >= 0.25, fractions                        # the log keeps every group well above min_keep
    assert all(counts[g.index] % group_round(g, 16) == 0 for g in graph.prunable)


def test_prune_with_an_injected_table_steers_cuts_to_slow_layers():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    shape = (1, 3, 32, 32)
    slow = {name: (50.0 if name.startswith("layer4") else 1.0) for name, _ in model.named_modules()}
    small = prune(model, shape, 0.5, allocation="latency", latency=synthetic(slow))
    uniform = prune(model, shape, 0.5)
    from gml_core.api import count_flops
    assert count_flops(small, shape) <= 0.5 * count_flops(model, shape)
    assert small.layer4[0].conv1.out_channels < uniform.layer4[0].conv1.out_channels
    assert small.layer4[0].conv1.out_channels % 16 == 0
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_bilinear_interpolation_is_exact_for_bilinear_functions():
    f = lambda i, o: 0.5 + 0.1 * i + 0.02 * o + 0.003 * i * o    # noqa: E731
    ins, outs = [8, 16, 32], [4, 12, 20]
    table = lat.LayerTable(ins, outs, {(i, o): f(i, o) for i in ins for o in outs})
    for i, o in [(8, 4), (10, 7), (31, 19), (40, 2), (5, 30)]:     # inside, on the grid and extrapolated
        assert table(i, o) == pytest.approx(f(i, o))
    single = lat.LayerTable([3], [4, 8], {(3, 4): 1.0, (3, 8): 3.0})
    assert single(3, 6) == pytest.approx(2.0)


def test_measured_tables_are_cached_and_read_back(tmp_path, monkeypatch):
    model = Chain()
    graph = analyze(model, SHAPE)
    first = lat.LatencyTable(model, graph, batch=2, round_to=8, repeats=1, warmup=0, cache=tmp_path)
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 2                                         # conv_a and conv_b share a signature; fc
    stored = [json.loads(p.read_text()) for p in files]
    assert {s["signature"]["batch"] for s in stored} == {2}
    assert {s["signature"]["torch"] for s in stored} == {torch.__version__}
    assert all(ms > 0 for s in stored for ms in s["ms"].values())

    def no_timing(*args, **kwargs):
        raise AssertionError("measured again instead of reading the cache")
    monkeypatch.setattr(lat.LatencyTable, "_time", no_timing)
    second = lat.LatencyTable(model, graph, batch=2, round_to=8, repeats=1, warmup=0, cache=tmp_path)
    for layer in graph.layers:
        for cin, cout in [(3, 32), (3, 20), (24, 24)]:
            assert second(layer, cin, cout) == first(layer, cin, cout)
    monkeypatch.setenv(lat.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert lat.cache_dir() == tmp_path / "elsewhere"
    files[0].write_text("{not json")
    assert lat.load_points(files[0]) == {}


def test_grid_levels_cover_the_allowed_counts_on_multiples():
    model, graph, flops, a, b = chain_setup()
    groups = {g.index: g for g in graph.prunable}
    levels = lat._levels(((a, 32),), groups, 8, 0.05, 1)
    assert levels[0] == 2 and levels[-1] == 32                     # min_keep 0.05 of 32 -> 2 .. all
    assert all(n % 8 == 0 for n in levels[1:])


LATENCY_TOML = """
[algorithm]
type = "MagnitudePruning"
allocation = "latency"
{extra}
model = {{ type = "gml.SmallCNN", width = 4 }}
"""


@pytest.mark.parametrize("extra, message", [
    ("keep_ratio = 0.5", "algorithm.allocation: \"latency\" needs target_flops"),
    ("target_flops = 0.5\nlatency_batch = 0",
     "algorithm.latency_batch: must be a positive integer or a non-empty list of them, got 0"),
    ("target_flops = 0.5\nlatency_batch = [1, 0]",
     "algorithm.latency_batch: must be a positive integer or a non-empty list of them, got [1, 0]"),
])
def test_bad_latency_configs_are_one_line_errors(tmp_path, extra, message):
    path = tmp_path / "c.toml"
    path.write_text(LATENCY_TOML.format(extra=extra))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and "\n" not in str(err.value).strip()


def test_a_valid_latency_config_structures(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(LATENCY_TOML.format(extra="target_flops = 0.5\nlatency_batch = 8"))
    cfg = load_config(path).algorithm
    assert (cfg.allocation, cfg.latency_batch) == ("latency", 8)


def test_batch_mix_sums_each_batch_relative_to_its_whole_model():
    model, graph, flops, a, b = chain_setup()
    small, large = synthetic(SLOW), synthetic({"conv_a": 1.0, "conv_b": 50.0, "fc": 2.0})
    mix = lat.BatchMix([small, large], graph)
    full = {la.module: lat.widths(la, {}) for la in graph.layers}
    total_small = sum(small(la, *full[la.module]) for la in graph.layers)      # 10*3*32 + 32*32 + 32*10
    total_large = sum(large(la, *full[la.module]) for la in graph.layers)
    assert total_small == pytest.approx(960 + 1024 + 320)
    layer = next(la for la in graph.layers if la.module == "conv_b")
    assert mix(layer, 16, 24) == pytest.approx(16 * 24 / total_small + 50 * 16 * 24 / total_large)
    assert sum(mix(la, *full[la.module]) for la in graph.layers) == pytest.approx(2.0)   # each batch weighs 1


def test_a_list_of_batches_measures_one_table_per_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("GML_PRUNE_LATENCY_CACHE", str(tmp_path))
    model, graph, flops, a, b = chain_setup()
    mixed = lat.measured_latency(model, graph, [1, 2], 8, 0.05)
    assert isinstance(mixed, lat.BatchMix) and [t.batch for t, _ in mixed.parts] == [1, 2]
    assert isinstance(lat.measured_latency(model, graph, [2], 8, 0.05), lat.LatencyTable)
    pruned = prune(Chain(), SHAPE, 0.6, allocation="latency", latency_batch=[1, 2])
    assert FlopsModel(analyze(pruned, SHAPE), pruned).full <= 0.6 * flops.full


def test_library_call_rejects_a_bad_latency_batch():
    with pytest.raises(ConfigError, match="latency_batch: must be a positive integer or a non-empty list"):
        prune(Chain(), SHAPE, 0.5, allocation="latency", latency_batch=0)
    with pytest.raises(ConfigError, match="not one of: uniform, global, latency"):
        prune(Chain(), SHAPE, 0.5, allocation="fastest")


def test_iterative_magnitude_pruning_with_a_measured_table(tmp_path, monkeypatch):
    from gml_core._internal.algorithms import BuildContext, DataInfo
    from gml_core._internal.config import structure
    from gml_prune.algorithms.magnitude import MagnitudePruning
    from gml_prune.config import MagnitudePruningConfig
    monkeypatch.setenv(lat.CACHE_ENV, str(tmp_path))
    torch.manual_seed(0)
    cfg = structure({"type": "MagnitudePruning", "model": {"type": "gml.SmallCNN", "width": 8}, "target_flops": 0.3,
                     "steps": 3, "allocation": "latency", "latency_batch": 4}, MagnitudePruningConfig, "algorithm")
    algo = MagnitudePruning(cfg, BuildContext(DataInfo(10, 1, (8, 8))))
    assert_steps_nest(algo, 3)   # every step meets its target; pruned channels stay pruned
    assert list(tmp_path.glob("*.json"))                                      # the table went to the cache


def test_measuring_leaves_the_random_stream_alone(tmp_path):
    model = Chain()
    graph = analyze(model, SHAPE)
    torch.manual_seed(3)
    lat.LatencyTable(model, graph, repeats=1, warmup=0, cache=tmp_path)      # measures (cache empty)
    after_measuring = torch.rand(3)
    torch.manual_seed(3)
    lat.LatencyTable(model, graph, repeats=1, warmup=0, cache=tmp_path)      # reads the cache
    assert torch.equal(torch.rand(3), after_measuring)


def test_the_shape_pass_restores_every_module_mode(tmp_path):
    model = Chain().train()
    graph = analyze(model, SHAPE)
    model.conv_b.eval()                                                      # a frozen part inside a training model
    lat.LatencyTable(model, graph, repeats=1, warmup=0, cache=tmp_path)
    assert model.training and model.conv_a.training and not model.conv_b.training
