"""``GmlAlgorithm``: an mmengine ``BaseModel`` wrapping the architecture it trains.

Batches are ``(inputs, labels)`` tuples; mmengine calls
``forward(inputs, labels, mode)`` with ``mode`` in ``loss``/``predict``/``tensor``.
Algorithms override ``loss`` (and ``train_step`` when a step is more than one
forward/backward), and the lifecycle methods the training hook calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from ..components import build
from ..config.schema import AlgorithmConfig, TrainConfig
from ..config.spec import ComponentSpec


@attrs.frozen
class DataInfo:
    """What models need to know about the data."""

    num_classes: int
    in_channels: int
    image_size: tuple[int, int]

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.in_channels, *self.image_size)


@attrs.frozen
class BuildContext:
    """Everything an algorithm needs to build itself, besides its own config."""

    data: DataInfo
    train: TrainConfig = attrs.field(factory=TrainConfig)
    work_dir: Path = Path("work_dirs/tmp")
    trust_checkpoint: bool = False

    def build_model(self, spec: ComponentSpec, path: str = "algorithm.model") -> nn.Module:
        """Build a model, filling ``num_classes``/``in_channels``; ``init_from`` loads a checkpoint.

        A checkpoint with a ``model_spec`` entry (an exported, e.g. pruned, model) is
        rebuilt from that spec before its weights are loaded. The file is read once.
        """
        model, _ = self.build_model_and_spec(spec, path)
        return model

    def build_model_and_spec(self, spec: ComponentSpec, path: str = "algorithm.model") -> tuple[nn.Module, ComponentSpec]:
        """``build_model`` plus the explicit spec that rebuilds the same architecture."""
        from ..checkpoint import load_file, load_weights
        from ..components import explicit_model_spec

        init_from = spec.args.get("init_from", "")
        checkpoint = load_file(init_from, self.trust_checkpoint) if init_from else None
        explicit = explicit_model_spec(spec, self.data.num_classes, self.data.in_channels, checkpoint)
        model = build("model", explicit, path)
        if init_from:
            load_weights(model, checkpoint, source=init_from)
        return model, explicit

    def build(self, kind: str, spec: ComponentSpec, path: str = "", **defaults: Any) -> Any:
        """Build any registered component."""
        return build(kind, spec, path, **defaults)


class GmlAlgorithm(BaseModel):
    """Base algorithm: plain supervised training of ``self.model``."""

    config_class: type[AlgorithmConfig] = AlgorithmConfig

    def __init__(self, config: AlgorithmConfig, context: BuildContext):
        super().__init__()
        self.config = config
        self.context = context
        #: the explicit spec that rebuilds ``self.model`` (``init_from`` resolved, injected args filled)
        self.model_spec: ComponentSpec
        self.model, self.model_spec = context.build_model_and_spec(config.model)

    # -- mmengine entry point ---------------------------------------------------------
    def forward(self, inputs: torch.Tensor, data_samples: Any = None, mode: str = "tensor") -> Any:
        if mode == "loss":
            return self.loss(inputs, data_samples)
        if mode == "predict":
            return self.predict(inputs, data_samples)
        return self.model(inputs)

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses of one batch; keys containing ``loss`` are summed by mmengine."""
        logits = self.model(inputs)
        return {"loss_cls": F.cross_entropy(logits, labels, label_smoothing=self.context.train.label_smoothing)}

    def predict(self, inputs: torch.Tensor, labels: Any = None) -> torch.Tensor:
        """Logits used by the evaluator (rows of the returned tensor)."""
        return self.deploy_model()(inputs)

    # -- lifecycle, called by gml's training hook --------------------------------------
    def before_train(self, run: Any) -> None:
        """Called once before the first iteration with a ``RunInfo`` (loaders, evaluate)."""

    def before_train_iter(self, iteration: int, epoch: int, max_iters: int) -> None:
        """Called before every training iteration (schedules)."""

    def after_train(self, runner: Any) -> dict[str, Any]:
        """Called once after training; returns extra summary rows (e.g. exported paths)."""
        return {}

    def deploy_model(self) -> nn.Module:
        """The model that is evaluated, counted and exported (default: ``self.model``)."""
        return self.model

    def optimizer_param_groups(self) -> Any:
        """Parameters the weight optimiser updates (default: all trainable ones)."""
        return [p for p in self.parameters() if p.requires_grad]

    def build_optim_wrapper(self, train: TrainConfig) -> Any:
        """The mmengine optimiser wrapper; override for several optimisers (an ``OptimWrapperDict``)."""
        from ..training.optim import make_optim_wrapper

        return make_optim_wrapper(self.optimizer_param_groups(), train)
