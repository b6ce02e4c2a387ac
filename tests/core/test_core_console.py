"""What `gml run` prints: a header, one line per epoch, the summary; mmengine's log in the work dir."""

import json
import logging
from pathlib import Path

from gml_core._internal.training.console import ConsoleFilter, EpochLines

CONFIG = """
[data]
type = "digits"
[train]
epochs = {epochs}
val_interval = {val_interval}
[runtime]
work_dir = "{work_dir}"
log_interval = 5
[algorithm]
type = "Supervised"
model = {{ type = "gml.SmallCNN", width = 4 }}
"""


def config(tmp_path: Path, name: str, epochs: int = 2, val_interval: int = 1) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(epochs=epochs, val_interval=val_interval, work_dir=tmp_path / name))
    return path


def test_default_console_is_short_and_the_log_file_has_everything(gml, tmp_path):
    result = gml("run", str(config(tmp_path, "normal", epochs=3, val_interval=2)))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    wd = tmp_path / "normal"
    log = Path(json.loads((wd / "summary.json").read_text())["log"])
    assert lines[0] == (f"gml run {tmp_path / 'normal.toml'} -> {wd} | cpu | Supervised on digits (gml-core) | "
                        f"log: {log}")
    epochs = [line for line in lines if line.startswith("epoch ")]
    # epoch 1 is not validated (val_interval 2): its line has the loss only
    assert [e.split()[1] for e in epochs] == ["1/3", "2/3", "3/3"]
    assert "accuracy" not in epochs[0] and all("accuracy/top1" in e for e in epochs[1:])
    assert all(float(e.split("loss ")[1].split()[0]) > 0 for e in epochs)
    # header, one line per epoch, the summary's title and its rows: 6 epochs fit the 15 lines
    assert "gml run summary" in result.stdout and len(lines) <= 1 + len(epochs) + 8
    for noise in ("System environment", "Hooks will be executed", "Config:", "Epoch(train)", "no metainfo"):
        assert noise not in result.stdout + result.stderr
    text = log.read_text()
    for kept in ("System environment", "Hooks will be executed", "Epoch(train)", "Epoch(val)"):
        assert kept in text


def test_quiet_prints_only_the_summary_and_verbose_everything(gml, tmp_path):
    quiet = gml("run", str(config(tmp_path, "quiet", epochs=1)), "-q")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stdout.lstrip().startswith("gml run summary") and "epoch 1/1" not in quiet.stdout
    verbose = gml("run", str(config(tmp_path, "verbose", epochs=1)), "--verbose")
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "System environment" in verbose.stdout and "Epoch(val)" in verbose.stdout
    both = gml("run", str(config(tmp_path, "both", epochs=1)), "-q", "-v")
    assert both.returncode == 2 and "exclude each other" in both.stderr


def test_epoch_lines_join_the_loss_and_the_validation(capsys):
    lines = EpochLines(enabled=True, bar=False)
    lines.start_epoch(1, 2, 3)
    for loss in (3.0, 2.0, 1.0):
        lines.step(1, 2, loss)
    lines.end_epoch(1, 2)
    lines.start_epoch(2, 2, 3)  # epoch 1 was not validated: its line comes out now
    lines.step(2, 2, 0.5)
    lines.end_epoch(2, 2)
    lines.validated({"accuracy/top1": 97.5})
    lines.close()
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith("epoch 1/2  loss 2.0000  (") and "accuracy" not in out[0]
    assert out[1].startswith("epoch 2/2  loss 0.5000  (") and out[1].endswith("accuracy/top1 97.50")
    silent = EpochLines(enabled=False, bar=False)
    silent.start_epoch(1, 1, 1)
    silent.end_epoch(1, 1)
    silent.validated({"a": 1.0})
    silent.close()
    assert capsys.readouterr().out == ""


def test_plain_progress_lines_off_a_terminal(capsys):
    lines = EpochLines(enabled=True, bar=False, plain_every_s=0.0)
    lines.start_epoch(1, 1, 3)
    for loss in (3.0, 1.0, 2.0):
        lines.step(1, 1, loss)
    lines.end_epoch(1, 1)
    lines.close()
    out = capsys.readouterr().out.splitlines()
    # a progress line after steps 1 and 2 (none after the last: the epoch line follows), then the epoch line
    assert [o.split("  (")[0] for o in out] == ["epoch 1/1  1/3 iters loss 3.0000", "epoch 1/1  2/3 iters loss 2.0000",
                                                "epoch 1/1  loss 2.0000"]
    assert out[0].endswith(" s)") and "eta" in out[0]


def test_console_filter_keeps_warnings_but_not_mmengine_noise():
    def record(level, msg):
        return logging.LogRecord("mmengine", level, __file__, 1, msg, None, None)

    keep = ConsoleFilter().filter
    assert not keep(record(logging.INFO, "Epoch(train) [1][10/23]"))
    assert keep(record(logging.WARNING, "load_from: 3 missing keys"))
    assert not keep(record(logging.WARNING, "Dataset TensorDataset has no metainfo."))
    assert keep(record(logging.ERROR, "Dataset TensorDataset has no metainfo."))


def test_summary_names_files_inside_the_work_dir_relatively_and_never_cuts_a_path(tmp_path, monkeypatch, capsys):
    from gml_core._internal.summary import print_summary
    from gml_core._internal.training.runner import RunResult

    monkeypatch.chdir(tmp_path)
    wd = Path("work_dirs") / "x"  # as `gml run` gets it: relative to the cwd
    stamp = "20261207_113805_with_a_long_timestamped_name_" + "y" * 60
    result = RunResult(work_dir=wd, metrics={"accuracy/top1": 95.0}, params=1, flops=1,
                       best_checkpoint=wd / "best.pth", last_checkpoint=(tmp_path / wd / "epoch_4.pth"),
                       log_file=tmp_path / wd / stamp / f"{stamp}.log", extra={})
    files = dict(result.rows())["files"]
    assert files == f"best: best.pth, last: epoch_4.pth, log: {stamp}/{stamp}.log"
    print_summary(result)
    printed = "".join(capsys.readouterr().out.split())  # the value column wraps, whole
    assert "…" not in printed and f"log:{stamp}/{stamp}.log" in printed
