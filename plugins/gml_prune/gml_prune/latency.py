"""Latency-aware allocation (``allocation = "latency"``): a measured latency table decides which
groups give up channels.

Every conv / linear layer of the channel graph is timed alone (a fresh module of the same
kind, kernel, stride, padding and groups; ``torch.no_grad``; the input shape it sees in the
model, batch ``batch``; median of ``repeats`` passes after ``warmup``) on a small grid of
(input channels, output channels) totals: the full width and widths spread down to what
``min_keep`` allows, each rounded to the channel multiple. Between grid points the latency
is interpolated bilinearly. Layers that cannot be rebuilt alone (attention) are charged the
measured layers' median milliseconds per FLOP.

The allocation then follows HALP (Shen et al., 2022, "Structural Pruning via Latency-Saliency
Knapsack"): starting from the full model it repeatedly removes the channel block (one channel
multiple of one group, its lowest-scoring channels) that loses the least utility per
millisecond saved (utility in :func:`search_latency`), the saving computed from the table at
the current widths of all groups the block's layers touch, until the FLOPs target is met. The constraint stays the
FLOPs target, so the result is comparable with the other modes at equal MACs; the table
only decides *where* the FLOPs are cut (layers slow for their FLOPs first).

Tables are cached on disk, one JSON file per layer signature (kind, kernel, stride, padding,
dilation, groups, bias, input size, batch, threads, timer, repeats, torch version, CPU architecture),
in ``$GML_PRUNE_LATENCY_CACHE`` (default ``$XDG_CACHE_HOME/gml/prune-latency``, i.e.
``~/.cache/gml/prune-latency``), written atomically.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from gml_core.api import ConfigError

from .flops import layer_flops
from .graph import ChannelGraph, Layer
from .importance import group_round, lowest_count

CACHE_ENV = "GML_PRUNE_LATENCY_CACHE"
#: grid of a prunable dimension: fractions of the way from the smallest allowed width to the full one
FRACTIONS = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)

#: ``latency(layer, in_channels, out_channels)`` in ms (channel totals of the layer's input / output)
LayerLatency = Callable[[Layer, int, int], float]


def cache_dir() -> Path:
    """Where tables are cached: ``$GML_PRUNE_LATENCY_CACHE``, else the user cache directory."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gml" / "prune-latency"


def widths(layer: Layer, counts: Mapping[int, int]) -> tuple[int, int]:
    """The layer's (input, output) channel totals when groups keep ``counts`` (others whole)."""
    return (sum(counts.get(g, n) for g, n in layer.inputs), sum(counts.get(g, n) for g, n in layer.outputs))


def _interp(levels: list[int], x: float) -> tuple[int, int, float]:
    """Bracketing indices of ``x`` in sorted ``levels`` and its weight on the upper one (linear
    extrapolation beyond the ends)."""
    if len(levels) == 1:
        return 0, 0, 0.0
    i = min(max(bisect.bisect_right(levels, x) - 1, 0), len(levels) - 2)
    return i, i + 1, (x - levels[i]) / (levels[i + 1] - levels[i])


class LayerTable:
    """Milliseconds of one layer on a grid ``ins`` x ``outs`` of channel totals, interpolated."""

    def __init__(self, ins: list[int], outs: list[int], ms: Mapping[tuple[int, int], float]):
        self.ins, self.outs, self.ms = sorted(ins), sorted(outs), dict(ms)

    def __call__(self, cin: float, cout: float) -> float:
        i0, i1, wi = _interp(self.ins, cin)
        o0, o1, wo = _interp(self.outs, cout)

        def at(i: int, o: int) -> float:
            return self.ms[(self.ins[i], self.outs[o])]
        low = (1 - wo) * at(i0, o0) + wo * at(i0, o1)
        high = (1 - wo) * at(i1, o0) + wo * at(i1, o1)
        return (1 - wi) * low + wi * high


