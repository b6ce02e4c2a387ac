"""Quantizers: ``TorchDefaultQuantizer`` (eager mode) and ``FxQuantizer`` (FX graph mode)."""
