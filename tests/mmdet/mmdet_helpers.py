"""Helpers of the gml-mmdet tests (a unique module name)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "mmdet"


def tiny(root: Path) -> list[str]:
    """Overrides pointing a digits-detection config at a small set with a tiny budget."""
    return [f'data.root="{root}"', "data.num_train=16", "data.num_val=8", "train.batch_size=8",
            "train.val_batch_size=8", "train.epochs=1", "train.num_workers=0"]