class LatencyTable:
    """The measured latency model of every layer of ``graph`` (``table(layer, cin, cout)`` in ms)."""

    def __init__(self, model: nn.Module, graph: ChannelGraph, batch: int = 1, round_to: int = 16,
                 min_keep: float = 0.05, repeats: int = 5, warmup: int = 2, cache: Path | None = None):
        self.batch, self.repeats, self.warmup = int(batch), int(repeats), int(warmup)
        self.cache = Path(cache) if cache is not None else cache_dir()
        self.tables: dict[str, LayerTable] = {}
        groups = {g.index: g for g in graph.prunable}
        shapes = _input_shapes(model, graph)
        for layer in graph.layers:
            module = model.get_submodule(layer.module)
            spec = _rebuild_spec(module, layer)
            if spec is None or layer.module not in shapes:
                continue
            ins = _levels(layer.inputs, groups, round_to, min_keep, spec["groups"])
            outs = ins if layer.kind == "dwconv" else _levels(layer.outputs, groups, round_to, min_keep,
                                                              spec["groups"])
            pairs = [(i, i) for i in ins] if layer.kind == "dwconv" else [(i, o) for i in ins for o in outs]
            try:
                with torch.random.fork_rng(devices=[]):   # the caller's random stream: same, cached or not
                    ms = self._measure(spec, shapes[layer.module], pairs)
            except (ValueError, RuntimeError):          # a width the layer cannot be built at: estimate it
                continue
            if layer.kind == "dwconv":
                ms = {(i, o): ms[(i, i)] for i in ins for o in outs}
            self.tables[layer.module] = LayerTable(ins, outs, ms)
        per_flop = [self.tables[la.module](*widths(la, {})) / max(layer_flops(la, lambda g, n: n), 1.0)
                    for la in graph.layers if la.module in self.tables]
        self.ms_per_flop = statistics.median(per_flop) if per_flop else 1e-9

    def __call__(self, layer: Layer, cin: int, cout: int) -> float:
        table = self.tables.get(layer.module)
        if table is not None:
            return table(cin, cout)
        ins, outs = widths(layer, {})
        return self.ms_per_flop * layer_flops(layer, lambda g, n: n * (cin / ins if (g, n) in layer.inputs
                                                                       else cout / outs))

    # -- measuring ---------------------------------------------------------------------
    def _signature(self, spec: dict, shape: tuple[int, ...]) -> dict:
        size = shape[1:-1] if spec["kind"] == "Linear" else shape[2:]
        return {**spec, "input": list(size),
                "batch": self.batch, "threads": torch.get_num_threads(), "timer": _timer_name(),
                "repeats": self.repeats, "torch": torch.__version__, "machine": platform.machine()}

    def _measure(self, spec: dict, shape: tuple[int, ...], pairs: list[tuple[int, int]]) -> dict:
        signature = self._signature(spec, shape)
        path = self.cache / (hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:24] + ".json")
        stored = load_points(path)
        missing = [p for p in pairs if p not in stored]
        for cin, cout in missing:
            stored[(cin, cout)] = self._time(spec, shape, cin, cout)
        if missing:
            save_points(path, signature, stored)
        return {p: stored[p] for p in pairs}

    @torch.no_grad()
    def _time(self, spec: dict, shape: tuple[int, ...], cin: int, cout: int) -> float:
        module = _build(spec, cin, cout).eval()
        x = torch.randn(self.batch, *shape[1:-1], cin) if spec["kind"] == "Linear" \
            else torch.randn(self.batch, cin, *shape[2:])
        for _ in range(self.warmup):
            module(x)
        clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
        runs = []
        for _ in range(self.repeats):
            start = clock()
            module(x)
            runs.append(clock() - start)
        return 1000 * statistics.median(runs)


class BatchMix:
    """Latency at several batch sizes at once: each batch's table divided by its whole model's latency,
    summed (every batch weighs alike whatever its absolute time), so one allocation serves them all."""

    def __init__(self, tables: Sequence[LayerLatency], graph: ChannelGraph):
        totals = [sum(t(la, *widths(la, {})) for la in graph.layers) for t in tables]
        self.parts = [(t, 1.0 / total) for t, total in zip(tables, totals) if total > 0]

    def __call__(self, layer: Layer, cin: float, cout: float) -> float:
        return sum(scale * table(layer, cin, cout) for table, scale in self.parts)


def measured_latency(model: nn.Module, graph: ChannelGraph, batches: int | Sequence[int], round_to: int,
                     min_keep: float) -> LayerLatency:
    """The table at one batch size, or a :class:`BatchMix` of the tables at several."""
    if isinstance(batches, int):
        return LatencyTable(model, graph, batches, round_to, min_keep)
    tables = [LatencyTable(model, graph, b, round_to, min_keep) for b in batches]
    return tables[0] if len(tables) == 1 else BatchMix(tables, graph)


