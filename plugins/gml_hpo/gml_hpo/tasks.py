"""Task-level operations shared by the command lines: create, open, resume, list."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gml_core.api import GmlUserError, did_you_mean, one_of

from .records import TrialState
from .scheduler import STOP_FILE
from .store import DB_FILE, TaskStore
from .task_lock import TaskLock
from .taskfile import DEFAULT_WORK_DIR, TaskConfig, load_task

ENV_WORK_DIR = "GML_HPO_WORK_DIR"

#: keys that define what a task searches; they must not change on resume
_IDENTITY = (("task", "template"), ("task", "search_args"), ("searcher",))


def default_work_dir() -> Path:
    return Path(os.environ.get(ENV_WORK_DIR) or DEFAULT_WORK_DIR)


def flatten_params(params: dict[str, Any]) -> dict[str, Any]:
    """Placeholder values of stored params (a Nested choice expands into its keys)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            out.update(value)
        else:
            out[key] = value
    return out


def _pick(raw: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = raw
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def prepare_run(task_file: str | Path, resume: bool) -> tuple[TaskConfig, TaskStore, bool]:
    """Validate a task file and open (``resume``) or create its store. Nothing is written
    unless the file validates; an existing task is refused without ``resume``."""
    cfg = load_task(task_file)
    db = cfg.task_dir / DB_FILE
    if db.exists():
        if not resume:
            raise GmlUserError(f"task '{cfg.name}' already exists ({cfg.task_dir}); continue it with "
                               f"--resume, or choose another task.name")
        store = TaskStore(db)
        stored = store.meta("config", {})
        changed = [".".join(p) for p in _IDENTITY if _pick(stored, p) != _pick(cfg.raw, p)]
        if changed:
            store.close()
            raise GmlUserError(f"{task_file}: cannot resume task '{cfg.name}': {', '.join(changed)} differ from the "
                               f"stored task (only scheduler, tracking and generate_log may change)")
        store.set_meta(config=cfg.raw, source=str(task_file))
        return cfg, store, True
    store = TaskStore.create(cfg.task_dir, {"name": cfg.name, "config": cfg.raw, "cwd": str(cfg.cwd),
                                             "source": str(task_file)})
    return cfg, store, False


def find_task(name: str, work_dir: str | Path | None = None) -> Path:
    """The directory of an existing task, or a clear error listing the known ones."""
    base = Path(work_dir) if work_dir else default_work_dir()
    task_dir = (base / name).resolve()
    if (task_dir / DB_FILE).is_file():
        return task_dir
    known = [t.name for t in list_task_dirs(base)]
    raise GmlUserError(f"no task '{name}' in {base}{did_you_mean(name, known)}; known tasks: {one_of(known)} "
                       f"(set --work-dir or {ENV_WORK_DIR})")


def list_task_dirs(work_dir: str | Path | None = None) -> list[Path]:
    base = Path(work_dir) if work_dir else default_work_dir()
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if (p / DB_FILE).is_file())


def open_store(task_dir: Path) -> TaskStore:
    return TaskStore(task_dir / DB_FILE, readonly=True)


def config_of(task_dir: Path) -> TaskConfig:
    """Re-validate a stored task's config (for ``search-ctl resume``)."""
    store = open_store(task_dir)
    try:
        raw, cwd = store.meta("config"), Path(store.meta("cwd"))
    finally:
        store.close()
    import attrs

    cfg = load_task(raw, cwd=cwd, source_name=f"{task_dir / DB_FILE} (stored task)")
    return cfg if cfg.task_dir == task_dir.resolve() else attrs.evolve(cfg, task_dir=task_dir.resolve())


def task_status(task_dir: Path, store: TaskStore) -> str:
    """RUNNING (a live scheduler), INTERRUPTED (its scheduler died), or the stored end state."""
    pid = TaskLock.held(task_dir)
    state = store.meta("state", "?")
    if pid:
        return "RUNNING" + (" (stopping)" if (task_dir / STOP_FILE).exists() else "")
    if state == "RUNNING":
        return "INTERRUPTED"
    return state


def best_trial(store: TaskStore) -> tuple[float, str] | None:
    cfg = store.meta("config", {})
    maximize = (cfg.get("searcher") or {}).get("optimize_mode", "maximize") == "maximize"
    rows = store.conn.execute("SELECT trial_id, reward FROM trials WHERE state = ? AND reward IS NOT NULL",
                              (TrialState.SUCCEEDED.value,)).fetchall()
    if not rows:
        return None
    row = (max if maximize else min)(rows, key=lambda r: r["reward"])
    return row["reward"], row["trial_id"]


def reward_settings(store: TaskStore) -> tuple[str, bool]:
    searcher = store.meta("config", {}).get("searcher") or {}
    return searcher.get("reward_attribute", "acc"), searcher.get("optimize_mode", "maximize") == "maximize"


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str)


