"""A trained supernet loaded back from a run config: the shared setup of ``gml nas search|export``."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Optional, Sequence

import attrs
import torch
from torch.utils.data import DataLoader

from gml_core.api import GmlUserError


@attrs.define
class Session:
    """The run config, the algorithm (supernet loaded), data loaders and paths."""

    config: Any
    algorithm: Any
    bundle: Any
    work_dir: Path
    checkpoint: Path

    @property
    def model(self) -> Any:
        return self.algorithm.model

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.bundle.info.input_shape)

    def calib_batches(self, n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``n`` shuffled training batches (-1: the whole set), the same for every candidate."""
        gen = torch.Generator().manual_seed(seed)
        loader = DataLoader(self.bundle.train, batch_size=self.config.train.batch_size, shuffle=True, generator=gen)
        return list(loader) if n < 0 else list(itertools.islice(loader, n))

    def val_loader(self) -> DataLoader:
        """The split results are reported on (the test split under ``data.type = "search_split"``)."""
        return DataLoader(self.bundle.val, batch_size=self.config.train.val_batch_size, shuffle=False)

    @property
    def held_out(self) -> bool:
        """Whether the data has a search split of its own (``search_split``)."""
        return getattr(self.bundle, "search", None) is not None

    def search_loader(self) -> DataLoader:
        """The split the search scores candidates on: the held-out search split, else the validation split."""
        data = self.bundle.search if self.held_out else self.bundle.val
        return DataLoader(data, batch_size=self.config.train.val_batch_size, shuffle=False)

    @property
    def search_split_name(self) -> str:
        return "search split (held out of training)" if self.held_out else "validation split"

    @property
    def report_split_name(self) -> str:
        """Where standalone figures come from; says so when the search saw the same images."""
        return "test split" if self.held_out else "validation split (the search scored on it too: optimistic)"


def open_session(config_path: str, overrides: Sequence[str] = (), work_dir: Optional[str] = None,
                 checkpoint: Optional[str] = None, trust: bool = False) -> Session:
    """Load ``config_path``, build its NAS algorithm and load the supernet weights."""
    from gml_core.api import BuildContext, build_algorithm, build_component, load_config, load_weights, registry
    cfg = load_config(config_path, overrides, work_dir=work_dir)
    if not getattr(registry("algorithm").get(cfg.algorithm.type), "is_gml_nas", False):
        raise GmlUserError(f"{config_path}: algorithm.type is {cfg.algorithm.type!r}; gml nas needs a one-shot NAS "
                           "config (BigNAS or SPOS)")
    wd = Path(cfg.runtime.work_dir or Path("work_dirs") / Path(config_path).stem)
    trust = trust or cfg.runtime.trust_checkpoint
    bundle = build_component("dataset", cfg.data, "data")
    context = BuildContext(bundle.info, cfg.train, wd, trust)
    algorithm = build_algorithm(cfg.algorithm, context)
    ckpt = Path(checkpoint) if checkpoint else wd / "supernet.pth"
    if not ckpt.is_file():
        raise GmlUserError(f"supernet checkpoint not found: {ckpt}; train it first with `gml run {config_path}` "
                           "or pass --checkpoint")
    load_weights(algorithm.model, ckpt, trust, prefix="model.")
    algorithm.eval()
    return Session(cfg, algorithm, bundle, wd, ckpt)
