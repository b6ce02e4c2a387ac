"""Task-file validation (every problem at once, with key paths), durations, search-init."""

from __future__ import annotations

import subprocess

import pytest
import yaml
from hpo_helpers import BIN

from gml_core._internal.errors import ConfigError
from gml_hpo.taskfile import load_task, parse_duration


def problems_of(raw: dict, tmp_path) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_task(raw, cwd=tmp_path)
    return {path: msg for path, msg in info.value.problems}


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path):
    raw = {
        "task": {"name": "bad", "template": "run {lr} {arch_w} {trial_dir}",
                 "search_args": {"lr": {"type": "Real", "lower": 1.0, "upper": 0.1},
                                 "n": {"type": "Int", "lower": 1, "upper": 5, "step": 0},
                                 "cfg": {"type": "File", "path": "nothing/*.toml"},
                                 "arch": {"type": "Nested", "data": [{"w": 1}, {"w": 2}]}}},
        "searcher": {"type": "SkoptSeacher", "reward_attribute": "acc"},
        "scheduler": {"parallel_size": 0, "stop_criterion": {"time_limits": "2 weeks", "max_tries": 3.5},
                      "assessor": {"type": "MedianStop"}},
        "pavi": {"compare": "x"},
    }
    p = problems_of(raw, tmp_path)
    assert "upper (0.1) must be greater than lower (1.0)" in p["task.search_args.lr.upper"]
    assert "must be positive, got 0" in p["task.search_args.n.step"]
    assert "no file matches" in p["task.search_args.cfg.path"]
    assert "'{arch_w}' is filled by no search arg" in p["task.template"]
    assert "not used by task.template" in p["task.search_args.n"]
    assert "unknown searcher 'SkoptSeacher' (did you mean 'SkoptSearcher'?); installed:" in p["searcher.type"]
    assert "EvolutionSearcher" in p["searcher.type"]
    assert "must be >= 1" in p["scheduler.parallel_size"]
    assert "bad duration '2 weeks'" in p["scheduler.stop_criterion.time_limits"]
    assert "expected an integer" in p["scheduler.stop_criterion.max_tries"]
    assert "did you mean 'MedianStopAssessor'" in p["scheduler.assessor.type"]
    assert "unknown section" in p["pavi"]


def test_searcher_specific_checks(tmp_path):
    raw = {"task": {"name": "b", "template": "x {lr} {w}",
                    "search_args": {"lr": {"type": "Real", "lower": 1e-4, "upper": 0.1},
                                    "arch": {"type": "Nested", "data": [{"w": 1}, {"w": [2, 3]}]}}},
           "searcher": {"type": "BatchSearcher", "optimize_mode": "max"},
           "scheduler": {"assessor": {"type": "CurveFittingAssessor", "epoch_num": 0}}}
    p = problems_of(raw, tmp_path)
    assert "BatchSearcher takes only Nested args" in p["task.search_args.lr"]
    assert "plain values" in p["task.search_args.arch.data[1].w"]
    assert "'max'" in p["searcher.optimize_mode"] and "'maximize'" in p["searcher.optimize_mode"]
    assert "must be >= 1" in p["scheduler.assessor.epoch_num"]
    raw["searcher"] = {"type": "GridSearcher"}
    raw["scheduler"] = {}
    raw["task"]["search_args"]["arch"]["data"][1] = {"w": 2}
    assert "GridSearcher needs a finite arg" in problems_of(raw, tmp_path)["task.search_args.lr"]
    raw["searcher"] = {"type": "EvolutionSearcher", "population_size": 1, "mutaton_prob": 0.5}
    p = problems_of(raw, tmp_path)
    assert "did you mean 'mutation_prob'" in p["searcher.mutaton_prob"]
    raw["searcher"] = {"type": "EvolutionSearcher", "population_size": 1}
    assert "must be >= 2" in problems_of(raw, tmp_path)["searcher.population_size"]
    raw["searcher"] = {"type": "RandomSearcher", "optimize_mode": "minimize"}
    raw["scheduler"] = {"assessor": {"type": "MedianStopAssessor", "optimize_mode": "maximize"}}
    assert "contradicts" in problems_of(raw, tmp_path)["scheduler.assessor.optimize_mode"]


