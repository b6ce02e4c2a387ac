"""The task store: one SQLite file per task (WAL), written by the scheduler alone.

Tables: ``meta`` (key/value: name, config, cwd, state, elapsed time, ...), ``trials``,
``metrics`` (one row per trial, step and scalar) and ``events``. Each state change is
one transaction; the metrics of a read and the file offsets they came from are
committed together, so after a crash nothing is ingested twice or lost.
Readers (``search-ctl``) open the file read-only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

from .records import TrialRecord, TrialState

DB_FILE = "task.db"
SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    seq INTEGER UNIQUE NOT NULL,
    params TEXT NOT NULL,
    command TEXT NOT NULL DEFAULT '',
    trial_dir TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    handle TEXT,
    reward REAL,
    exit_code INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    attempt INTEGER NOT NULL DEFAULT 1,
    created_at REAL,
    started_at REAL,
    finished_at REAL,
    last_step INTEGER,
    last_metrics TEXT NOT NULL DEFAULT '{}',
    metrics_offset INTEGER NOT NULL DEFAULT 0,
    log_offset INTEGER NOT NULL DEFAULT 0,
    stop_intent TEXT,
    stop_requested_at REAL,
    hard_killed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS metrics (
    trial_id TEXT NOT NULL, attempt INTEGER NOT NULL, step INTEGER NOT NULL,
    time REAL NOT NULL, name TEXT NOT NULL, value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_trial ON metrics (trial_id, name);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, trial_id TEXT,
    kind TEXT NOT NULL, message TEXT NOT NULL DEFAULT ''
);
"""

_TRIAL_COLUMNS = ("trial_id", "seq", "params", "command", "trial_dir", "state", "handle", "reward", "exit_code",
                  "reason", "attempt", "created_at", "started_at", "finished_at", "last_step", "last_metrics",
                  "metrics_offset", "log_offset", "stop_intent", "stop_requested_at", "hard_killed")


class StoredTrial(TrialRecord):
    """A trial row with the scheduler's bookkeeping columns."""

    def __init__(self, row: sqlite3.Row):
        super().__init__(
            trial_id=row["trial_id"], seq=row["seq"], params=json.loads(row["params"]),
            state=TrialState(row["state"]), command=row["command"], trial_dir=Path(row["trial_dir"]),
            handle=row["handle"], reward=row["reward"], exit_code=row["exit_code"], reason=row["reason"],
            attempt=row["attempt"], created_at=row["created_at"], started_at=row["started_at"],
            finished_at=row["finished_at"], last_step=row["last_step"],
            last_metrics=json.loads(row["last_metrics"] or "{}"),
        )
        self.metrics_offset: int = row["metrics_offset"]
        self.log_offset: int = row["log_offset"]
        self.stop_intent: str | None = row["stop_intent"]
        self.stop_requested_at: float | None = row["stop_requested_at"]
        self.hard_killed: bool = bool(row["hard_killed"])


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return conn


