"""What gml needs to know about an mmengine-style Python config beyond its values.

The original system's configs define helper variables at top level and use them inside the
sections (``model = dict(...)`` then ``algorithm = dict(model=model)``). mmengine keeps every
top-level name, so gml would report ``model`` as an unknown key. A top-level name that the
config itself (or one of its ``_base_`` files) reads as a variable is a helper and is dropped;
any other unknown name is still reported, with a did-you-mean or the gml equivalent of a key
of the original system.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

#: top-level keys of the original system's configs and where gml keeps the same setting
SEED_EQUIVALENTS = {
    "model": "algorithm.model",
    "search_eval_cfg": "algorithm.search_eval_cfg",
    "work_dir": "runtime.work_dir (or gml run --work-dir)",
    "load_from": "runtime.load_from (or gml run --load-from)",
    "resume_from": "gml run --resume",
    "log_config": "runtime.log_interval",
    "checkpoint_config": "runtime.checkpoint_interval and runtime.max_keep_ckpts",
    "evaluation": "train.val_interval",
    "optimizer": "train.optimizer, train.lr, train.momentum and train.weight_decay",
    "lr_config": "train.lr_schedule and train.lr_steps",
    "runner": "train.epochs",
    "total_epochs": "train.epochs",
    "seed": "runtime.seed (or gml run --seed)",
    "dist_params": "runtime.launcher (or gml run --launcher)",
}


def _assigned_and_read(tree: ast.Module) -> tuple[set[str], set[str]]:
    assigned: set[str] = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            assigned.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return assigned, read


def _bases(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
    return []


def _chain(path: Path, seen: frozenset[Path] = frozenset()) -> list[ast.Module]:
    """The parsed config and its local ``_base_`` files (package bases belong to their translator)."""
    path = path.resolve()
    if path in seen or not path.is_file():
        return []
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, OSError, UnicodeDecodeError):
        return []  # mmengine reports it when it reads the file
    trees = [tree]
    for base in _bases(tree):
        if "::" not in base:
            trees += _chain(path.parent / base, seen | {path})
    return trees


def helper_names(path: str | Path) -> set[str]:
    """Top-level names that a Python config or its local ``_base_`` files assign and also read."""
    assigned: set[str] = set()
    read: set[str] = set()
    for tree in _chain(Path(path)):
        a, r = _assigned_and_read(tree)
        assigned |= a
        read |= r
    return assigned & read


def drop_helpers(raw: dict[str, Any], helpers: set[str], tables: set[str]) -> dict[str, Any]:
    """``raw`` without the top-level helper variables (gml's own tables always stay)."""
    return {k: v for k, v in raw.items() if k in tables or k not in helpers}


def seed_note(key: str) -> str:
    """``"; in gml: X"`` for a top-level key of the original system, else ``""``."""
    where = SEED_EQUIVALENTS.get(key)
    return f"; in gml this setting is {where}" if where else ""
