"""Automatic reporting of ``gml run`` validation metrics inside an HPO trial."""

from __future__ import annotations

from typing import Any

from .reporting import report

_EVALUATIONS = 0


def trial_scalars(metrics: dict[str, Any], iteration: int | None, epoch: int | None) -> dict[str, float]:
    """The scalars reported for one validation.

    Every numeric metric keeps its gml name (``accuracy/top1`` in percent); ``acc`` is
    added as top-1 accuracy in [0, 1] so ``reward_attribute: acc`` works as in the
    original system; ``epoch`` and ``iteration`` are reported for plots.
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(key)] = float(value)
    top1 = out.get("accuracy/top1")
    if top1 is not None and "acc" not in out:
        out["acc"] = top1 / 100.0
    if epoch is not None:
        out.setdefault("epoch", float(epoch))
    if iteration is not None:
        out.setdefault("iteration", float(iteration))
    return out


def report_evaluation(iteration: int | None, epoch: int | None, metrics: dict[str, Any]) -> None:
    """Report one validation as the next step (1, 2, ...) of the current trial."""
    global _EVALUATIONS
    scalars = trial_scalars(metrics, iteration, epoch)
    if not scalars:
        return
    _EVALUATIONS += 1
    report(step=_EVALUATIONS, **scalars)
