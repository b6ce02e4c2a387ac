"""``HelloMixup``: mixup training (Zhang et al. 2018) with a configurable loss."""

import attrs
import torch

from gml_core.api import AlgorithmConfig, ComponentSpec, GmlAlgorithm, component_field, positive


@attrs.frozen(kw_only=True)
class HelloMixupConfig(AlgorithmConfig):
    alpha: float = attrs.field(default=0.2, validator=positive)
    loss: ComponentSpec = component_field("loss", default=ComponentSpec("HelloFocalLoss", {}))


class HelloMixup(GmlAlgorithm):
    """Train on convex combinations of sample pairs and of their losses."""

    config_class = HelloMixupConfig

    def __init__(self, config: HelloMixupConfig, context):
        super().__init__(config, context)
        self.criterion = context.build("loss", config.loss, "algorithm.loss")

    def loss(self, inputs, labels):
        lam = float(torch.distributions.Beta(self.config.alpha, self.config.alpha).sample())
        perm = torch.randperm(inputs.size(0), device=inputs.device)
        logits = self.model(lam * inputs + (1 - lam) * inputs[perm])
        return {"loss_mixup": lam * self.criterion(logits, labels) + (1 - lam) * self.criterion(logits, labels[perm])}
