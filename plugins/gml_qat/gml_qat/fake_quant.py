"""``ExactFakeQuantize``: fake quantization on the observer's own qparams (what int8 conversion uses)."""

from __future__ import annotations

import torch
from torch.ao.quantization.fake_quantize import FakeQuantize


class ExactFakeQuantize(FakeQuantize):
    """``FakeQuantize`` that also works before its first observation with the observer switched off.

    Used for symmetric (weight) qschemes instead of torch's fused fake-quant, whose symmetric scale
    formula differs from conversion's (see ``gml_qat.qconfig.exact_symmetric``). A per-channel
    instance that has never observed a tensor (e.g. a validation pass before training, observers
    paused) observes that tensor once to size its scales: for weights that is the weight itself.
    """

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if self.observer_enabled[0] == 0 and self.is_per_channel and self.scale.numel() != X.shape[self.ch_axis]:
            self.observer_enabled.fill_(1)
            try:
                return super().forward(X)
            finally:
                self.observer_enabled.fill_(0)
        return super().forward(X)
