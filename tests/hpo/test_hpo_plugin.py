"""Plugin wiring: registrations, import-light plugin module, automatic reporting from gml runs."""

from __future__ import annotations

import json
import subprocess
import sys

from gml_core._internal.plugins import get_host


def test_registrations_and_provenance():
    host = get_host()
    provided = host.provides("hpo")
    assert {"LocalScheduler"} <= set(provided["executor"])
    assert {"MedianStopAssessor", "CurveFittingAssessor"} <= set(provided["assessor"])
    assert "store" in provided["tracker"]
    assert "EvolutionSearcher" in provided["searcher"]


def test_plugin_module_is_import_light():
    code = ("import sys, gml_hpo.plugin, gml_hpo; "
            "heavy = [m for m in ('torch', 'numpy', 'skopt', 'matplotlib', 'mmengine') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_gml_on_evaluate_reports_inside_a_trial(tmp_path, monkeypatch):
    from gml_hpo import gml_metrics, plugin

    monkeypatch.setattr(gml_metrics, "_EVALUATIONS", 0)
    monkeypatch.delenv("GML_HPO_TRIAL_DIR", raising=False)
    plugin.gml_on_evaluate(algorithm=None, iteration=10, epoch=1, metrics={"accuracy/top1": 50.0})
    assert not (tmp_path / "metrics.jsonl").exists()          # not a trial: nothing written
    monkeypatch.setenv("GML_HPO_TRIAL_DIR", str(tmp_path))
    host = get_host()
    host.hook.gml_on_evaluate(algorithm=None, iteration=20, epoch=1, metrics={"accuracy/top1": 91.5,
                                                                              "accuracy/top5": 99.0})
    host.hook.gml_on_evaluate(algorithm=None, iteration=40, epoch=2, metrics={"accuracy/top1": 95.0})
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    assert lines[0]["acc"] == 0.915 and lines[0]["accuracy/top1"] == 91.5 and lines[0]["accuracy/top5"] == 99.0
    assert lines[1]["epoch"] == 2 and lines[1]["iteration"] == 40


def test_report_outside_a_trial_is_a_no_op(monkeypatch):
    import gml_hpo

    monkeypatch.delenv("GML_HPO_TRIAL_DIR", raising=False)
    assert gml_hpo.report(step=1, acc=0.5) is False
