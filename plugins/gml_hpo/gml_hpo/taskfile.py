"""Task files (YAML or TOML): strict structuring, every problem reported at once.

Top-level sections: ``task``, ``searcher``, ``scheduler``, ``tracking`` and the flag
``generate_log``. Components (searcher, executor = ``scheduler.type``, assessor,
tracker) are looked up in the plugin registries; their own options are structured
into the class's ``options_class`` with key paths.
"""

from __future__ import annotations

import os
import random
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, Optional

import attrs

from gml_core.api import ConfigError, GmlUserError, did_you_mean, one_of

from .command import CommandTemplate, TemplateQuoteError, render_command
from .space import BUILTIN_PLACEHOLDERS, SearchSpace, parse_dim, template_fields

DEFAULT_WORK_DIR = "work_dirs/hpo"
TOP_LEVEL = ("task", "searcher", "scheduler", "tracking", "generate_log")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DURATION = re.compile(r"^(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m(?:in)?)?"
                       r"(?:(?P<s>\d+(?:\.\d+)?)s)?$")


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"2h"``, ``"1h30m"``, ``"1d"`` or ``"HH:MM:SS"``."""
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError(f"duration must be positive, got {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+:\d{1,2}:\d{1,2}", text):
            h, m, s = (int(p) for p in text.split(":"))
            secs = h * 3600 + m * 60 + s
        else:
            m = _DURATION.match(text)
            if not text or not m or not any(m.groupdict().values()):
                raise ValueError(f"bad duration {value!r}: use e.g. 45s, 10m, 2h, 1h30m, 1d, 01:30:00 or seconds")
            mult = {"d": 86400, "h": 3600, "m": 60, "s": 1}
            secs = sum(float(v) * mult[k] for k, v in m.groupdict().items() if v)
        if secs <= 0:
            raise ValueError(f"duration must be positive, got {value!r}")
        return float(secs)
    raise ValueError(f"bad duration {value!r}: use e.g. 45s, 10m, 2h or a number of seconds")


@attrs.frozen(kw_only=True)
class TaskSection:
    name: str
    template: str
    search_args: dict[str, Any]
    work_dir: Optional[str] = None  # default: $GML_HPO_WORK_DIR or work_dirs/hpo
    cwd: Optional[str] = None


@attrs.frozen(kw_only=True)
class SearcherSection:
    type: str = "GridSearcher"
    reward_attribute: str = "acc"
    optimize_mode: Literal["maximize", "minimize"] = "maximize"
    reward_at: Literal["last", "best"] = "last"
    seed: Optional[int] = None
    reward_pattern: Optional[str] = None  # regex with one group, read from each line of the trial's log


@attrs.frozen(kw_only=True)
class StopCriterion:
    max_tries: Optional[int] = None
    time_limits: Any = None
    max_reward: Optional[float] = None
    time_limits_per_job: Any = None
    # a task whose first N finished trials all failed (or reported no reward) is misconfigured: stop it
    # instead of spending max_tries on the same error; null: never
    max_failed_before_success: Optional[int] = 5


@attrs.frozen(kw_only=True)
class SchedulerSection:
    type: str = "LocalScheduler"
    parallel_size: int = 1
    stop_criterion: Optional[dict[str, Any]] = None   # structured into StopCriterion
    assessor: Optional[dict[str, Any]] = None         # a registered assessor + its options
    grace_period: Any = "10s"
    poll_interval: float = 0.5


@attrs.frozen(kw_only=True)
class Component:
    """A registered class picked by ``type`` plus its structured options."""

    type: str
    cls: Any
    options: Any


@attrs.frozen(kw_only=True)
class TaskConfig:
    """A validated task file."""

    name: str
    template: str
    space: SearchSpace
    cwd: Path
    task_dir: Path
    searcher: SearcherSection
    searcher_component: Component
    scheduler: SchedulerSection
    executor: Component
    assessor: Optional[Component]
    tracker: Component
    max_tries: Optional[int]
    time_limits_s: Optional[float]
    time_limits_per_job_s: Optional[float]
    max_reward: Optional[float]
    max_failed_before_success: Optional[int]
    grace_period_s: float
    generate_log: bool
    raw: dict[str, Any]
    source: str

    def render(self, params: dict[str, Any], trial_id: str, trial_dir: Path) -> str:
        """The trial's command; every value is shell-quoted (see ``gml_hpo.command``)."""
        return render_command(self.template, {**self.space.flatten(params), "trial_id": trial_id,
                                              "trial_dir": str(trial_dir)})