def check_batches(value: Any, key: str) -> None:
    """``latency_batch``: a positive integer or a non-empty list of them."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in items):
        raise ConfigError([(key, f"must be a positive integer or a non-empty list of them, got {value!r}")])


def _timer_name() -> str:
    return "thread_time" if torch.get_num_threads() == 1 else "perf_counter"


def load_points(path: Path) -> dict[tuple[int, int], float]:
    """The cached ``{(cin, cout): ms}`` of one layer signature (empty when absent or unreadable)."""
    try:
        data = json.loads(Path(path).read_text())
        return {tuple(int(v) for v in k.split(",")): float(ms) for k, ms in data["ms"].items()}
    except (OSError, ValueError, KeyError, AttributeError):
        return {}


def save_points(path: Path, signature: dict, points: Mapping[tuple[int, int], float]) -> None:
    """Write one layer signature's points (temp file + rename)."""
    from gml_core.api import atomic_write_text
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"signature": signature,
                                        "ms": {f"{a},{b}": ms for (a, b), ms in sorted(points.items())}}, indent=1))


def _input_shapes(model: nn.Module, graph: ChannelGraph) -> dict[str, tuple[int, ...]]:
    """The input shape of each layer's first call in one forward pass at the model's input shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name in {la.module for la in graph.layers}:
        def hook(mod: nn.Module, args: tuple, name: str = name) -> None:
            if args and isinstance(args[0], torch.Tensor):
                shapes.setdefault(name, tuple(args[0].shape))
        handles.append(model.get_submodule(name).register_forward_pre_hook(hook))
    modes = {m: m.training for m in model.modules()}
    try:
        param = next(model.parameters(), None)
        with torch.no_grad():                       # eval: batch 1 through BatchNorm, running stats untouched
            model.eval()(torch.zeros(*graph.input_shape, device=param.device if param is not None else "cpu"))
    finally:
        for m, mode in modes.items():
            m.training = mode
        for h in handles:
            h.remove()
    return shapes


def _rebuild_spec(module: nn.Module, layer: Layer) -> dict | None:
    """What it takes to build the layer alone at other widths (None: not a plain conv / linear)."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and layer.kind in ("conv", "dwconv"):
        return {"kind": type(module).__name__, "kernel_size": list(module.kernel_size), "stride": list(module.stride),
                "padding": module.padding if isinstance(module.padding, str) else list(module.padding),
                "dilation": list(module.dilation), "padding_mode": module.padding_mode,
                "groups": "depthwise" if layer.kind == "dwconv" else module.groups, "bias": module.bias is not None}
    if isinstance(module, nn.Linear) and layer.kind == "linear" and layer.repeat == 1:
        return {"kind": "Linear", "groups": 1, "bias": module.bias is not None}
    return None


def _build(spec: dict, cin: int, cout: int) -> nn.Module:
    if spec["kind"] == "Linear":
        return nn.Linear(cin, cout, bias=spec["bias"])
    groups = cin if spec["groups"] == "depthwise" else spec["groups"]
    return getattr(nn, spec["kind"])(cin, cout, spec["kernel_size"], stride=spec["stride"], padding=spec["padding"],
                                     dilation=spec["dilation"], groups=groups, bias=spec["bias"],
                                     padding_mode=spec["padding_mode"])


def _levels(segments: tuple[tuple[int, int], ...], groups: Mapping, round_to: int, min_keep: float,
            conv_groups: int | str) -> list[int]:
    """Grid widths of one side of a layer: from the fewest channels its prunable groups allow to all."""
    full = sum(n for _, n in segments)
    low = sum(lowest_count(groups[g], min_keep) if g in groups else n for g, n in segments)
    multiple = 1 if conv_groups == "depthwise" else int(conv_groups)
    for g, _ in segments:
        if g in groups:
            multiple = math.lcm(multiple, group_round(groups[g], round_to))
    out = {full, low}                                   # every count a group may keep lies in [low, full]
    for f in FRACTIONS:
        w = low + f * (full - low)
        w = max(multiple, round(w / multiple) * multiple) if multiple > 1 else max(1, round(w))
        out.add(min(full, max(w, low if multiple == 1 else multiple)))
    return sorted(out)


