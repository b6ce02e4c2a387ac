"""MedianStop and CurveFitting decisions on crafted histories (both directions)."""

from __future__ import annotations

import time

import pytest

from gml_hpo.assessors.curvefit import CurveFittingAssessor, CurveFittingOptions, ensemble_prediction, fit_curves
from gml_hpo.assessors.median import MedianStopAssessor, MedianStopOptions


def median_assessor(mode="maximize", start_step=0) -> MedianStopAssessor:
    return MedianStopAssessor(MedianStopOptions(start_step=start_step), optimize_mode=mode)


def test_median_stop_maximize_hand_derived():
    a = median_assessor("maximize", start_step=2)
    # running averages at step 2: (0.2+0.4)/2=0.3, (0.5+0.7)/2=0.6, (0.6+1.0)/2=0.8 -> median 0.6
    a.trial_end("c1", [0.2, 0.4, 0.5], True)
    a.trial_end("c2", [0.5, 0.7], True)
    a.trial_end("c3", [0.6, 1.0, 1.0], True)
    a.trial_end("failed", [0.0, 0.0], False)  # not completed: ignored
    assert a.median_at(2) == pytest.approx(0.6)
    assert a.assess("t", [0.1]) is False           # before start_step
    assert a.assess("t", [0.1, 0.59]) is True      # best 0.59 < 0.6
    assert a.assess("t", [0.6, 0.2]) is False      # best 0.6 is not strictly worse
    # at step 3 only c1 (avg 0.3667) and c3 (avg 0.8667) reached it: lenient middle = the lower one
    assert a.median_at(3) == pytest.approx((0.2 + 0.4 + 0.5) / 3)
    assert a.assess("t", [0.1, 0.2, 0.36]) is True
    assert a.assess("t", [0.1, 0.2, 0.37]) is False
    assert a.assess("t", [0.0] * 4) is False       # no completed trial reached step 4


def test_median_stop_minimize_hand_derived():
    a = median_assessor("minimize", start_step=1)
    a.trial_end("c1", [1.0, 0.6], True)   # averages 1.0, 0.8
    a.trial_end("c2", [0.8, 0.4], True)   # averages 0.8, 0.6
    # step 2 values 0.8 and 0.6: lenient middle when minimising = the upper one (0.8)
    assert a.median_at(2) == pytest.approx(0.8)
    assert a.assess("t", [0.9, 0.85]) is True      # best (lowest) 0.85 > 0.8
    assert a.assess("t", [0.9, 0.8]) is False
    # step 1 values 1.0 and 0.8: the upper middle is 1.0
    assert a.median_at(1) == pytest.approx(1.0)
    assert a.assess("t", [0.95]) is False
    assert a.assess("t", [1.05]) is True


def test_median_stop_needs_completed_trials():
    a = median_assessor()
    assert a.assess("t", [0.0, 0.0, 0.0]) is False


def curve_assessor(mode="maximize", **kw) -> CurveFittingAssessor:
    opts = CurveFittingOptions(**{"epoch_num": 20, "start_step": 6, "threshold": 0.95, "gap": 1, **kw})
    return CurveFittingAssessor(opts, optimize_mode=mode)


SATURATED_LOW = [0.30, 0.40, 0.45, 0.47, 0.48, 0.49]       # levels off near 0.5
RISING = [0.50, 0.70, 0.80, 0.85, 0.87, 0.88]              # heads to ~0.9


def test_curve_fitting_maximize_stops_a_curve_that_levels_off_low():
    a = curve_assessor()
    assert a.assess("x", SATURATED_LOW) is False            # no completed trial yet
    a.trial_end("best", [0.5, 0.7, 0.8, 0.85, 0.88, 0.9, 0.9, 0.9], True)   # best final 0.9 -> bar 0.855
    assert a.assess("low", SATURATED_LOW[:5]) is False      # before start_step
    pred_low = a.predict(SATURATED_LOW)
    assert 0.48 < pred_low < 0.6                            # extrapolates to about 0.5
    assert a.assess("low", SATURATED_LOW) is True
    pred_rising = a.predict(RISING)
    assert 0.87 < pred_rising < 1.0
    assert a.assess("rising", RISING) is False


def test_curve_fitting_minimize_mirrors_maximize():
    a = curve_assessor("minimize")
    a.trial_end("best", [1.0, 0.6, 0.4, 0.3, 0.25, 0.22, 0.2, 0.2], True)   # bar: 0.2 / 0.95 = 0.2105
    flat_high = [1.2, 1.0, 0.9, 0.85, 0.83, 0.82]
    falling = [0.9, 0.5, 0.35, 0.28, 0.25, 0.23]
    assert 0.75 < a.predict(flat_high) < 0.83
    assert a.assess("high", flat_high) is True
    assert a.predict(falling) < 0.2105
    assert a.assess("falling", falling) is False


def test_curve_fitting_gap_and_cost():
    a = curve_assessor(gap=3)
    a.trial_end("best", [0.9] * 8, True)
    assert a.assess("low", SATURATED_LOW) is True
    assert a.assess("low", SATURATED_LOW + [0.49]) is False  # judged again only 3 values later
    assert a.assess("low", SATURATED_LOW + [0.49, 0.49]) is False
    assert a.assess("low", SATURATED_LOW + [0.49] * 3) is True
    history = [0.9 - 0.5 * 0.8 ** i for i in range(30)]
    a.predict(history)  # warm up imports
    t0 = time.perf_counter()
    for _ in range(5):
        a.predict(history)
    assert (time.perf_counter() - t0) / 5 < 0.1


def test_curve_families_recover_a_known_curve():
    # exact pow3 curve c - a x^-alpha with c=0.9, a=0.5, alpha=1 -> value at 20 = 0.875
    y = [0.9 - 0.5 / x for x in range(1, 9)]
    fits = fit_curves(y, 20, families=["pow3"])
    assert fits["pow3"][0] == pytest.approx(0.875, abs=1e-3)
    assert ensemble_prediction(fits) == pytest.approx(0.875, abs=1e-3)
