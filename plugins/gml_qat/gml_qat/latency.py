"""Interleaved CPU latency of an fp32 and an int8 model: the speed-up both see under the same load.

Timing one model for N passes and then the other (what the IAO summary did before) charges any
load change between the two blocks to one model: on a shared machine a busy spell during the fp32
block gave resnet18 a 20.8x "int8 speed-up" where the machine's real ratio was ~7x (reproduced in
``tests/qat/test_qat_latency.py``). Here the models alternate pass by pass (A B, B A, A B, ...:
the order flips so that neither always runs right after the other), after a warm-up of each;
latencies are medians over the passes. The speed-up is the median of the paired ratios: each pass
pair ran back to back, under the same load, so a busy spell slows both sides of a pair (a ratio of
the two medians is not robust: with a spell over about half the run, the medians can come from
different load levels). The paired ratios' quartiles show how stable the speed-up was; ``stable``
is false when they spread more than ``STABLE_SPREAD`` around the median.

Quantized onednn kernels (engines ``x86``/``onednn``) cache their primitives in the packed weights
on first use; a module that already ran at another batch size or thread count can be several
times slower. ``fresh_torchscript`` reloads an exported TorchScript from its bytes, which repacks
the weights, so the timed copy has run only at the timed batch size and thread count.
"""

from __future__ import annotations

import io
import statistics
import time
from typing import Any, Callable, Mapping

import attrs
import torch

#: paired-ratio interquartile range, relative to the median, above which a measurement is "unstable"
STABLE_SPREAD = 0.25


@attrs.frozen
class Latency:
    """Result of ``interleaved_latency`` (milliseconds; ``speedup`` = baseline / candidate)."""

    baseline_ms: float
    candidate_ms: float
    speedup: float
    paired_quartiles: tuple[float, float, float]
    passes: int
    warmup: int
    threads: int
    batch_size: int

    @property
    def stable(self) -> bool:
        q1, q2, q3 = self.paired_quartiles
        return (q3 - q1) <= STABLE_SPREAD * q2

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "paired_quartiles": list(self.paired_quartiles), "stable": self.stable,
                "method": f"interleaved: {self.warmup} warm-up then {self.passes} alternating passes each; "
                          "medians; speed-up = median of back-to-back pass ratios"}


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0],) * 3
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


@torch.inference_mode()
def interleaved_latency(baseline: Callable[[Any], Any], candidate: Callable[[Any], Any], example: Any,
                        passes: int = 50, warmup: int = 10,
                        timer: Callable[[], float] = time.perf_counter) -> Latency:
    """Time ``baseline(example)`` and ``candidate(example)`` alternately; see the module docstring."""
    models = (baseline, candidate)
    for _ in range(max(warmup, 0)):
        for model in models:
            model(example)
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(max(passes, 1)):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            start = timer()
            models[k](example)
            times[k].append(timer() - start)
    base, cand = (statistics.median(t) * 1e3 for t in times)
    paired = quartiles([b / c if c > 0 else float("inf") for b, c in zip(*times)])
    return Latency(baseline_ms=base, candidate_ms=cand, speedup=paired[1], paired_quartiles=paired, passes=max(passes, 1),
                   warmup=max(warmup, 0), threads=torch.get_num_threads(),
                   batch_size=int(example.shape[0]) if hasattr(example, "shape") else 1)


def fresh_torchscript(data: bytes) -> torch.jit.ScriptModule:
    """A new copy of a saved TorchScript module (weights repacked, no kernel caches from earlier runs)."""
    from .engine import quiet

    with quiet():
        return torch.jit.load(io.BytesIO(data), map_location="cpu")


def describe(latency: Latency | Mapping[str, Any], base_key: str = "baseline_ms",
             cand_key: str = "candidate_ms") -> str:
    """``'105.800 / 15.100 ms (7.01x; paired 6.80-7.20x)'``, with a warning when unstable."""
    d = latency.to_dict() if isinstance(latency, Latency) else latency
    if isinstance(latency, Latency):
        base_key, cand_key = "baseline_ms", "candidate_ms"
    q1, _, q3 = d["paired_quartiles"]
    text = f"{d[base_key]:.3f} / {d[cand_key]:.3f} ms ({d['speedup']:.2f}x; paired {q1:.2f}-{q3:.2f}x)"
    return text if d["stable"] else text + " UNSTABLE: the machine was busy, compare with care"
