"""End to end through the ``gml`` CLI on digits with the shipped configs: train a teacher,
then distil a smaller student with each method for a short run; resume reloads the teacher.

Only the gml-kd plugin is loaded (``GML_LOAD_PLUGINS=kd``): gml-core plus gml-kd alone work.
"""

import json
import os
from pathlib import Path

import pytest
import torch

from gml_core._internal.models.small_cnn import SmallCNN

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs" / "kd"
QUIET = ["runtime.progress=false", "runtime.log_interval=1000", "runtime.max_keep_ckpts=1"]


def gml(*args: str) -> int:
    """``gml ARGS`` in this process (the real click command, plugins from the environment)."""
    from gml_core._internal import plugins
    from gml_core._internal.cli import main

    plugins.set_host(None)
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    old = os.environ.get("GML_LOAD_PLUGINS")
    os.environ["GML_LOAD_PLUGINS"] = "kd"
    wd = tmp_path_factory.mktemp("kd_teacher")
    code = gml("run", str(CONFIGS / "teacher_digits.toml"), "--work-dir", str(wd), "train.epochs=3", *QUIET)
    assert code == 0
    yield wd
    if old is None:
        os.environ.pop("GML_LOAD_PLUGINS", None)
    else:
        os.environ["GML_LOAD_PLUGINS"] = old


def distil(name: str, teacher: Path, wd: Path, *extra: str) -> dict:
    ckpt = f'algorithm.distiller.distill_cfg.teacher[0].ckpt_path="{teacher / "best.pth"}"'
    args = ["run", str(CONFIGS / f"{name}_digits.toml"), "--work-dir", str(wd), *QUIET, *extra]
    if name != "inplace":
        args.append(ckpt)
    assert gml(*args) == 0
    return json.loads((wd / "summary.json").read_text())


@pytest.mark.parametrize("name, extra", [
    ("kd", ["train.epochs=2"]),
    ("fitnet", ["train.epochs=2", "algorithm.init_epochs=1"]),
    ("at", ["train.epochs=2"]),
    ("ab", ["train.epochs=2", "algorithm.init_epochs=1"]),
    ("ft", ["train.epochs=2", "algorithm.distiller.distill_cfg.teacher[0].distill_head_cfg[0].head"
                               ".tea_connector.pretrain_epochs=1"]),
    ("meal", ["train.epochs=2"]),
    ("inplace", ["train.epochs=2"]),
])
def test_distil_each_method_from_the_trained_teacher(teacher, tmp_path, name, extra):
    if name == "meal":  # a two-teacher ensemble: the teacher's best and latest checkpoints
        extra = [*extra, f'algorithm.distiller.distill_cfg.teacher[1].ckpt_path="{teacher / "epoch_3.pth"}"']
    summary = distil(name, teacher, tmp_path, *extra)
    assert summary["metrics"]["accuracy/top1"] > 20.0  # two short epochs of a 4-wide CNN: well above chance
    teacher_top1 = json.loads((teacher / "summary.json").read_text())["metrics"]["accuracy/top1"]
    if name == "inplace":
        assert "width 0.25 top1 (BN recalibrated)" in summary["extra"]
    else:
        assert float(summary["extra"]["teacher[0] top1"]) == pytest.approx(teacher_top1, abs=0.01)
    ckpt = torch.load(summary["last_checkpoint"], weights_only=True)
    assert not any("teacher" in k for k in ckpt["state_dict"])
    student = SmallCNN(width=8 if name == "inplace" else 4)
    student.load_state_dict(torch.load(summary["extra"]["student checkpoint"], weights_only=True)["state_dict"])


def test_resume_reloads_the_teacher_from_ckpt_path(teacher, tmp_path):
    distil("kd", teacher, tmp_path, "train.epochs=1")
    summary = distil("kd", teacher, tmp_path, "train.epochs=2", "--resume")
    teacher_top1 = json.loads((teacher / "summary.json").read_text())["metrics"]["accuracy/top1"]
    assert float(summary["extra"]["teacher[0] top1"]) == pytest.approx(teacher_top1, abs=0.01)
    assert torch.load(tmp_path / "epoch_2.pth", weights_only=True)["meta"]["epoch"] == 2


def test_bad_input_exits_2_with_one_line(teacher, tmp_path, capsys):
    code = gml("run", str(CONFIGS / "kd_digits.toml"), "--work-dir", str(tmp_path), *QUIET,
               'algorithm.distiller.distill_cfg.teacher[0].ckpt_path="missing/best.pth"')
    err = capsys.readouterr().err
    assert code == 2
    assert "algorithm.distiller.distill_cfg.teacher[0].ckpt_path: teacher checkpoint not found: missing/best.pth" \
        ' (train the teacher first, e.g. a gml run with runtime.work_dir = "missing", or fix the path)' in err
    code = gml("run", str(CONFIGS / "kd_digits.toml"), "--work-dir", str(tmp_path), *QUIET,
               f'algorithm.distiller.distill_cfg.teacher[0].ckpt_path="{teacher / "best.pth"}"',
               'algorithm.distiller.distill_cfg.teacher[0].distill_head_cfg[0].student_module="head.f"')
    err = capsys.readouterr().err
    assert code == 2 and "has no module 'head.f' (did you mean 'head.fc'?)" in err and "Traceback" not in err


def test_log_shows_init_stage_losses_only_during_that_stage(teacher, tmp_path):
    """FitNet's hint loss is logged by its stage before the schedule, never in the training lines."""
    summary = distil("fitnet", teacher, tmp_path, "train.epochs=2", "algorithm.init_epochs=1",
                     "runtime.log_interval=2")
    log = Path(summary["log"]).read_text()
    assert "init stage epoch 1/1 (before the main schedule): loss_hint3" in log
    train_lines = [line for line in log.splitlines() if "Epoch(train)" in line]
    assert len(train_lines) >= 2
    assert all("loss_kd" in line and "loss_hint3" not in line for line in train_lines)
    scalars = (Path(summary["log"]).parent / "vis_data" / "scalars.json").read_text()
    assert "loss_hint3" not in scalars and "loss_kd" in scalars