# -- reading -----------------------------------------------------------------------------
def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that also reads ``1e-4`` as a float (YAML 1.2 style)."""

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
        list("-+0123456789."),
    )
    return Loader


def read_task_file(path: str | Path) -> dict[str, Any]:
    """Plain data from a YAML (.yaml/.yml) or TOML (.toml) task file."""
    path = Path(path)
    if not path.is_file():
        raise GmlUserError(f"task file not found: {path}")
    if path.suffix == ".toml":
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise GmlUserError(f"{path}: invalid TOML: {exc}") from None
    elif path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.load(path.read_text(), Loader=_yaml_loader())  # noqa: S506 (SafeLoader subclass)
        except yaml.YAMLError as exc:
            raise GmlUserError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    else:
        raise GmlUserError(f"{path}: unsupported task file format '{path.suffix}'; accepted: .yaml, .yml, .toml")
    if not isinstance(data, dict):
        raise GmlUserError(f"{path}: expected a mapping with a 'task' section at the top level")
    return data


# -- validation --------------------------------------------------------------------------
def _structure(data: Any, cls: type, path: str, problems: list[tuple[str, str]]) -> Any:
    """Strict structuring (gml-core's converter); problems are collected, not raised."""
    from gml_core.api import structure
    try:
        return structure(data, cls, path=path)
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def _field_names(cls: type | None) -> list[str]:
    return [a.name for a in attrs.fields(cls)] if cls is not None and attrs.has(cls) else []


def _component(kind: str, raw: Any, path: str, common: list[str], default_type: str | None,
               problems: list[tuple[str, str]], nested_key: str | None = None) -> Component | None:
    """Look up ``raw['type']`` in registry ``kind`` and structure its options.

    ``common`` keys belong to the caller's section. Options are the remaining keys, or,
    when the class has ``options_key``, the table ``raw[options_key]``.
    """
    from gml_core.api import registry
    raw = dict(raw or {})
    name = raw.get("type", default_type)
    reg = registry(kind)
    if name is None:
        problems.append((f"{path}.type", f"required key is missing; installed: {one_of(reg.names())}"))
        return None
    if not isinstance(name, str):
        problems.append((f"{path}.type", f"expected a string, got {name!r}"))
        return None
    if name not in reg:
        problems.append((f"{path}.type", reg.unknown_message(name)))
        return None
    try:
        cls = reg.get(name)
    except Exception as exc:  # a broken plugin module
        problems.append((f"{path}.type", f"{kind} '{name}' cannot be loaded: {type(exc).__name__}: {exc}"))
        return None
    options_cls = getattr(cls, "options_class", None)
    opt_key = getattr(cls, "options_key", None) if nested_key is None else nested_key
    if opt_key:
        accepted = [*common, opt_key]
        opt_raw = raw.get(opt_key, {})
        opt_path = f"{path}.{opt_key}"
    else:
        accepted = [*common, *_field_names(options_cls)]
        opt_raw = {k: v for k, v in raw.items() if k not in common and k != "type"}
        opt_path = path
    unknown = sorted(set(raw) - set(accepted) - {"type"})
    for key in unknown:
        problems.append((f"{path}.{key}", f"unknown key{did_you_mean(key, accepted)} for {name}; "
                                          f"accepted keys: {one_of(['type', *accepted])}"))
    if unknown:
        return None
    if options_cls is None:
        return Component(type=name, cls=cls, options=None)
    if not isinstance(opt_raw, dict):
        problems.append((opt_path, f"expected a table, got {opt_raw!r}"))
        return None
    options = _structure(opt_raw, options_cls, opt_path, problems)
    return Component(type=name, cls=cls, options=options) if options is not None else None


def _arg_placeholders(name: str, spec: Any) -> list[str]:
    """Placeholders an arg fills, read from its raw spec (also when the spec is invalid)."""
    if isinstance(spec, dict) and spec.get("type") == "Nested":
        data = spec.get("data")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return [str(k) for k in data[0]]
        return []
    return [name]


def _check_template(template: str, search_args: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    try:
        fields = template_fields(template)
    except ValueError as exc:
        problems.append(("task.template", f"invalid template ({exc}); write {{{{ and }}}} for literal braces"))
        return
    try:
        CommandTemplate.parse(template)
    except TemplateQuoteError as exc:
        problems.append(("task.template", str(exc)))
    provided: dict[str, str] = {}
    for arg, spec in search_args.items():
        for ph in _arg_placeholders(str(arg), spec):
            if ph in BUILTIN_PLACEHOLDERS:
                problems.append((f"task.search_args.{arg}", f"'{ph}' is reserved (always filled by the engine)"))
            elif ph in provided:
                problems.append((f"task.search_args.{arg}", f"placeholder '{ph}' is also set by '{provided[ph]}'"))
            provided.setdefault(ph, str(arg))
    known = [*provided, *BUILTIN_PLACEHOLDERS]
    for field in dict.fromkeys(fields):
        if not field.isidentifier():
            problems.append(("task.template", f"placeholder '{{{field}}}' must be a plain name"))
        elif field not in known:
            problems.append(("task.template", f"placeholder '{{{field}}}' is filled by no search arg"
                                              f"{did_you_mean(field, known)}; available: {one_of(known)}"))
    for ph, arg in provided.items():
        if ph not in fields:
            where = f"task.search_args.{arg}" + (f" (key '{ph}')" if ph != arg else "")
            problems.append((where, f"'{ph}' is not used by task.template (add {{{ph}}} or remove it)"))


def _check_reward_pattern(pattern: str, generate_log: Any, problems: list[tuple[str, str]]) -> None:
    try:
        groups = re.compile(pattern).groups
    except re.error as exc:
        problems.append(("searcher.reward_pattern", f"invalid regular expression: {exc}"))
        return
    if groups != 1:
        problems.append(("searcher.reward_pattern", f"needs exactly one group (the number), e.g. "
                                                    f"'acc: ([0-9.eE+-]+)'; it has {groups}"))
    if generate_log is False:
        problems.append(("searcher.reward_pattern", "needs the trial's full log: remove generate_log: false"))


def load_task(source: str | Path | dict[str, Any], *, cwd: Path | None = None,
              source_name: str | None = None) -> TaskConfig:
    """Validate a task file (path or plain data) into a :class:`TaskConfig`.

    Raises ``ConfigError`` listing every problem with its key path.
    """
    if isinstance(source, dict):
        raw, name_of_source = source, source_name or "<task>"
    else:
        raw, name_of_source = read_task_file(source), str(source)
    problems: list[tuple[str, str]] = []
    for key in raw:
        if key not in TOP_LEVEL:
            hint = "; experiment tracking is set with 'tracking'" if key in ("pavi", "use_spe") else ""
            problems.append((str(key), f"unknown section{did_you_mean(str(key), TOP_LEVEL)}{hint}; "
                                       f"accepted: {one_of(TOP_LEVEL)}"))
    if "task" not in raw:
        problems.append(("task", "required section is missing"))
        raise ConfigError(problems, name_of_source)
    task = _structure(raw["task"], TaskSection, "task", problems)
    base = Path(cwd or Path.cwd()).resolve()
    if task is not None and task.cwd:
        base = (base / task.cwd).resolve()
        if not base.is_dir():
            problems.append(("task.cwd", f"not a directory: {base}"))
    if task is not None and not _NAME.match(task.name):
        problems.append(("task.name", f"{task.name!r}: use letters, digits, '_', '-', '.' (it names a folder)"))

    space = None
    if task is not None:
        dims = []
        if not task.search_args:
            problems.append(("task.search_args", "at least one search arg is needed"))
        for arg, spec in task.search_args.items():
            dim = parse_dim(str(arg), spec, f"task.search_args.{arg}", base, problems)
            if dim is not None:
                dims.append(dim)
        _check_template(task.template, task.search_args, problems)
        if len(dims) == len(task.search_args) and dims:
            space = SearchSpace(dims)

    raw_searcher = raw.get("searcher") or {}
    searcher = None
    s_common = _field_names(SearcherSection)
    if not isinstance(raw_searcher, dict):
        problems.append(("searcher", f"expected a table, got {raw_searcher!r}"))
    else:
        searcher = _structure({k: v for k, v in raw_searcher.items() if k in s_common}, SearcherSection,
                              "searcher", problems)
    if searcher is not None and searcher.reward_pattern is not None:
        _check_reward_pattern(searcher.reward_pattern, raw.get("generate_log", True), problems)
    searcher_comp = (_component("searcher", raw_searcher, "searcher", s_common, "GridSearcher", problems)
                     if isinstance(raw_searcher, dict) else None)
    if searcher_comp is not None and space is not None and hasattr(searcher_comp.cls, "check_space"):
        problems.extend(searcher_comp.cls.check_space(space, searcher_comp.options))

    raw_sched = raw.get("scheduler") or {}
    sched = executor = assessor = None
    stop = StopCriterion()
    times: dict[str, Optional[float]] = {"time_limits": None, "time_limits_per_job": None, "grace_period": 10.0}
    if not isinstance(raw_sched, dict):
        problems.append(("scheduler", f"expected a table, got {raw_sched!r}"))
    else:
        common = _field_names(SchedulerSection)
        executor = _component("executor", raw_sched, "scheduler", common, "LocalScheduler", problems)
        plain = {k: v for k, v in raw_sched.items() if k in common and k not in ("stop_criterion", "assessor")}
        sched = _structure(plain, SchedulerSection, "scheduler", problems)
        stop = _structure(raw_sched.get("stop_criterion") or {}, StopCriterion, "scheduler.stop_criterion",
                          problems) or StopCriterion()
        if sched is not None:
            if sched.parallel_size < 1:
                problems.append(("scheduler.parallel_size", f"must be >= 1, got {sched.parallel_size}"))
            if sched.poll_interval <= 0:
                problems.append(("scheduler.poll_interval", f"must be > 0, got {sched.poll_interval}"))
        if stop.max_tries is not None and stop.max_tries < 1:
            problems.append(("scheduler.stop_criterion.max_tries", f"must be >= 1, got {stop.max_tries}"))
        if stop.max_failed_before_success is not None and stop.max_failed_before_success < 1:
            problems.append(("scheduler.stop_criterion.max_failed_before_success",
                             f"must be >= 1 or null (never), got {stop.max_failed_before_success}"))
        raw_stop = raw_sched.get("stop_criterion") if isinstance(raw_sched.get("stop_criterion"), dict) else {}
        for key, value, path in (("time_limits", raw_stop.get("time_limits"), "scheduler.stop_criterion.time_limits"),
                                 ("time_limits_per_job", raw_stop.get("time_limits_per_job"),
                                  "scheduler.stop_criterion.time_limits_per_job"),
                                 ("grace_period", raw_sched.get("grace_period"), "scheduler.grace_period")):
            if value is None:
                continue
            try:
                times[key] = parse_duration(value)
            except ValueError as exc:
                problems.append((path, str(exc)))
        if raw_sched.get("assessor") is not None:
            if not isinstance(raw_sched["assessor"], dict):
                problems.append(("scheduler.assessor", f"expected a table with a 'type' key, got "
                                                       f"{raw_sched['assessor']!r}"))
            else:
                assessor = _component("assessor", raw_sched["assessor"], "scheduler.assessor", [], None, problems)
            mode = getattr(assessor.options, "optimize_mode", None) if assessor else None
            if mode is not None and searcher is not None and mode != searcher.optimize_mode:
                problems.append(("scheduler.assessor.optimize_mode",
                                 f"'{mode}' contradicts searcher.optimize_mode '{searcher.optimize_mode}'"))

    raw_tracking = raw.get("tracking") or {}
    tracker = None
    if not isinstance(raw_tracking, dict):
        problems.append(("tracking", f"expected a table with a 'type' key, got {raw_tracking!r}"))
    else:
        tracker = _component("tracker", raw_tracking, "tracking", [], "store", problems)
    generate_log = raw.get("generate_log", True)
    if not isinstance(generate_log, bool):
        problems.append(("generate_log", f"expected true or false, got {generate_log!r}"))

    if problems:
        raise ConfigError(problems, name_of_source)
    if space is not None:
        sample = space.sample(random.Random(0))
        try:
            render_command(task.template, {**space.flatten(sample), "trial_id": "t0001", "trial_dir": "/tmp"})
        except (ValueError, KeyError, IndexError) as exc:
            raise ConfigError([("task.template", f"cannot be rendered: {exc}")], name_of_source) from None
    return TaskConfig(
        name=task.name, template=task.template, space=space, cwd=base,
        task_dir=(base / (task.work_dir or os.environ.get("GML_HPO_WORK_DIR") or DEFAULT_WORK_DIR)
                  / task.name).resolve(), searcher=searcher,
        searcher_component=searcher_comp, scheduler=sched, executor=executor, assessor=assessor,
        tracker=tracker, max_tries=stop.max_tries, time_limits_s=times["time_limits"],
        time_limits_per_job_s=times["time_limits_per_job"], max_reward=stop.max_reward,
        max_failed_before_success=stop.max_failed_before_success,
        grace_period_s=times["grace_period"] or 10.0, generate_log=generate_log, raw=raw, source=name_of_source,
    )


def task_dir_for(name: str, work_dir: str | Path | None = None, cwd: Path | None = None) -> Path:
    """Where a task named ``name`` lives (``<work_dir>/<name>``)."""
    base = Path(cwd or Path.cwd())
    return (base / (work_dir or DEFAULT_WORK_DIR) / name).resolve()


__all__ = ["TaskConfig", "load_task", "parse_duration", "read_task_file", "task_dir_for"]
