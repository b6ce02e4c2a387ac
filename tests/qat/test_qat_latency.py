"""The int8-vs-fp32 latency measurement, checked on a simulated machine (a clock the models advance).

The IAO summary once reported a 20.8x int8 speed-up for resnet18 where an interleaved check measured
7.0x: it timed 50 fp32 passes, then 50 int8 passes, so a busy spell of the shared machine during the
fp32 block counted against fp32 only. These tests replay that with a deterministic clock; nothing
here times real code.
"""

from __future__ import annotations

import random
import statistics

import pytest
import torch

from gml_qat.latency import Latency, interleaved_latency

FP32_COST, INT8_COST = 7.0, 1.0  # the machine's true ratio: 7.0x


class Machine:
    """A CPU whose passes take ``cost * slowdown(now)`` on its clock."""

    def __init__(self, slowdown):
        self.now = 0.0
        self.slowdown = slowdown
        self.calls: list[str] = []

    def clock(self) -> float:
        return self.now

    def model(self, name: str, cost: float):
        def forward(_x):
            self.calls.append(name)
            self.now += cost * self.slowdown(self.now)
        return forward


def sequential_ms(model, timer, runs=50, warmup=10) -> float:
    """The previous method: warm-up, then the median of ``runs`` passes of one model alone."""
    for _ in range(warmup):
        model(None)
    times = []
    for _ in range(runs):
        start = timer()
        model(None)
        times.append(timer() - start)
    return statistics.median(times)


def busy_spell(start: float, end: float, factor: float):
    return lambda now: factor if start <= now < end else 1.0


def test_sequential_timing_reproduces_the_reported_20_8x_and_interleaving_measures_7x():
    factor = 20.8 / 7.0  # another job slowed the machine ~3x ...
    spell = 60 * FP32_COST * factor  # ... exactly while the fp32 block ran
    machine = Machine(busy_spell(0.0, spell, factor))
    fp32 = sequential_ms(machine.model("fp32", FP32_COST), machine.clock)
    int8 = sequential_ms(machine.model("int8", INT8_COST), machine.clock)
    assert fp32 / int8 == pytest.approx(20.8)  # the figure

    machine = Machine(busy_spell(0.0, spell, factor))
    result = interleaved_latency(machine.model("fp32", FP32_COST), machine.model("int8", INT8_COST), torch.zeros(1),
                                 passes=50, warmup=10, timer=machine.clock)
    assert result.speedup == pytest.approx(7.0)
    assert result.paired_quartiles[1] == pytest.approx(7.0) and result.stable


@pytest.mark.parametrize("start", [0.0, 150.0, 300.0, 450.0])
@pytest.mark.parametrize("factor", [1.5, 3.0, 6.0])
def test_interleaved_speedup_does_not_depend_on_when_the_machine_is_busy(start, factor):
    machine = Machine(busy_spell(start, start + 300.0, factor))
    result = interleaved_latency(machine.model("fp32", FP32_COST), machine.model("int8", INT8_COST), torch.zeros(8),
                                 passes=50, warmup=10, timer=machine.clock)
    assert result.speedup == pytest.approx(7.0, rel=1e-9)
    assert result.batch_size == 8 and result.threads == torch.get_num_threads()


def test_alternation_warm_up_and_pass_counts():
    machine = Machine(lambda now: 1.0)
    interleaved_latency(machine.model("a", 2.0), machine.model("b", 1.0), torch.zeros(1), passes=4, warmup=2,
                        timer=machine.clock)
    assert machine.calls == ["a", "b"] * 2 + ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_a_drifting_load_moves_both_latencies_but_not_their_ratio():
    rng = random.Random(0)
    level = [1.0]

    def slowdown(_now):  # a slow random walk of the machine's load, between 1x and 4x
        level[0] = min(4.0, max(1.0, level[0] + rng.uniform(-0.05, 0.05)))
        return level[0]

    machine = Machine(slowdown)
    result = interleaved_latency(machine.model("fp32", FP32_COST), machine.model("int8", INT8_COST), torch.zeros(1),
                                 passes=100, warmup=10, timer=machine.clock)
    assert result.speedup == pytest.approx(7.0, rel=0.05)
    assert result.stable


def test_a_machine_too_noisy_to_measure_is_flagged_unstable():
    rng = random.Random(0)
    machine = Machine(lambda now: rng.choice([1.0, 4.0]))  # every pass independently fast or 4x slower
    result = interleaved_latency(machine.model("fp32", FP32_COST), machine.model("int8", INT8_COST), torch.zeros(1),
                                 passes=60, warmup=2, timer=machine.clock)
    assert not result.stable
    assert "UNSTABLE" in __import__("gml_qat.latency", fromlist=["describe"]).describe(result)


def test_latency_record_states_threads_batch_and_method():
    machine = Machine(lambda now: 1.0)
    result = interleaved_latency(machine.model("a", 3.0), machine.model("b", 1.0), torch.zeros(4), passes=5,
                                 warmup=1, timer=machine.clock)
    record = result.to_dict()
    assert isinstance(result, Latency)
    assert record["batch_size"] == 4 and record["threads"] == torch.get_num_threads()
    assert record["passes"] == 5 and record["warmup"] == 1 and "interleaved" in record["method"]
    assert record["baseline_ms"] == pytest.approx(3e3) and record["candidate_ms"] == pytest.approx(1e3)
    assert record["speedup"] == pytest.approx(3.0)
