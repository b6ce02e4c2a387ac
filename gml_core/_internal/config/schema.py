"""The top-level run config of ``gml run``.

``algorithm`` is structured in two phases: first as a raw table, then into the
``config_class`` of the registered algorithm named by ``algorithm.type``.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Optional

import attrs

from .converter import component_field
from .spec import ComponentSpec


def at_least(minimum: int):
    """attrs validator reporting ``key: must be >= N, got V`` at the field's own key path."""

    def check(_instance: Any, attribute: Any, value: Any) -> None:
        if value < minimum:
            from ..errors import ConfigError

            raise ConfigError([(attribute.name, f"must be >= {minimum}, got {value}")])

    return check


def in_range(low: float, high: float, high_inclusive: bool = False):
    """attrs validator: ``low <= value < high`` (``<= high`` with ``high_inclusive``)."""

    def check(_instance: Any, attribute: Any, value: Any) -> None:
        if value is not None and not (low <= value and (value <= high if high_inclusive else value < high)):
            from ..errors import ConfigError

            bracket = "]" if high_inclusive else ")"
            raise ConfigError([(attribute.name, f"must be in [{low}, {high}{bracket}, got {value}")])

    return check


def positive(_instance: Any, attribute: Any, value: Any) -> None:
    """attrs validator: the number must be > 0 (reported at the field's key path)."""
    if value is not None and value <= 0:
        from ..errors import ConfigError

        raise ConfigError([(attribute.name, f"must be > 0, got {value}")])


@attrs.frozen(kw_only=True)
class TrainConfig:
    """Optimisation settings (``[train]``)."""

    epochs: int = attrs.field(default=5, validator=at_least(1))
    batch_size: int = attrs.field(default=64, validator=at_least(1))
    val_batch_size: int = attrs.field(default=256, validator=at_least(1))
    optimizer: Literal["SGD", "AdamW", "Adam"] = "SGD"
    lr: float = attrs.field(default=0.05, validator=positive)
    momentum: float = attrs.field(default=0.9, validator=in_range(0.0, 1.0))
    weight_decay: float = attrs.field(default=5e-4, validator=at_least(0))
    nesterov: bool = False
    lr_schedule: Literal["cosine", "step", "constant", "cosine_iter"] = "cosine"
    lr_steps: list[int] = attrs.field(factory=list)
    warmup_iters: int = attrs.field(default=0, validator=at_least(0))
    label_smoothing: float = attrs.field(default=0.0, validator=in_range(0.0, 1.0))
    grad_clip: Optional[float] = attrs.field(default=None, validator=positive)
    val_interval: int = attrs.field(default=1, validator=at_least(1))
    num_workers: int = attrs.field(default=0, validator=at_least(0))


@attrs.frozen(kw_only=True)
class RuntimeConfig:
    """Where and how a run is executed (``[runtime]``)."""

    work_dir: str = ""
    seed: int = 0
    deterministic: bool = False
    log_interval: int = attrs.field(default=10, validator=at_least(1))
    checkpoint_interval: int = attrs.field(default=1, validator=at_least(0))  # 0: no epoch checkpoints
    max_keep_ckpts: int = attrs.field(default=2, validator=at_least(1))
    save_best: bool = True
    load_from: str = ""
    resume: bool = False
    launcher: Literal["none", "pytorch", "slurm"] = "none"
    visualizer: list[Literal["local", "tensorboard", "mlflow"]] = attrs.field(factory=lambda: ["local"])
    mlflow_tracking_uri: str = ""
    mlflow_experiment: str = "gml"
    progress: bool = True
    console: Literal["normal", "verbose", "quiet"] = "normal"  # gml run -v / -q
    trust_checkpoint: bool = False


@attrs.frozen(kw_only=True)
class AlgorithmConfig:
    """Base of every algorithm's typed config: ``type`` and the ``model`` it trains."""

    type: str
    model: ComponentSpec = component_field("model")


@attrs.frozen(kw_only=True)
class RawRunConfig:
    """Phase one: everything typed except the algorithm table."""

    data: ComponentSpec = component_field("dataset", factory=lambda: ComponentSpec("digits", {}))
    train: TrainConfig = attrs.field(factory=TrainConfig)
    runtime: RuntimeConfig = attrs.field(factory=RuntimeConfig)
    algorithm: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class RunConfig:
    """A fully typed run: data, training, runtime and the algorithm's own config."""

    data: ComponentSpec = component_field("dataset")
    train: TrainConfig
    runtime: RuntimeConfig
    algorithm: AlgorithmConfig
    source: str = ""
