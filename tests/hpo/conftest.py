"""Helpers for gml-hpo engine tests: write a task file, run it, read the store back."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hpo_helpers import BIN, PY  # noqa: F401


class TaskKit:
    def __init__(self, root: Path):
        self.root = root

    def write(self, data: dict, name: str = "task.yaml") -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def task(self, name: str, template: str, search_args: dict, searcher: dict | None = None,
             scheduler: dict | None = None, **top) -> dict:
        return {"task": {"name": name, "template": template, "search_args": search_args},
                "searcher": {"type": "GridSearcher", **(searcher or {})},
                "scheduler": {"parallel_size": 2, "poll_interval": 0.05, "grace_period": "2s", **(scheduler or {})},
                **top}

    def run(self, data: dict, resume: bool = False) -> str:
        from gml_hpo.cli.run_cmd import execute

        return execute(self.write(data), resume, quiet=True)

    def store(self, name: str):
        from gml_hpo.store import TaskStore

        return TaskStore(self.root / "work_dirs" / "hpo" / name / "task.db", readonly=True)

    def trials(self, name: str) -> dict:
        store = self.store(name)
        try:
            return {t.trial_id: t for t in store.trials()}
        finally:
            store.close()


@pytest.fixture
def kit(tmp_path, monkeypatch) -> TaskKit:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GML_HPO_WORK_DIR", raising=False)
    return TaskKit(tmp_path)
