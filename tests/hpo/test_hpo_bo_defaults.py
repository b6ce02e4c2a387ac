"""BOSearcher's defaults: Optuna's length-scale prior, output warping, the initial-design rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.stats import yeojohnson

from gml_hpo.searchers.bo import BOOptions, BOSearcher
from gml_hpo.searchers.gp import GP
from gml_hpo.searchers.warping import OutputWarp
from gml_hpo.space import Dim, SearchSpace


def test_optuna_length_scale_prior_matches_a_hand_computation():
    # Optuna's GPSampler: log prior -(0.1 / lam + 0.1 * lam) per dimension, lam = 1 / l^2
    X, y = np.random.default_rng(0).random((5, 3)), np.arange(5.0)
    gp = GP(X, y, ls_prior="optuna")
    for ls in ([0.1, 1.0, 7.0], [0.5, 2.0, 0.02]):
        theta = np.log(ls)
        lp, g = gp.ls_log_prior(theta)
        lam = 1.0 / np.array(ls) ** 2
        np.testing.assert_allclose(lp, -(0.1 / lam + 0.1 * lam), rtol=1e-12)
        np.testing.assert_allclose(g, approx_fprime(theta, lambda t: gp.ls_log_prior(t)[0].sum(), 1e-7),
                                   rtol=1e-5, atol=1e-6)
    # its mode is l = 1 in every dimension, and the posterior's gradient includes it
    np.testing.assert_allclose(gp.ls_log_prior(np.zeros(3))[1], 0.0, atol=1e-15)
    theta = np.array([-1.0, 0.5, 0.2, 0.3, -4.0])
    fd = approx_fprime(theta, lambda t: gp.neg_log_posterior(t)[0], 1e-6)
    np.testing.assert_allclose(gp.neg_log_posterior(theta)[1], fd, rtol=1e-4, atol=1e-4)
    # the Hvarfner prior is a different density on the same data
    hv = GP(X, y, ls_prior="hvarfner")
    assert hv.neg_log_posterior(theta)[0] != pytest.approx(gp.neg_log_posterior(theta)[0])
    with pytest.raises(ValueError, match="ls_prior: expected one of optuna, hvarfner"):
        GP(X, y, ls_prior="gamma")


def test_yeo_johnson_fits_the_likelihood_exponent_and_keeps_the_order():
    rng = np.random.default_rng(1)
    y = -np.exp(rng.normal(0, 1.5, 40))  # scores of a minimisation with a long bad tail
    w = OutputWarp("yeo-johnson").fit(y)
    z = (y - y.mean()) / y.std()
    _, lam = yeojohnson(z)  # scipy's maximum-likelihood exponent of the standardised scores
    assert w.lam == pytest.approx(lam, rel=1e-4) and w.lam != pytest.approx(1.0)
    order = np.argsort(y)
    assert np.all(np.diff(w.forward(y)[order]) > 0)  # strictly increasing: the best trial stays the best
    # the transform by hand (Yeo and Johnson, 2000) at the fitted exponent, both branches
    pos, hand = z >= 0, np.empty_like(z)
    hand[pos] = ((z[pos] + 1) ** w.lam - 1) / w.lam
    hand[~pos] = -((1 - z[~pos]) ** (2 - w.lam) - 1) / (2 - w.lam)
    np.testing.assert_allclose(w.forward(y), hand, rtol=1e-9, atol=1e-12)
    # the warped scores are closer to Gaussian than the raw ones (smaller |skewness|)
    from scipy.stats import skew
    assert abs(skew(w.forward(y))) < abs(skew(y))


def test_yeo_johnson_on_extreme_scores_stays_finite_and_ordered():
    import warnings

    for y in (np.array([-1e150, 0.0, 1.0, 2.0]), np.array([1e100, 0.0, 1.0, 2.0, -5.0]), np.full(4, 3.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            w = OutputWarp("yeo-johnson").fit(y)
            f = w.forward(y)
        assert np.all(np.isfinite(f)) and np.all(np.diff(f[np.argsort(y)]) >= 0)


def test_no_warping_is_the_identity():
    y = np.array([3.0, -1.0, 10.0, 3.0, 0.5])
    w = OutputWarp("none").fit(y)
    np.testing.assert_allclose(w.forward(y), y)
    with pytest.raises(ValueError, match="output_warping: expected one of none, yeo-johnson"):
        OutputWarp("copula")


def test_bo_option_errors_are_one_line_and_name_the_key():
    from gml_core.api import ConfigError, structure

    for bad, key in (({"length_scale_prior": "gamma"}, "searcher.length_scale_prior"),
                     ({"output_warping": "copula"}, "searcher.output_warping"),
                     ({"n_initial_points": 0}, "searcher.n_initial_points")):
        with pytest.raises(ConfigError, match=key) as err:
            structure(bad, BOOptions, path="searcher")
        assert "\n" not in str(err.value).strip()
        with pytest.raises(ConfigError, match=key):
            BOOptions(**bad)
    assert structure({"n_initial_points": None}, BOOptions, path="searcher").n_initial_points is None


def test_output_warping_still_loads_its_former_boolean_values():
    from gml_core.api import ConfigError, structure

    assert structure({"output_warping": True}, BOOptions, path="searcher").output_warping == "yeo-johnson"
    assert structure({"output_warping": False}, BOOptions, path="searcher").output_warping == "none"
    with pytest.raises(ConfigError, match="searcher.output_warping: expected one of none, yeo-johnson, got 3"):
        structure({"output_warping": 3}, BOOptions, path="searcher")


def _first_model_fit(space, options):
    s = BOSearcher(space, options, optimize_mode="minimize", seed=0)
    fits = []
    real_model = s._model
    s._model = lambda X, y, running: fits.append(len(X)) or real_model(X, y, running)
    for i in range(20):
        p = s.suggest([])
        s.observe(p, sum((v - 0.3) ** 2 for v in p.values()))
        if fits:
            return i, fits[0]
    return None, None


@pytest.mark.parametrize("d, n", [(1, 5), (2, 5), (3, 6), (6, 12)])
def test_initial_points_default_is_max_5_2d(d, n):
    space = SearchSpace([Dim(f"x{i}", "Real", 0.0, 1.0) for i in range(d)])
    assert BOSearcher(space).n_initial == n
    # the first GP fit is for suggestion n + 1, on the n random trials
    assert _first_model_fit(space, BOOptions(n_initial_points=None)) == (n, n)
    assert _first_model_fit(space, BOOptions(n_initial_points=3)) == (3, 3)


def _skewed_run(searcher, power=2):
    def fn(p):  # power 2: a squared quadratic, values 1 to ~1e3, heavily skewed
        return 1.0 + sum((p[f"x{i}"] - 0.3 * i) ** 2 for i in range(4)) ** power

    for _ in range(22):
        p = searcher.suggest([])
        searcher.observe(p, fn(p))
    return min(r for _, r in searcher.history) - 1.0


def test_defaults_beat_random_on_a_skewed_4d_function():
    from gml_hpo.searchers.random_search import RandomSearcher

    space = SearchSpace([Dim(f"x{i}", "Real", -2.0, 2.0) for i in range(4)])
    bo = [_skewed_run(BOSearcher(space, optimize_mode="minimize", seed=s)) for s in range(3)]
    rnd = [_skewed_run(RandomSearcher(space, optimize_mode="minimize", seed=s)) for s in range(3)]
    assert max(bo) < 0.1 and np.log10(bo).mean() < np.log10(rnd).mean() - 1.0, (bo, rnd)


def test_no_warping_and_the_hvarfner_prior_improve_on_a_quadratic():
    space = SearchSpace([Dim(f"x{i}", "Real", -2.0, 2.0) for i in range(4)])
    s = BOSearcher(space, BOOptions(output_warping="none", length_scale_prior="hvarfner"),
                   optimize_mode="minimize", seed=1)
    best = _skewed_run(s, power=1)
    assert best < 0.5 * (min(r for _, r in s.history[:s.n_initial]) - 1.0), best