def search_latency(graph: ChannelGraph, scores: Mapping[int, torch.Tensor], flops: Callable[[dict], float],
                   target: float, min_keep: float, latency: LayerLatency, round_to: int = 1,
                   alive: Mapping[int, torch.Tensor] | None = None) -> dict[int, int]:
    """Channels kept per group: greedily drop the block with the least utility per ms saved until
    ``flops(counts) <= target`` (or nothing more can go).

    A group's utility is ``W_g * log(S_g)``: ``S_g`` the sum of its kept scores (normalised by the
    group's mean), ``W_g`` the full-width FLOPs of the layers it touches (groups weigh what they
    compute). The log gives diminishing returns, so a group is not emptied because its channels
    look alike (HALP's Taylor scores are spread enough not to need it; L1 scores of a fresh or
    evenly trained layer are not); the measured table moves the cuts to layers slow for their FLOPs.
    """
    ranked, counts, lower, step, members, weight = {}, {}, {}, {}, {}, {}
    for g in graph.prunable:
        s = scores[g.index].float()
        live = alive[g.index].bool() if alive else torch.ones(g.size, dtype=torch.bool)
        s = s[live].clamp(min=0)
        s = s / (s.mean() + 1e-12) + 1e-6 if s.numel() else s
        ranked[g.index] = s.sort(descending=True).values.cumsum(0).tolist()     # S_g of the n best, n = 1...
        counts[g.index] = len(ranked[g.index])
        lower[g.index] = max(1, lowest_count(g, min_keep))
        step[g.index] = group_round(g, round_to)
        members[g.index] = [la for la in graph.layers if any(x == g.index for x, _ in la.inputs + la.outputs)]
        weight[g.index] = max(1.0, sum(float(layer_flops(la, lambda h, n: n)) for la in members[g.index]))
    neighbours = {gi: {x for la in layers for x, _ in la.inputs + la.outputs if x in counts}
                  for gi, layers in members.items()}

    def after(gi: int) -> int:
        n, r = counts[gi], step[gi]
        return max(lower[gi], (n - 1) // r * r) if r > 1 else max(lower[gi], n - 1)

    def priority(gi: int) -> tuple[int, float] | None:
        new = after(gi)
        if new >= counts[gi]:
            return None
        lost = weight[gi] * math.log(ranked[gi][counts[gi] - 1] / ranked[gi][new - 1])
        saved = sum(latency(la, *widths(la, counts)) - latency(la, *widths(la, {**counts, gi: new}))
                    for la in members[gi])
        return (0, lost / saved) if saved > 0 else (1, lost)

    keys = {gi: priority(gi) for gi in counts}
    while flops(counts) > target:
        options = [(k, gi) for gi, k in keys.items() if k is not None]
        if not options:
            break
        gi = min(options)[1]
        counts[gi] = after(gi)
        for other in neighbours[gi] | {gi}:
            keys[other] = priority(other)
    return _refill(counts, ranked, weight, step, members, flops, target, latency)


def _refill(counts: dict[int, int], ranked: Mapping, weight: Mapping, step: Mapping, members: Mapping,
            flops: Callable[[dict], float], target: float, latency: LayerLatency) -> dict[int, int]:
    """The last cut may overshoot the target: give blocks back, most utility per ms first, while the
    FLOPs stay within it (so that results compare at equal FLOPs)."""
    while True:
        best: tuple[float, int, int] | None = None
        for gi, n in counts.items():
            r, full = step[gi], len(ranked[gi])
            up = min(full, (n // r + 1) * r) if r > 1 else n + 1
            if up <= n or up > full or flops({**counts, gi: up}) > target:
                continue
            gained = weight[gi] * math.log(ranked[gi][up - 1] / ranked[gi][n - 1])
            added = sum(latency(la, *widths(la, {**counts, gi: up})) - latency(la, *widths(la, counts))
                        for la in members[gi])
            key = gained / added if added > 0 else math.inf
            if best is None or key > best[0]:
                best = (key, gi, up)
        if best is None:
            return counts
        counts[best[1]] = best[2]