class TaskStore:
    """Access to one task's SQLite file."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if not self.path.is_file():
            raise FileNotFoundError(str(self.path))
        self.conn = _connect(self.path, readonly)

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def create(cls, task_dir: Path, meta: dict[str, Any]) -> "TaskStore":
        """Create ``task_dir/task.db`` atomically (built under a temp name, then renamed)."""
        task_dir.mkdir(parents=True, exist_ok=True)
        final = task_dir / DB_FILE
        tmp = task_dir / f".{DB_FILE}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            rows = {"schema_version": SCHEMA_VERSION, "created_at": time.time(), "state": "CREATED",
                    "elapsed_s": 0.0, **meta}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in rows.items()])
            conn.execute("COMMIT")
        finally:
            conn.close()
        os.replace(tmp, final)
        return cls(final)

    def close(self) -> None:
        self.conn.close()

    # -- meta ----------------------------------------------------------------------------
    def meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else default

    def all_meta(self) -> dict[str, Any]:
        return {r["key"]: json.loads(r["value"]) for r in self.conn.execute("SELECT key, value FROM meta")}

    def set_meta(self, **values: Any) -> None:
        with self._tx():
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [(k, json.dumps(v)) for k, v in values.items()])

    # -- transactions --------------------------------------------------------------------
    class _Tx:
        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn

        def __enter__(self):
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, exc_type, exc, tb):
            self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
            return False

    def _tx(self) -> "_Tx":
        return TaskStore._Tx(self.conn)

    # -- trials --------------------------------------------------------------------------
    def next_seq(self) -> int:
        row = self.conn.execute("SELECT COALESCE(MAX(seq), 0) AS m FROM trials").fetchone()
        return int(row["m"]) + 1

    def add_trial(self, trial: TrialRecord, event: str = "") -> None:
        with self._tx() as c:
            c.execute("INSERT INTO trials (trial_id, seq, params, command, trial_dir, state, created_at, attempt) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (trial.trial_id, trial.seq, json.dumps(trial.params), trial.command, str(trial.trial_dir),
                       trial.state.value, trial.created_at, trial.attempt))
            if event:
                self._event(c, "created", event, trial.trial_id)

    def update_trial(self, trial_id: str, event: tuple[str, str] | None = None, **cols: Any) -> None:
        """Update columns of one trial (and log an event) in one transaction."""
        bad = set(cols) - set(_TRIAL_COLUMNS)
        if bad:
            raise KeyError(f"unknown trial columns {sorted(bad)}")
        values = [json.dumps(v) if k in ("params", "last_metrics") else
                  (v.value if isinstance(v, TrialState) else v) for k, v in cols.items()]
        with self._tx() as c:
            if cols:
                c.execute(f"UPDATE trials SET {', '.join(f'{k} = ?' for k in cols)} WHERE trial_id = ?",
                          (*values, trial_id))
            if event:
                self._event(c, event[0], event[1], trial_id)

    def trial(self, trial_id: str) -> StoredTrial | None:
        row = self.conn.execute("SELECT * FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
        return StoredTrial(row) if row else None

    def trials(self, states: Iterable[TrialState] | None = None) -> list[StoredTrial]:
        if states is None:
            rows = self.conn.execute("SELECT * FROM trials ORDER BY seq").fetchall()
        else:
            names = [s.value for s in states]
            rows = self.conn.execute(f"SELECT * FROM trials WHERE state IN ({','.join('?' * len(names))}) "
                                     "ORDER BY seq", names).fetchall()
        return [StoredTrial(r) for r in rows]

    def count_trials(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) AS n FROM trials").fetchone()["n"])

    # -- metrics -------------------------------------------------------------------------
    def add_metrics(self, trial_id: str, attempt: int, records: list[tuple[int, dict[str, float]]],
                    offsets: tuple[int, int], last_step: int | None, last_metrics: dict[str, float]) -> None:
        """Store new records and the file offsets they were read up to, atomically."""
        now = time.time()
        rows = [(trial_id, attempt, step, now, name, value) for step, values in records for name, value in values.items()]
        with self._tx() as c:
            c.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", rows)
            c.execute("UPDATE trials SET metrics_offset = ?, log_offset = ?, last_step = ?, last_metrics = ? "
                      "WHERE trial_id = ?", (offsets[0], offsets[1], last_step, json.dumps(last_metrics), trial_id))

    def history(self, trial_id: str, name: str) -> list[tuple[int, float]]:
        """``(step, value)`` of one scalar, in report order (the last report of a step wins)."""
        rows = self.conn.execute("SELECT step, value FROM metrics WHERE trial_id = ? AND name = ? ORDER BY rowid",
                                 (trial_id, name)).fetchall()
        by_step: dict[int, float] = {}
        for r in rows:
            by_step.pop(r["step"], None)
            by_step[r["step"]] = r["value"]
        return sorted(by_step.items())

    def metric_names(self) -> list[str]:
        return [r["name"] for r in self.conn.execute("SELECT DISTINCT name FROM metrics ORDER BY name")]

    def reset_trial(self, trial_id: str, attempt: int, reason: str) -> None:
        """Forget an interrupted attempt so the trial can be re-run from scratch."""
        with self._tx() as c:
            c.execute("DELETE FROM metrics WHERE trial_id = ?", (trial_id,))
            c.execute("UPDATE trials SET state = ?, handle = NULL, attempt = ?, started_at = NULL, "
                      "finished_at = NULL, exit_code = NULL, reward = NULL, reason = '', last_step = NULL, "
                      "last_metrics = '{}', metrics_offset = 0, log_offset = 0, stop_intent = NULL, "
                      "stop_requested_at = NULL, hard_killed = 0 WHERE trial_id = ?",
                      (TrialState.PENDING.value, attempt, trial_id))
            self._event(c, "rerun", reason, trial_id)

    # -- events --------------------------------------------------------------------------
    @staticmethod
    def _event(c: sqlite3.Connection, kind: str, message: str, trial_id: str | None = None) -> None:
        c.execute("INSERT INTO events (time, trial_id, kind, message) VALUES (?, ?, ?, ?)",
                  (time.time(), trial_id, kind, message))

    def event(self, kind: str, message: str, trial_id: str | None = None) -> None:
        with self._tx() as c:
            self._event(c, kind, message, trial_id)

    def events(self, limit: int | None = None) -> list[sqlite3.Row]:
        sql = "SELECT * FROM events ORDER BY id" + (f" DESC LIMIT {int(limit)}" if limit else "")
        rows = self.conn.execute(sql).fetchall()
        return list(reversed(rows)) if limit else rows
