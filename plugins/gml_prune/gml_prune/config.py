"""Typed configs of gml-prune's algorithms (the original system's DMCP vocabulary)."""

from __future__ import annotations

from typing import Any, Literal, Optional

import attrs

from gml_core.api import AlgorithmConfig, ConfigError

from .budget import DEFAULT_ROUND_TO, check_target

SampleType = Literal["max", "min", "scheduled_random", "non_uni_random", "arch_random"]


def _fail(key: str, message: str) -> None:
    raise ConfigError([(key, message)])


def _check_shape(key: str, shape: Optional[list[int]]) -> None:
    if shape is not None and (len(shape) < 2 or any(s < 1 for s in shape)):
        _fail(key, f"expected [batch, channels, height, width] with positive sizes, got {shape}")


def _check_target(key: str, value: Any) -> None:
    problem = check_target(value)
    if problem:
        _fail(key, problem)


def _check_batches(batches: list[int]) -> None:
    if any(b < 1 for b in batches):
        _fail("algorithm.latency_batches", f"batch sizes must be positive, got {batches}")


@attrs.frozen(kw_only=True)
class WidthConfig:
    """Width range of every prunable layer, as fractions of its channels."""

    max: float = 1.0
    min: float = 0.1
    offset: float = 0.1

    def __attrs_post_init__(self) -> None:
        key = "algorithm.mutator.width"
        if not 0 < self.max <= 1:
            _fail(f"{key}.max", f"must be in (0, 1], got {self.max}")
        if not 0 < self.min <= self.max:
            _fail(f"{key}.min", f"must be in (0, width.max = {self.max}], got {self.min}")
        if self.offset <= 0 or (self.min < self.max and self.offset > self.max - self.min + 1e-9):
            _fail(f"{key}.offset", f"must be in (0, max - min = {self.max - self.min:.3g}], got {self.offset}")


@attrs.frozen(kw_only=True)
class DMCPMutatorConfig:
    """``[algorithm.mutator]`` of DMCP."""

    type: Literal["DMCPMutator"] = "DMCPMutator"
    num_sample: int = 4
    arch_sample_type: list[SampleType] = attrs.field(
        factory=lambda: ["max", "min", "scheduled_random", "scheduled_random"])
    sample_width: Optional[list[float]] = None
    width: WidthConfig = attrs.field(factory=WidthConfig)
    arch_learning_rate: float = 0.5
    arch_weight_decay: float = 0.0
    input_shape: Optional[list[int]] = None
    target_flops: Any = 0.5
    sample_prob_decay: float = 0.99999

    def __attrs_post_init__(self) -> None:
        key = "algorithm.mutator"
        if self.num_sample < 1:
            _fail(f"{key}.num_sample", f"must be at least 1, got {self.num_sample}")
        if len(self.arch_sample_type) != self.num_sample:
            _fail(f"{key}.arch_sample_type", f"has {len(self.arch_sample_type)} entries but num_sample = "
                                             f"{self.num_sample}; give one sample type per sample")
        if self.sample_width is not None and (not self.sample_width or any(
                not 0 < w <= self.width.max for w in self.sample_width)):
            _fail(f"{key}.sample_width", f"widths must be in (0, width.max = {self.width.max}], got {self.sample_width}")
        if self.arch_learning_rate <= 0:
            _fail(f"{key}.arch_learning_rate", f"must be positive, got {self.arch_learning_rate}")
        if self.arch_weight_decay < 0:
            _fail(f"{key}.arch_weight_decay", f"must be >= 0, got {self.arch_weight_decay}")
        if not 0 < self.sample_prob_decay <= 1:
            _fail(f"{key}.sample_prob_decay", f"must be in (0, 1], got {self.sample_prob_decay}")
        _check_shape(f"{key}.input_shape", self.input_shape)
        _check_target(f"{key}.target_flops", self.target_flops)