def test_a_type_error_and_a_bad_value_in_searcher_options_are_reported_together(tmp_path):
    raw = {"task": {"name": "b", "template": "x {lr}", "search_args": {"lr": {"type": "Real", "lower": 1e-4, "upper": 0.1}}},
           "searcher": {"type": "BOSearcher", "n_restarts": "ten", "n_candidates": 0}}
    assert problems_of(raw, tmp_path) == {"searcher.n_restarts": "expected an integer, got 'ten' (str)",
                                          "searcher.n_candidates": "must be >= 1, got 0"}


def test_yaml_and_toml_task_files(tmp_path):
    (tmp_path / "t.yaml").write_text(
        "task:\n  name: y\n  template: 'echo {lr} {bs}'\n  search_args:\n"
        "    lr: {type: Real, lower: 1e-4, upper: 1, log: true}\n    bs: {type: Categorical, data: [32, 64]}\n"
        "searcher: {type: SkoptSearcher, n_initial_points: 3}\n"
        "scheduler: {stop_criterion: {time_limits: 1h30m, time_limits_per_job: 90}}\n")
    cfg = load_task(tmp_path / "t.yaml", cwd=tmp_path)
    assert cfg.space.by_name["lr"].lower == 1e-4 and cfg.space.by_name["lr"].log
    assert cfg.time_limits_s == 5400 and cfg.time_limits_per_job_s == 90
    assert cfg.searcher_component.options.n_initial_points == 3
    assert cfg.task_dir == tmp_path / "work_dirs" / "hpo" / "y"
    (tmp_path / "t.toml").write_text(
        '[task]\nname = "z"\ntemplate = "echo {d}"\n[task.search_args.d]\ntype = "Int"\nlower = 1\nupper = 4\n')
    assert load_task(tmp_path / "t.toml", cwd=tmp_path).space.by_name["d"].values == (1, 2, 3, 4)


@pytest.mark.parametrize("text, seconds", [(90, 90.0), ("45s", 45.0), ("10m", 600.0), ("2h", 7200.0),
                                           ("1h30m", 5400.0), ("1d", 86400.0), ("01:02:03", 3723.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "2x", "-5", 0, "h", True])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_search_init_writes_a_valid_commented_file_or_nothing(tmp_path):
    init = str(BIN / "search-init")
    ok = subprocess.run([init, "--no-input", "t.yaml", "--name", "demo", "--template", "echo {lr} {d}",
                         "--arg", "lr=Real:1e-4:1:log", "--arg", "d=Int:2:6:2", "--searcher", "EvolutionSearcher",
                         "--assessor", "MedianStopAssessor", "--time-limits-per-job", "10m"],
                        cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    text = (tmp_path / "t.yaml").read_text()
    assert "# " in text and "search_args" in text
    cfg = load_task(tmp_path / "t.yaml", cwd=tmp_path)
    assert cfg.searcher.type == "EvolutionSearcher" and cfg.space.by_name["d"].values == (2, 4, 6)
    assert cfg.assessor.type == "MedianStopAssessor" and cfg.time_limits_per_job_s == 600
    assert yaml.safe_load(text)["scheduler"]["parallel_size"] == 2
    again = subprocess.run([init, "--no-input", "t.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr
    bad = subprocess.run([init, "--no-input", "u.yaml", "--template", "echo {lr} {zz}", "--arg", "lr=Real:1:0.1"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2 and "task.template" in bad.stderr and "task.search_args.lr" in bad.stderr
    assert not (tmp_path / "u.yaml").exists()


def test_max_failed_before_success_must_be_positive_or_null(tmp_path):
    raw = {"task": {"name": "t", "template": "run {x}", "search_args": {"x": {"type": "Int", "lower": 1, "upper": 3}}},
           "scheduler": {"stop_criterion": {"max_failed_before_success": 0}}}
    assert problems_of(raw, tmp_path) == {"scheduler.stop_criterion.max_failed_before_success":
                                          "must be >= 1 or null (never), got 0"}
    raw["scheduler"]["stop_criterion"]["max_failed_before_success"] = None
    assert load_task(raw, cwd=tmp_path).max_failed_before_success is None
    del raw["scheduler"]["stop_criterion"]
    assert load_task(raw, cwd=tmp_path).max_failed_before_success == 5
