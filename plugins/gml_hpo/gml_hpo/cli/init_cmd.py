"""``search-init``: write a commented task file from flags or a few questions, validated first."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click

from gml_core.api import ConfigError, GmlUserError

from .common import run_standalone

SEARCHERS = ("GridSearcher", "BatchSearcher", "RandomSearcher", "SkoptSearcher", "EvolutionSearcher", "BOSearcher",
             "TPESearcher")
ASSESSORS = ("none", "MedianStopAssessor", "CurveFittingAssessor", "AshaAssessor")
DEFAULT_TEMPLATE = ("gml run configs/baseline/digits_cnn.toml --cfg-options train.lr={lr} "
                    "train.batch_size={bs} --work-dir {trial_dir}")
DEFAULT_ARGS = ("lr=Real:1e-3:0.5:log", "bs=Categorical:32,64,128")


def _scalar(text: str) -> Any:
    import yaml

    from ..taskfile import _yaml_loader

    value = yaml.load(text, Loader=_yaml_loader())  # noqa: S506 (SafeLoader subclass)
    return text if isinstance(value, (dict, list)) or value is None else value


def parse_arg(text: str) -> tuple[str, dict[str, Any]]:
    """``lr=Real:1e-4:1:log``, ``depth=Int:2:6[:step]``, ``bs=Categorical:32,64``, ``cfg=File:glob``."""
    name, sep, spec = text.partition("=")
    kind, _, rest = spec.partition(":")
    if not sep or not name or not kind:
        raise GmlUserError(f"--arg {text!r}: expected NAME=TYPE:..., e.g. lr=Real:1e-4:1:log, "
                           f"depth=Int:2:6:1, bs=Categorical:32,64,128, cfg=File:configs/*.toml")
    parts = rest.split(":") if rest else []
    if kind in ("Real", "Int"):
        if len(parts) < 2:
            raise GmlUserError(f"--arg {text!r}: {kind} needs lower and upper, e.g. {name}={kind}:1:10")
        out: dict[str, Any] = {"type": kind, "lower": _scalar(parts[0]), "upper": _scalar(parts[1])}
        for extra in parts[2:]:
            if extra == "log":
                out["log"] = True
            elif kind == "Int":
                out["step"] = _scalar(extra)
            else:
                out["num"] = _scalar(extra)
        return name, out
    if kind == "Categorical":
        return name, {"type": kind, "data": [_scalar(v) for v in rest.split(",") if v != ""]}
    if kind == "File":
        return name, {"type": kind, "path": rest}
    raise GmlUserError(f"--arg {text!r}: type {kind!r} is not supported here (Real, Int, Categorical, File); "
                       f"write Nested args in the file itself")


def default_searcher(search_args: dict[str, dict[str, Any]], max_tries: int | None) -> str:
    """Grid when every point fits in the budget; BO for short budgets of (expensive) trials;
    TPE for long budgets (cheap trials), where a GP's cubic cost per suggestion adds up."""
    sizes = []
    for spec in search_args.values():
        if spec["type"] == "Categorical":
            sizes.append(len(spec["data"]))
        elif spec["type"] == "Int" and isinstance(spec.get("lower"), int) and isinstance(spec.get("upper"), int):
            sizes.append(len(range(spec["lower"], spec["upper"] + 1, int(spec.get("step", 1)) or 1)))
        elif spec["type"] == "Real" and spec.get("num"):
            sizes.append(int(spec["num"]))
        else:
            sizes.append(None)
    if max_tries is not None and None not in sizes and math.prod(sizes) <= max_tries:
        return "GridSearcher"
    return "BOSearcher" if max_tries is None or max_tries <= 200 else "TPESearcher"


def _flow(value: Any) -> str:
    """One-line YAML (JSON is a subset of YAML 1.2 flow style)."""
    import json

    return json.dumps(value)


def render_task_file(data: dict[str, Any]) -> str:
    """The task file text with a comment on every key."""
    t, s, sch = data["task"], data["searcher"], data["scheduler"]
    stop = sch["stop_criterion"]
    lines = [
        "# gml-hpo task file (search-run THIS_FILE; docs/hpo.md has the full reference)",
        "task:",
        f"  name: {_flow(t['name'])}                  # names the task folder <work_dir>/<name>",
        "  # each trial runs this command with bash; {name} placeholders are filled from search_args,",
        "  # {trial_dir} and {trial_id} are always available; write {{ }} for literal braces",
        f"  template: {_flow(t['template'])}",
        "  search_args:                # Real(lower, upper, log, num) Int(lower, upper, step) Categorical(data)",
        "                              # Nested(data: list of tables, one choice sets several args) File(path glob)",
    ]
    lines += [f"    {name}: {_flow(spec)}" for name, spec in t["search_args"].items()]
    lines += [
        "searcher:",
        f"  type: {s['type']}          # GridSearcher, BatchSearcher, RandomSearcher, BOSearcher, TPESearcher, "
        "SkoptSearcher, EvolutionSearcher (docs/hpo.md: which searcher when)",
        f"  reward_attribute: {s['reward_attribute']}          # reported scalar to optimise ('acc' = top-1 in [0, 1] for gml run)",
        f"  optimize_mode: {s['optimize_mode']}     # maximize or minimize",
        "  reward_at: last             # reward = value at the last reported step, or 'best'",
    ]
    if s.get("seed") is not None:
        lines.append(f"  seed: {s['seed']}")
    lines += [
        "scheduler:",
        "  type: LocalScheduler        # where trials run (SlurmScheduler with gml-hpo's Slurm executor)",
        f"  parallel_size: {sch['parallel_size']}            # concurrent trials",
        "  stop_criterion:             # any of: max_tries, time_limits, max_reward, time_limits_per_job,",
        "                              # max_failed_before_success (default 5: stop a task whose first trials all fail)",
    ]
    for key, comment in (("max_tries", "trials in all"), ("time_limits", "whole task, e.g. 2h"),
                         ("max_reward", "stop once a trial reaches it"),
                         ("time_limits_per_job", "a trial is terminated after this, e.g. 10m")):
        if stop.get(key) is not None:
            lines.append(f"    {key}: {_flow(stop[key])}    # {comment}")
    if sch.get("assessor"):
        lines.append(f"  assessor: {_flow(sch['assessor'])}   # early stopping of poor trials")
    else:
        lines.append("  # assessor: {type: MedianStopAssessor, start_step: 3}   # early stopping of poor trials")
    lines += ["generate_log: true              # keep each trial's output in <trial_dir>/trial.log", ""]
    return "\n".join(lines)


