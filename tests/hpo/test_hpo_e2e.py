"""End to end: a small task of real `gml run` trials on digits, two at a time."""

from __future__ import annotations

from pathlib import Path

from gml_hpo.records import TrialState

REPO = Path(__file__).resolve().parents[2]


def test_real_gml_run_trials_report_by_themselves(kit):
    template = (f"gml run {REPO / 'configs/baseline/digits_cnn.toml'} --cfg-options train.lr={{lr}} "
                f"train.batch_size={{bs}} train.epochs=2 runtime.log_interval=50 --work-dir {{trial_dir}}")
    data = kit.task("digits_e2e", template, {"arch": {"type": "Nested", "data": [{"lr": 0.2, "bs": 32},
                                                                                   {"lr": 0.005, "bs": 64}]}},
                    searcher={"type": "BatchSearcher"}, scheduler={"parallel_size": 2, "poll_interval": 0.2})
    assert kit.run(data) == "DONE"
    trials = kit.trials("digits_e2e")
    assert [t.state for t in trials.values()] == [TrialState.SUCCEEDED] * 2, [t.reason for t in trials.values()]
    fast, slow = trials["t0001"], trials["t0002"]
    assert fast.last_step == 2 and 0.0 < slow.reward <= fast.reward <= 1.0
    assert fast.reward > 0.8
    assert abs(fast.last_metrics["accuracy/top1"] / 100 - fast.reward) < 1e-9
    # the two trials overlapped in time (parallel_size 2)
    assert fast.started_at < slow.finished_at and slow.started_at < fast.finished_at
    assert (fast.trial_dir / "best.pth").exists()
