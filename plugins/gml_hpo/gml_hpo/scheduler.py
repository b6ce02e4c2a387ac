"""The scheduler: runs a task's trials asynchronously and records everything in the store.

One scheduler process owns a task (an flock on ``scheduler.lock``). Each tick it reads
new metrics of running trials (and asks the assessor), polls the executor, finalizes
ended trials, enforces per-job timeouts (graceful cancel, then a hard one after
``grace_period``), checks the task's stop criteria and refills free slots at once.
Every state change is committed before the next action, so ``search-run --resume``
after a SIGKILL at any moment re-attaches running trials, re-runs interrupted ones
and never counts a trial twice.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from typing import Any, Callable

from gml_core.api import GmlUserError

from .executors.base import JobState, JobStatus, TrialLaunch, tail
from .records import TaskInfo, TrialRecord, TrialState
from .reporting import ENV_TASK, ENV_TRIAL_DIR, ENV_TRIAL_ID, MetricsReader
from .store import StoredTrial, TaskStore
from .task_lock import TaskLock
from .taskfile import TaskConfig

STOP_FILE = "stop.request"
MAX_SUBMIT_FAILURES = 3
HEARTBEAT_S = 0.5  # how often a run records its active time (a crash loses at most this)
_BIN_DIR = os.path.dirname(sys.executable)


class RunningTrial:
    def __init__(self, record: StoredTrial, pattern: re.Pattern | None = None, reward_attribute: str = ""):
        self.record = record
        self.reader = MetricsReader(record.trial_dir, record.log_path, record.metrics_offset, record.log_offset,
                                    record.last_step, pattern=pattern, pattern_name=reward_attribute)
        self.history: list[float] = []
        self.run_since: float | None = record.started_at

    @property
    def id(self) -> str:
        return self.record.trial_id


class Scheduler:
    """Runs one task to its end (or until stopped / interrupted)."""

    def __init__(self, cfg: TaskConfig, store: TaskStore, *, resumed: bool = False,
                 on_event: Callable[[str, str | None, str], None] | None = None,
                 on_tick: Callable[[], None] | None = None):
        self.cfg = cfg
        self.store = store
        self.resumed = resumed
        self.on_event = on_event or (lambda kind, trial_id, message: None)
        self.on_tick = on_tick or (lambda: None)
        self.task_dir = cfg.task_dir
        self.running: dict[str, RunningTrial] = {}
        self.stopping: str | None = None
        self.end_state = "DONE"
        self.exhausted = False
        self.best: tuple[float, str] | None = None
        self.submit_failures = 0
        self.failed = 0  # trials that ended FAILED or NO_REWARD (fail fast while none has succeeded)
        self._signals = 0
        self._signal_name: str | None = None
        self._tracker_failed = False
        s = cfg.searcher
        self.reward_attribute = s.reward_attribute
        self.reward_pattern = re.compile(s.reward_pattern) if s.reward_pattern else None
        self.maximize = s.optimize_mode == "maximize"
        self.searcher = cfg.searcher_component.cls(cfg.space, cfg.searcher_component.options,
                                                   optimize_mode=s.optimize_mode, seed=s.seed)
        self.assessor = (cfg.assessor.cls(cfg.assessor.options, optimize_mode=s.optimize_mode)
                         if cfg.assessor else None)
        self.executor = cfg.executor.cls(cfg.executor.options, task_name=cfg.name, task_dir=cfg.task_dir)
        self.tracker = cfg.tracker.cls(cfg.tracker.options, task_dir=cfg.task_dir)

    # -- small helpers ---------------------------------------------------------------------
    def _emit(self, kind: str, trial_id: str | None, message: str, store: bool = True) -> None:
        if store:
            self.store.event(kind, message, trial_id)
        self.on_event(kind, trial_id, message)

    def _track(self, method: str, *args: Any) -> None:
        try:
            getattr(self.tracker, method)(*args)
        except Exception as exc:  # tracking never stops the search
            if not self._tracker_failed:
                self._emit("tracking_error", None, f"{type(self.tracker).__name__}.{method}: {type(exc).__name__}: {exc}")
            self._tracker_failed = True

    def elapsed(self) -> float:
        return self._base_elapsed + (time.monotonic() - self._t0)

    def _open_session(self) -> None:
        """Start this run's entry in ``meta.sessions`` ([start, last seen] wall times per
        scheduler run). A run that died (SIGKILL) is closed at its last heartbeat or last
        event, whichever is later, so a crash loses at most one tick of active time."""
        sessions = self.store.meta("sessions")
        if sessions is None:  # a store from before sessions were recorded
            before = float(self.store.meta("elapsed_s", 0.0))
            sessions = [[0.0, before]] if before > 0 else []
        if sessions and sessions[-1][0] > 0:
            last_event = self.store.conn.execute("SELECT MAX(time) AS t FROM events WHERE time >= ?",
                                                 (sessions[-1][0],)).fetchone()["t"]
            sessions[-1][1] = max(sessions[-1][1], last_event or 0.0)
        self._sessions = sessions
        self._base_elapsed = sum(max(0.0, end - start) for start, end in sessions)
        self._t0 = time.monotonic()
        self._session_start = time.time()
        self._heartbeat()

    def _heartbeat(self, **meta: Any) -> None:
        """Record this run's active time so far (and any other ``meta``)."""
        start = self._session_start
        self.store.set_meta(sessions=[*self._sessions, [start, start + time.monotonic() - self._t0]],
                            elapsed_s=self.elapsed(), **meta)

    def _running_trial(self, record: StoredTrial) -> RunningTrial:
        return RunningTrial(record, self.reward_pattern, self.reward_attribute)

    def better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b

    def reward_of(self, history: list[float]) -> float | None:
        if not history:
            return None
        if self.cfg.searcher.reward_at == "best":
            return max(history) if self.maximize else min(history)
        return history[-1]

    def _launch(self, rec: TrialRecord) -> TrialLaunch:
        env = {ENV_TASK: self.cfg.name, ENV_TRIAL_ID: rec.trial_id, ENV_TRIAL_DIR: str(rec.trial_dir),
               "GML_HPO_TASK_DIR": str(self.task_dir), "PYTHONUNBUFFERED": "1"}
        if getattr(self.executor, "shares_host", False) and "OMP_NUM_THREADS" not in os.environ:
            # parallel trials on one machine: split the cores instead of oversubscribing them
            per_trial = (os.cpu_count() or 1) // self.cfg.scheduler.parallel_size
            env["OMP_NUM_THREADS"] = str(max(1, per_trial))
        path = os.environ.get("PATH", "")
        if _BIN_DIR not in path.split(os.pathsep):  # trials find this environment's gml / python
            env["PATH"] = os.pathsep.join([_BIN_DIR, path]) if path else _BIN_DIR
        return TrialLaunch(trial_id=rec.trial_id, command=rec.command, trial_dir=rec.trial_dir, env=env,
                           time_limit_s=self.cfg.time_limits_per_job_s, cwd=self.cfg.cwd,
                           capture_log=self.cfg.generate_log, grace_s=self.cfg.grace_period_s)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.store.conn.execute("SELECT state, COUNT(*) AS n FROM trials GROUP BY state"):
            out[row["state"]] = row["n"]
        return out

    # -- main entry ------------------------------------------------------------------------
    def run(self) -> str:
        """Run until the task ends; return its end state (DONE, STOPPED, FAILED or INTERRUPTED)."""
        lock = TaskLock(self.task_dir)
        if not lock.acquire():
            raise GmlUserError(f"task '{self.cfg.name}' is already being run by another scheduler "
                               f"(pid {TaskLock.held(self.task_dir)})")
        self._open_session()
        old_handlers = self._install_signals()
        try:
            self.store.set_meta(state="RUNNING", scheduler_pid=os.getpid(), end_reason="")
            self._emit("resume" if self.resumed else "start", None,
                       f"{'resumed' if self.resumed else 'started'} with {self.executor.describe()}")
            info = TaskInfo(name=self.cfg.name, task_dir=self.task_dir, config=self.cfg.raw,
                            reward_attribute=self.reward_attribute, optimize_mode=self.cfg.searcher.optimize_mode,
                            resumed=self.resumed)
            self._track("start_task", info)
            where = self._tracker_location()
            if where:
                self.store.set_meta(tracking=where)
            self._restore()
            last_save = time.monotonic()
            while True:
                self._tick()
                self.on_tick()
                if not self.running and (self.stopping or not self._can_launch()):
                    break
                if time.monotonic() - last_save > HEARTBEAT_S:
                    self._heartbeat()
                    last_save = time.monotonic()
                self.executor.wait(self.cfg.scheduler.poll_interval)
            reason = self.stopping or ("search space exhausted" if self.exhausted else "max_tries reached")
            self._heartbeat(state=self.end_state, end_reason=reason)
            self._emit("end", None, f"{self.end_state}: {reason}")
            (self.task_dir / STOP_FILE).unlink(missing_ok=True)
            return self.end_state
        except KeyboardInterrupt:
            self._heartbeat(end_reason="scheduler interrupted; trials keep running")
            self._emit("interrupted", None, "scheduler interrupted; running trials are re-attached on resume")
            return "INTERRUPTED"
        finally:
            self._restore_signals(old_handlers)
            try:
                self.executor.close()
            finally:
                self._track("close")
                lock.release()

    def _tracker_location(self) -> str | None:
        try:
            return self.tracker.location()
        except Exception:
            return None

    # -- signals ---------------------------------------------------------------------------
    def _install_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):  # only flags: the store may be inside a transaction
            self._signals += 1
            if self._signals > 1:
                raise KeyboardInterrupt
            self._signal_name = signal.Signals(signum).name

        return {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(old) -> None:
        for s, h in (old or {}).items():
            signal.signal(s, h)

    # -- restore after a restart -----------------------------------------------------------
    def _restore(self) -> None:
        finished, pending = [], []
        for t in self.store.trials():
            values = [v for _, v in self.store.history(t.trial_id, self.reward_attribute)]
            if t.state.finished:
                self.failed += t.state in (TrialState.FAILED, TrialState.NO_REWARD)
                finished.append((t.params, None if t.state in (TrialState.FAILED, TrialState.NO_REWARD)
                                 else t.reward))
                if self.assessor:
                    self.assessor.trial_end(t.trial_id, values, t.state == TrialState.SUCCEEDED)
                if t.state == TrialState.SUCCEEDED and t.reward is not None:
                    if self.best is None or self.better(t.reward, self.best[0]):
                        self.best = (t.reward, t.trial_id)
            else:
                pending.append(t)
        self.searcher.restore(finished, [t.params for t in pending])
        resubmit: list[StoredTrial] = []
        for t in pending:
            if t.state == TrialState.RUNNING and t.handle:
                if self.executor.reattach(t.handle):
                    self._adopt(t, "reattached", f"re-attached to {t.handle}")
                    continue
                status = self.executor.poll([t.handle]).get(t.handle, JobStatus(JobState.LOST))
                if status.state != JobState.LOST:
                    self._adopt(t, "reattached", f"ended while the scheduler was down ({status.state.value})")
                    continue
                if t.stop_intent:  # it was being stopped: record the intended end
                    rt = self._adopt(t, "reattached", "was being stopped")
                    self._finalize(rt, JobStatus(JobState.CANCELLED, None, "stopped while the scheduler was down"))
                    continue
                self.store.reset_trial(t.trial_id, t.attempt + 1, f"interrupted ({status.reason}); re-run")
            elif t.state == TrialState.PENDING:
                handle = self.executor.recover(self._launch(t))
                if handle:
                    self.store.update_trial(t.trial_id, state=TrialState.RUNNING, handle=handle,
                                            started_at=time.time(), event=("recovered", handle))
                    self._adopt(self.store.trial(t.trial_id), "reattached", f"recovered {handle}")
                    continue
            resubmit.append(self.store.trial(t.trial_id))
        if resubmit:
            self._submit(resubmit)

    def _adopt(self, t: StoredTrial, kind: str, message: str) -> RunningTrial:
        rt = self._running_trial(t)
        rt.history = [v for _, v in self.store.history(t.trial_id, self.reward_attribute)]
        self.running[t.trial_id] = rt
        self._emit(kind, t.trial_id, message)
        return rt

    # -- one tick --------------------------------------------------------------------------
    def _tick(self) -> None:
        for rt in list(self.running.values()):
            self._ingest(rt)
        self._poll()
        self._enforce_timeouts()
        self._check_task_stop()
        self._fill()

    def _can_launch(self) -> bool:
        if self.stopping or self.exhausted:
            return False
        return self.cfg.max_tries is None or self.store.count_trials() < self.cfg.max_tries

    def _fill(self) -> None:
        batch: list[StoredTrial] = []
        while len(self.running) + len(batch) < self.cfg.scheduler.parallel_size and self._can_launch():
            running = [rt.record.params for rt in self.running.values()] + [r.params for r in batch]
            params = self.searcher.suggest(running)
            if params is None:
                if self.searcher.exhausted or not running:
                    self.exhausted = True
                break
            seq = self.store.next_seq()
            trial_id = f"t{seq:04d}"
            trial_dir = self.task_dir / "trials" / trial_id
            rec = TrialRecord(trial_id=trial_id, seq=seq, params=params, trial_dir=trial_dir,
                              command=self.cfg.render(params, trial_id, trial_dir), created_at=time.time())
            self.store.add_trial(rec, event=rec.command)
            batch.append(self.store.trial(trial_id))
        if batch:
            self._submit(batch)

    def _submit(self, records: list[StoredTrial]) -> None:
        """Hand PENDING trials to the executor (``submit_many``: one array job where supported)."""
        launches = []
        for rec in records:
            try:
                rec.trial_dir.mkdir(parents=True)
            except FileExistsError:  # a re-run, or a resubmission after a crash: start clean
                for name in ("metrics.jsonl", "exit_code"):
                    (rec.trial_dir / name).unlink(missing_ok=True)
            launches.append(self._launch(rec))
        try:
            handles = self.executor.submit_many(launches)
        except Exception as exc:
            self.submit_failures += 1
            msg = f"submit failed: {type(exc).__name__}: {exc}"
            for rec in records:
                self.store.update_trial(rec.trial_id, state=TrialState.FAILED, reason=msg, finished_at=time.time(),
                                        event=("failed", msg))
                self.searcher.observe(rec.params, None)
                self.on_event("failed", rec.trial_id, msg)
            if self.submit_failures >= MAX_SUBMIT_FAILURES:
                raise GmlUserError(f"{MAX_SUBMIT_FAILURES} submissions in a row failed; last: {msg}")
            return
        self.submit_failures = 0
        now = time.time()
        for rec, handle in zip(records, handles):
            self.store.update_trial(rec.trial_id, state=TrialState.RUNNING, handle=handle, started_at=now,
                                    event=("started", f"attempt {rec.attempt}: {handle}"))
            rec = self.store.trial(rec.trial_id)
            rt = self._running_trial(rec)
            rt.run_since = None
            self.running[rec.trial_id] = rt
            self.on_event("started", rec.trial_id, rec.command)
            self._track("trial_started", rec)

    def _ingest(self, rt: RunningTrial) -> None:
        records = rt.reader.read()
        if not records:
            return
        rec = rt.record
        for _, values in records:
            rec.last_metrics.update(values)
        rec.last_step = rt.reader.last_step
        self.store.add_metrics(rec.trial_id, rec.attempt, records, rt.reader.offsets, rec.last_step, rec.last_metrics)
        for step, values in records:
            self._track("trial_metrics", rec.trial_id, step, values)
        if any(self.reward_attribute in v for _, v in records):
            rt.history = [v for _, v in self.store.history(rec.trial_id, self.reward_attribute)]
            if self.assessor is not None and not rt.record.stop_intent:
                if self.assessor.assess(rec.trial_id, list(rt.history)):
                    name = type(self.assessor).__name__
                    self._request_stop(rt, TrialState.EARLY_STOPPED,
                                       f"early stopped by {name} at step {len(rt.history)} "
                                       f"({self.reward_attribute}={rt.history[-1]:.6g})")

    def _poll(self) -> None:
        if not self.running:
            return
        by_handle = {rt.record.handle: rt for rt in self.running.values()}
        try:
            statuses = self.executor.poll(list(by_handle))
        except Exception as exc:
            self._emit("poll_error", None, f"{type(exc).__name__}: {exc}")
            return
        now = time.time()
        for handle, status in statuses.items():
            rt = by_handle.get(handle)
            if rt is None:
                continue
            if status.state == JobState.RUNNING and rt.run_since is None:
                rt.run_since = now
            if not status.state.active:
                self._ingest(rt)
                self._finalize(rt, status)

    def _finalize(self, rt: RunningTrial, status: JobStatus) -> None:
        rec = rt.record
        intent = rec.stop_intent
        code = status.exit_code
        if intent:
            state, reason = TrialState(intent), rec.reason or status.reason
        elif status.state == JobState.FINISHED:
            state = TrialState.SUCCEEDED if code == 0 else TrialState.FAILED
            reason = "" if code == 0 else f"exit code {code}"
            if state == TrialState.SUCCEEDED and self.reward_of(rt.history) is None:
                state, reason = TrialState.NO_REWARD, self._no_reward_reason(rt)
        elif status.state == JobState.LOST:
            state, reason = TrialState.FAILED, f"lost: {status.reason}"
        else:
            state = {JobState.FAILED: TrialState.FAILED, JobState.CANCELLED: TrialState.CANCELLED,
                     JobState.TIMEOUT: TrialState.TIMEOUT}.get(status.state, TrialState.FAILED)
            reason = f"{status.state.value.lower()}: {status.reason}".rstrip(": ")
        if state in (TrialState.FAILED, TrialState.NO_REWARD):
            self.failed += 1
            log_tail = tail(rec.log_path, 20)
            if log_tail:
                reason = f"{reason}\n{log_tail}"
        reward = None if state == TrialState.FAILED else self.reward_of(rt.history)
        now = time.time()
        self.store.update_trial(rec.trial_id, state=state, exit_code=code, reward=reward, reason=reason,
                                finished_at=now, event=("finished", f"{state.value} reward={reward}"))
        del self.running[rec.trial_id]
        rt.reader.close()
        self.searcher.observe(rec.params, reward)
        if self.assessor is not None:
            self.assessor.trial_end(rec.trial_id, list(rt.history), state == TrialState.SUCCEEDED)
        final = self.store.trial(rec.trial_id)
        self._track("trial_finished", final)
        detail = (f" {self.reward_attribute}={reward:.6g}" if reward is not None
                  else f": {reason.splitlines()[0]}" if state == TrialState.NO_REWARD else "")
        self.on_event("finished", rec.trial_id, f"{state.value}{detail}")
        if state == TrialState.SUCCEEDED and reward is not None:
            if self.best is None or self.better(reward, self.best[0]):
                self.best = (reward, rec.trial_id)
            target = self.cfg.max_reward
            if target is not None and not self.stopping and (reward >= target if self.maximize else reward <= target):
                self._request_task_stop(f"max_reward {target} reached by {rec.trial_id}", "DONE")
        limit = self.cfg.max_failed_before_success
        if self.best is None and limit is not None and self.failed >= limit:
            self._request_task_stop(f"the first {self.failed} finished trials all failed or reported no "
                                    f"'{self.reward_attribute}' (stop_criterion.max_failed_before_success: {limit}); "
                                    f"their reasons: search-ctl show -t {self.cfg.name}", "FAILED")

    def _no_reward_reason(self, rt: RunningTrial) -> str:
        attr, bad = self.reward_attribute, rt.reader.rejected
        if attr in bad:
            return f"exit code 0, but '{attr}' was reported as {bad[attr]}, not a number"
        how = f"no log line matched reward_pattern {self.reward_pattern.pattern!r}" if self.reward_pattern else (
            f"'{attr}' was never reported")
        seen = sorted(rt.record.last_metrics)
        extra = f" (reported: {', '.join(seen)})" if seen else ""
        if "(report line)" in bad:
            extra += f"; bad report line: {bad['(report line)']}"
        return f"exit code 0, but {how}{extra}"

    def _request_stop(self, rt: RunningTrial, intent: TrialState, reason: str, announce: str | None = None) -> None:
        """Ask ``rt`` to stop; ``reason`` is stored with the trial, ``announce`` (default: the reason) is the event."""
        rec = rt.record
        now = time.time()
        rec.stop_intent, rec.stop_requested_at, rec.reason = intent.value, now, reason
        self.store.update_trial(rec.trial_id, stop_intent=intent.value, stop_requested_at=now, reason=reason,
                                event=("stopping", reason))
        self.on_event("stopping", rec.trial_id, announce or reason)
        try:
            self.executor.cancel(rec.handle, graceful=True)
        except Exception as exc:
            self._emit("cancel_error", rec.trial_id, f"{type(exc).__name__}: {exc}")

    def _enforce_timeouts(self) -> None:
        now = time.time()
        limit = self.cfg.time_limits_per_job_s
        for rt in list(self.running.values()):
            rec = rt.record
            if rec.stop_intent:
                if not rec.hard_killed and now - (rec.stop_requested_at or now) > self.cfg.grace_period_s:
                    rec.hard_killed = True
                    self.store.update_trial(rec.trial_id, hard_killed=1, event=("kill", "grace period over"))
                    try:
                        self.executor.cancel(rec.handle, graceful=False)
                    except Exception as exc:
                        self._emit("cancel_error", rec.trial_id, f"{type(exc).__name__}: {exc}")
            elif limit is not None and rt.run_since is not None and now - rt.run_since > limit:
                self._request_stop(rt, TrialState.TIMEOUT, f"over time_limits_per_job ({limit:g}s)")

    def _request_task_stop(self, reason: str, end_state: str) -> None:
        if self.stopping:
            return
        self.stopping, self.end_state = reason, end_state
        self.on_event("stopping_task", None, reason)
        for rt in list(self.running.values()):
            if not rt.record.stop_intent:
                # the task's stopping_task event already gave the reason: one short line per trial
                self._request_stop(rt, TrialState.CANCELLED, reason, announce="cancelled, the task is stopping")

    def _check_task_stop(self) -> None:
        if self.stopping:
            return
        if self._signal_name:
            self._request_task_stop(f"interrupted by {self._signal_name}", "STOPPED")
        elif (self.task_dir / STOP_FILE).exists():
            self._request_task_stop("stopped by search-ctl stop", "STOPPED")
        elif self.cfg.time_limits_s is not None and self.elapsed() > self.cfg.time_limits_s:
            self._request_task_stop(f"time_limits ({self.cfg.time_limits_s:g}s) reached", "DONE")