@click.command("init", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("output", default="task.yaml", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Task name.")
@click.option("--template", default=None, help="Trial command with {placeholders}.")
@click.option("--arg", "args", multiple=True, metavar="NAME=TYPE:...",
              help="Search arg: lr=Real:1e-4:1:log, depth=Int:2:6:1, bs=Categorical:32,64, cfg=File:glob.")
@click.option("--searcher", type=click.Choice(SEARCHERS), default=None)
@click.option("--reward-attribute", default=None)
@click.option("--optimize-mode", type=click.Choice(["maximize", "minimize"]), default=None)
@click.option("--parallel-size", type=int, default=None)
@click.option("--max-tries", type=int, default=None)
@click.option("--time-limits", default=None, help="Whole-task limit, e.g. 2h.")
@click.option("--time-limits-per-job", default=None, help="Per-trial limit, e.g. 10m.")
@click.option("--assessor", type=click.Choice(ASSESSORS), default=None)
@click.option("--seed", type=int, default=None)
@click.option("--no-input", is_flag=True, help="Never ask; use defaults for what is not given.")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT.")
def init_command(output: str, name, template, args, searcher, reward_attribute, optimize_mode, parallel_size,
                 max_tries, time_limits, time_limits_per_job, assessor, seed, no_input, force) -> None:
    """Write a commented task file OUTPUT (default task.yaml) and validate it."""
    ask = not no_input and sys.stdin.isatty()

    def get(value, prompt, default, **kw):
        if value is not None:
            return value
        return click.prompt(prompt, default=default, **kw) if ask else default

    path = Path(output)
    if path.exists() and not force:
        raise GmlUserError(f"{path} exists; use --force to overwrite it")
    name = get(name, "task name", path.stem if path.stem != "task" else "my_search")
    template = get(template, "trial command template", DEFAULT_TEMPLATE)
    if not args and ask:
        entered = click.prompt("search args (space separated NAME=TYPE:...)", default=" ".join(DEFAULT_ARGS))
        args = tuple(entered.split())
    args = args or DEFAULT_ARGS
    reward_attribute = get(reward_attribute, "reward attribute", "acc")
    optimize_mode = get(optimize_mode, "optimize mode", "maximize", type=click.Choice(["maximize", "minimize"]))
    parallel_size = get(parallel_size, "parallel trials", 2, type=int)
    max_tries = get(max_tries, "max tries", 20, type=int)
    search_args = dict(parse_arg(a) for a in args)
    searcher = get(searcher, "searcher", default_searcher(search_args, max_tries), type=click.Choice(SEARCHERS))
    assessor = get(assessor, "assessor", "none", type=click.Choice(ASSESSORS))
    stop = {"max_tries": max_tries, "time_limits": time_limits, "time_limits_per_job": time_limits_per_job}
    data: dict[str, Any] = {
        "task": {"name": name, "template": template, "search_args": search_args},
        "searcher": {"type": searcher, "reward_attribute": reward_attribute, "optimize_mode": optimize_mode,
                     "seed": seed},
        "scheduler": {"type": "LocalScheduler", "parallel_size": parallel_size,
                      "stop_criterion": {k: v for k, v in stop.items() if v is not None}},
    }
    if assessor != "none":
        data["scheduler"]["assessor"] = {
            "MedianStopAssessor": {"type": assessor, "start_step": 3},
            "CurveFittingAssessor": {"type": assessor, "epoch_num": 20, "start_step": 6},
            "AshaAssessor": {"type": assessor, "min_resource": 1, "reduction_factor": 3},
        }[assessor]
    text = render_task_file(data)
    import yaml

    from gml_core.api import atomic_write_text

    from ..taskfile import _yaml_loader, load_task
    try:
        load_task(yaml.load(text, Loader=_yaml_loader()), source_name=str(path))  # noqa: S506
    except ConfigError as exc:
        raise GmlUserError(f"the task file would be invalid, nothing written:\n{exc}") from None
    atomic_write_text(path, text)
    click.echo(f"wrote {path}; run it with: search-run {path}")


def main(argv: list[str] | None = None) -> None:
    run_standalone(init_command, "search-init", argv)