@attrs.frozen(kw_only=True)
class DMCPConfig(AlgorithmConfig):
    """``[algorithm]`` with ``type = "DMCP"``."""

    arch_start_training: int = 500
    arch_train_freq: int = 1
    arch_sample_num: int = 10
    mutator: DMCPMutatorConfig = attrs.field(factory=DMCPMutatorConfig)
    flops_loss_type: Literal["log_l1", "l1", "l2"] = "log_l1"
    flops_loss_weight: float = 1.0
    deploy_width: Literal["best", "expected"] = "best"
    flops_tolerance: float = 0.05
    calib_batches: int = 20
    score_batches: int = 10
    exclude: list[str] = attrs.field(factory=list)
    latency_batches: list[int] = attrs.field(factory=lambda: [1, 64])

    def __attrs_post_init__(self) -> None:
        for name in ("arch_start_training", "arch_sample_num", "calib_batches", "score_batches"):
            if getattr(self, name) < 0:
                _fail(f"algorithm.{name}", f"must be >= 0, got {getattr(self, name)}")
        if self.arch_train_freq < 1:
            _fail("algorithm.arch_train_freq", f"must be at least 1, got {self.arch_train_freq}")
        if not 0 <= self.flops_tolerance < 1:
            _fail("algorithm.flops_tolerance", f"must be in [0, 1), got {self.flops_tolerance}")
        if self.flops_loss_weight < 0:
            _fail("algorithm.flops_loss_weight", f"must be >= 0, got {self.flops_loss_weight}")
        _check_batches(self.latency_batches)


@attrs.frozen(kw_only=True)
class MagnitudePruningConfig(AlgorithmConfig):
    """``[algorithm]`` with ``type = "MagnitudePruning"``: norm-based channel pruning."""

    criterion: Literal["l1", "l2", "bn_scale"] = "l1"
    target_flops: Any = None
    keep_ratio: Optional[float] = None
    allocation: Literal["uniform", "global", "latency"] = "uniform"
    latency_batch: Any = 1                  # a batch size or a list of them (checked below)
    steps: int = 1
    step_interval: int = 1
    min_keep: float = 0.1
    round_to: int = DEFAULT_ROUND_TO
    input_shape: Optional[list[int]] = None
    exclude: list[str] = attrs.field(factory=list)
    evaluate_before: bool = True
    latency_batches: list[int] = attrs.field(factory=lambda: [1, 64])

    def __attrs_post_init__(self) -> None:
        if (self.target_flops is None) == (self.keep_ratio is None):
            _fail("algorithm.target_flops", "give exactly one of target_flops (e.g. 0.5 or \"300M\") "
                                            "and keep_ratio (fraction of channels kept per group)")
        if self.target_flops is not None:
            _check_target("algorithm.target_flops", self.target_flops)
        if self.allocation == "latency" and self.target_flops is None:
            _fail("algorithm.allocation", "\"latency\" needs target_flops (it cuts FLOPs where they cost the most "
                                          "time); with keep_ratio use \"uniform\" or \"global\"")
        from .latency import check_batches
        check_batches(self.latency_batch, "algorithm.latency_batch")
        if self.keep_ratio is not None and not 0 < self.keep_ratio <= 1:
            _fail("algorithm.keep_ratio", f"must be in (0, 1], got {self.keep_ratio}")
        if self.steps < 1:
            _fail("algorithm.steps", f"must be at least 1 (1 = one-shot), got {self.steps}")
        if self.step_interval < 1:
            _fail("algorithm.step_interval", f"must be at least 1 epoch, got {self.step_interval}")
        if not 0 < self.min_keep <= 1:
            _fail("algorithm.min_keep", f"must be in (0, 1], got {self.min_keep}")
        if self.round_to < 1:
            _fail("algorithm.round_to", f"must be at least 1, got {self.round_to}")
        _check_shape("algorithm.input_shape", self.input_shape)
        _check_batches(self.latency_batches)
