"""TPESearcher (densities vs a hand-written Parzen estimator, the split, behaviour) and
AshaAssessor (promotion rule and Hyperband brackets, hand-derived)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import truncnorm

from gml_hpo.assessors.asha import AshaAssessor, AshaOptions
from gml_hpo.searchers.random_search import RandomSearcher
from gml_hpo.searchers.tpe import Parzen, TPEOptions, TPESearcher
from gml_hpo.space import Dim, SearchSpace


def mixed_space():
    return SearchSpace([Dim("lr", "Real", 1e-4, 1e-1, log=True), Dim("opt", "Categorical", values=("a", "b", "c"))])


def test_tpe_split_and_densities_match_a_hand_computed_parzen_estimator():
    space = mixed_space()
    o = TPEOptions(n_initial_points=1, gamma=0.25, bandwidth_rule="fixed", bandwidth=0.3, categorical_eps=0.2)
    s = TPESearcher(space, o, optimize_mode="minimize", seed=0)
    hist = [({"lr": 1e-3, "opt": "a"}, 0.5), ({"lr": 1e-2, "opt": "b"}, 0.1), ({"lr": 1e-4, "opt": "c"}, 0.9),
            ({"lr": 1e-1, "opt": "a"}, 0.7), ({"lr": 3e-3, "opt": "b"}, None)]
    for p, r in hist:
        s.observe(p, r)
    good, bad = s.split([{"lr": 5e-2, "opt": "c"}])
    # 4 successes, ceil(0.25 * 4) = 1 good: the lowest loss (lr 1e-2, 'b'); failed and running are bad
    assert good.shape[0] == 1 and good[0][0] == pytest.approx(2 / 3) and list(good[0][1:]) == [0, 1, 0]
    assert bad.shape[0] == 5
    n_dims = 2
    x = np.array([[0.5, 0.0, 1.0, 0.0], [0.9, 1.0, 0.0, 0.0]])  # lr unit 0.5 'b'; lr unit 0.9 'a'
    for group in (good, bad):
        parzen = Parzen(s.enc, group, o, n_dims)
        n = len(group)
        # fixed rule: 0.3 n^(-1/(D+4)), floored at 1/(n+1) (magic clip) and min_bandwidth
        bw = max(0.3 * n ** (-1 / (n_dims + 4)), 1 / (n + 1), o.min_bandwidth)
        expect = []
        for xi in x:
            cat = int(np.argmax(xi[1:]))
            # prior component: truncated N(0.5, 1) on [0, 1], uniform choice; weight 1 / (n + 1)
            dens = truncnorm.pdf(xi[0], -0.5, 0.5, loc=0.5, scale=1.0) / 3
            for c in group:
                kernel = truncnorm.pdf(xi[0], (0 - c[0]) / bw, (1 - c[0]) / bw, loc=c[0], scale=bw)
                own = int(np.argmax(c[1:]))
                dens += kernel * (0.8 if cat == own else 0.1)
            expect.append(math.log(dens / (n + 1)))
        np.testing.assert_allclose(parzen.log_pdf(x), expect, rtol=1e-10)
        # samples follow the density: the histogram of the Real coordinate matches its marginal
        smp = parzen.sample(np.random.default_rng(0), 20000)
        assert np.all((smp[:, 0] >= 0) & (smp[:, 0] <= 1)) and np.all(smp[:, 1:].sum(1) == 1)
        hist_, edges = np.histogram(smp[:, 0], bins=10, range=(0, 1), density=True)
        mids = (edges[:-1] + edges[1:]) / 2
        marg = truncnorm.pdf(mids, -0.5, 0.5, loc=0.5, scale=1.0) + sum(
            truncnorm.pdf(mids, -c[0] / bw, (1 - c[0]) / bw, loc=c[0], scale=bw) for c in group)
        np.testing.assert_allclose(hist_, marg / (n + 1), atol=0.12)


def test_neighbour_bandwidths_match_a_hand_computation():
    from gml_hpo.searchers.tpe import _neighbour_gaps

    # column 0 sorted 0.1 0.4 0.5 0.9: gaps 0.3 0.1 0.4; each point takes its larger gap, one-sided at the ends
    # column 1 (another order) 0.7 0.2 0.25 0.0: sorted 0.0 0.2 0.25 0.7, gaps 0.2 0.05 0.45
    mu = np.array([[0.4, 0.7], [0.1, 0.2], [0.9, 0.25], [0.5, 0.0]])
    np.testing.assert_allclose(_neighbour_gaps(mu), [[0.3, 0.45], [0.3, 0.2], [0.4, 0.45], [0.4, 0.2]])
    space = SearchSpace([Dim("x", "Real", 0.0, 1.0), Dim("y", "Real", 0.0, 1.0)])
    s = TPESearcher(space, optimize_mode="minimize", seed=0)
    o = s.options
    assert o.bandwidth_rule == "neighbours"
    parzen = Parzen(s.enc, mu, o, 2)
    # every bandwidth here is above the floor 1 / (n + 1) = 0.2
    sig = np.array([[0.3, 0.45], [0.3, 0.2], [0.4, 0.45], [0.4, 0.2]])
    pts = np.array([[0.45, 0.3], [0.05, 0.95]])
    expect = []
    for p in pts:
        dens = truncnorm.pdf(p, -0.5, 0.5, loc=0.5, scale=1.0).prod()  # the prior component
        for c, sg in zip(mu, sig):
            dens += truncnorm.pdf(p, -c / sg, (1 - c) / sg, loc=c, scale=sg).prod()
        expect.append(math.log(dens / 5))
    np.testing.assert_allclose(parzen.log_pdf(pts), expect, rtol=1e-10)
    # a tight pair is floored at 1 / (n + 1)
    tight = Parzen(s.enc, np.array([[0.5, 0.5], [0.51, 0.52]]), o, 2)
    np.testing.assert_allclose(tight.sigma[1:], 1 / 3)


def test_univariate_marginals_match_a_hand_computation():
    space = mixed_space()
    o = TPEOptions(multivariate=False, categorical_eps=0.3)
    s = TPESearcher(space, o, optimize_mode="minimize", seed=0)
    centres = np.array([[0.2, 1, 0, 0], [0.7, 0, 0, 1], [0.6, 0, 0, 1]], dtype=float)
    parzen = Parzen(s.enc, centres, o, 2)
    x = np.array([[0.65, 0, 0, 1], [0.1, 0, 1, 0]], dtype=float)
    got = parzen.log_marginals(x)
    # sorted 0.2 0.6 0.7, gaps 0.4 0.1: 0.2 -> 0.4 (an end), 0.6 -> max(0.4, 0.1), 0.7 -> 0.1 lifted to 1 / (n + 1)
    sig = [0.4, 0.25, 0.4]
    for row, xi in zip(got, x):
        real = truncnorm.pdf(xi[0], -0.5, 0.5, loc=0.5, scale=1.0) + sum(
            truncnorm.pdf(xi[0], -c[0] / sg, (1 - c[0]) / sg, loc=c[0], scale=sg) for c, sg in zip(centres, sig))
        cat = int(np.argmax(xi[1:]))
        choice = 1 / 3 + sum(0.7 if int(np.argmax(c[1:])) == cat else 0.15 for c in centres)
        np.testing.assert_allclose(row, [math.log(real / 4), math.log(choice / 4)], rtol=1e-10)
    # the univariate searcher runs and stays in the space
    s = TPESearcher(space, TPEOptions(multivariate=False, n_initial_points=3, initial_design="random"), seed=0)
    for _ in range(12):
        p = s.suggest([])
        assert space.contains(p)
        s.observe(p, -abs(math.log10(p["lr"]) + 2) - (p["opt"] != "b"))


def test_tpe_proposes_the_best_ratio_among_its_candidates():
    space = SearchSpace([Dim("x", "Real", 0.0, 1.0)])
    s = TPESearcher(space, TPEOptions(n_initial_points=4), optimize_mode="minimize", seed=1)
    xs = (0.1, 0.3, 0.6, 0.9, 0.2, 0.8, 0.27, 0.15, 0.4, 0.5, 0.05, 0.7)
    for v in xs:
        s.observe({"x": v}, (v - 0.25) ** 2)
    n_issued = len(s.issued)
    p = s.suggest([])
    good, bad = s.split([])
    lg, lb = Parzen(s.enc, good, s.options, 1), Parzen(s.enc, bad, s.options, 1)
    # the same candidate draw: the proposal is the one with the largest log l - log g
    cands = lg.sample(np.random.default_rng([1, n_issued]), s.options.n_candidates)
    ratio = lg.log_pdf(cands) - lb.log_pdf(cands)
    assert p["x"] == pytest.approx(cands[np.argmax(ratio), 0])
    grid = np.linspace(0, 1, 201)[:, None]
    best_x = grid[np.argmax(lg.log_pdf(grid) - lb.log_pdf(grid)), 0]
    assert abs(p["x"] - best_x) < 0.15 and abs(p["x"] - 0.25) < 0.2, (p, best_x)


def _minimise(searcher, fn, budget, parallel=1):
    running, best = [], math.inf
    while len(searcher.history) < budget:
        while len(running) < parallel:
            running.append(searcher.suggest(running))
        done = running.pop(0)
        best = min(best, fn(done))
        searcher.observe(done, fn(done))
    return best


def test_tpe_beats_random_on_a_4d_quadratic_and_handles_mixed_spaces():
    space = SearchSpace([Dim(f"x{i}", "Real", -2.0, 2.0) for i in range(4)])

    def quad(p):
        return sum((p[f"x{i}"] - 0.3 * i) ** 2 for i in range(4))

    tpe = [_minimise(TPESearcher(space, optimize_mode="minimize", seed=s), quad, 60, parallel=2) for s in range(4)]
    rnd = [_minimise(RandomSearcher(space, optimize_mode="minimize", seed=s), quad, 60, parallel=2) for s in range(4)]
    assert np.median(tpe) < 0.5 * np.median(rnd), (tpe, rnd)
    space = mixed_space()
    s = TPESearcher(space, TPEOptions(n_initial_points=3), seed=0)
    for i in range(15):
        p = s.suggest([])
        assert space.contains(p)
        s.observe(p, None if i == 4 else -abs(math.log10(p["lr"]) + 2) - (p["opt"] != "b"))


def test_tpe_options_errors_name_the_key():
    from gml_core.api import ConfigError

    with pytest.raises(ConfigError, match="searcher.gamma"):
        TPEOptions(gamma=1.5)
    from gml_hpo.taskfile import _structure

    problems = []
    assert _structure({"bandwidth_rule": "silverman", "initial_design": "lhs"}, TPEOptions, "searcher", problems) is None
    assert ("searcher.bandwidth_rule", "expected one of 'neighbours', 'scott', 'fixed', got 'silverman'") in problems
    assert ("searcher.initial_design", "expected one of 'sobol', 'random', got 'lhs'") in problems


# -- ASHA / Hyperband -----------------------------------------------------------------

def test_asha_promotion_rule_hand_derived_maximize():
    a = AshaAssessor(AshaOptions(min_resource=1, reduction_factor=2, max_resource=8), optimize_mode="maximize")
    assert a.rung_steps(0) == [1, 2, 4]
    assert a.assess("t1", [0.5]) is False   # alone at rung 1: the best so far
    assert a.assess("t2", [0.4]) is True    # n=2, top floor(2/2)=1 is 0.5
    assert a.assess("t3", [0.7]) is False   # n=3, top 1 is itself
    assert a.assess("t4", [0.6]) is False   # n=4, top 2 = {0.7, 0.6}
    assert a.assess("t5", [0.55]) is True   # n=5, top 2 = {0.7, 0.6}
    assert a.assess("t1", [0.5, 0.6]) is False   # rung 2: alone
    assert a.assess("t1", [0.5, 0.6, 0.1]) is False  # step 3 is no rung; rung 2 already decided
    assert a.assess("t3", [0.7, 0.65]) is False  # n=2, top 1 = 0.65
    assert a.assess("t4", [0.6, 0.62]) is True   # n=3, top 1 = 0.65
    assert a.assess("t3", [0.7, 0.65, 0.7, 0.1]) is False  # rung 4: alone
    assert a.assess("t3", [0.7, 0.65, 0.7, 0.1, 0.0, 0.0, 0.0]) is False  # no rung at 8 = max_resource


def test_asha_minimize_and_restore_replay():
    a = AshaAssessor(AshaOptions(min_resource=2, reduction_factor=3), optimize_mode="minimize")
    assert a.rung_steps(0)[:3] == [2, 6, 18]
    a.trial_end("a", [3.0, 1.0, 0.9], True)
    a.trial_end("b", [3.0, 2.0], False)
    a.trial_end("c", [3.0, 1.5, 1.4], True)
    # rung 2 holds 1.0, 2.0, 1.5; with a 4th value n=4, top floor(4/3)=1: must beat 1.0
    assert a.assess("d", [9.0, 1.1]) is True
    assert a.assess("e", [9.0, 0.8]) is False
    b = AshaAssessor(AshaOptions(min_resource=2, reduction_factor=3), optimize_mode="minimize")
    for tid, h in (("a", [3.0, 1.0, 0.9]), ("b", [3.0, 2.0]), ("c", [3.0, 1.5, 1.4]), ("d", [9.0, 1.1]),
                   ("e", [9.0, 0.8])):
        b.trial_end(tid, h, True)
    assert b.rungs == a.rungs


def test_hyperband_brackets_follow_the_paper_table():
    a = AshaAssessor(AshaOptions(min_resource=1, reduction_factor=3, max_resource=9, brackets=3))
    # Li et al. (2018), R=9, eta=3: brackets of 9, 5 and 3 configurations starting at 1, 3, 9 epochs
    assert a.weights == [9, 5, 3]
    assert [a.rung_steps(b) for b in range(3)] == [[1, 3], [3], []]
    counts = np.bincount([a.bracket(f"trial-{i}") for i in range(17000)], minlength=3)
    np.testing.assert_allclose(counts / counts.sum(), np.array([9, 5, 3]) / 17, atol=0.02)
    assert a.bracket("trial-7") == a.bracket("trial-7")
    # a trial in the last bracket is never stopped
    last = next(f"t{i}" for i in range(100) if a.bracket(f"t{i}") == 2)
    assert a.assess(last, [0.0] * 9) is False


def test_asha_options_errors_name_the_key():
    from gml_core.api import ConfigError

    with pytest.raises(ConfigError, match="scheduler.assessor.reduction_factor"):
        AshaOptions(reduction_factor=1)
    with pytest.raises(ConfigError, match="scheduler.assessor.max_resource"):
        AshaOptions(min_resource=4, max_resource=4)


def test_search_init_default_searcher_follows_the_budget():
    from gml_hpo.cli.init_cmd import default_searcher, parse_arg

    small = dict(parse_arg(a) for a in ("bs=Categorical:32,64", "d=Int:2:6:2"))
    assert default_searcher(small, 6) == "GridSearcher"  # 2 x 3 points fit in 6 tries
    assert default_searcher(small, 5) == "BOSearcher"
    mixed = dict(parse_arg(a) for a in ("lr=Real:1e-4:1:log", "bs=Categorical:32,64"))
    assert default_searcher(mixed, 50) == "BOSearcher"
    assert default_searcher(mixed, 1000) == "TPESearcher"
