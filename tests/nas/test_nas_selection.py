"""gml_nas.selection: posterior-mean scores that undo the winner's curse of a noisy search split."""

from __future__ import annotations

import numpy as np
import pytest

from gml_core.api import Categorical, Int
from gml_nas.selection import architecture_codes, binomial_noise_var, posterior_scores, shrunk_ranking
from gml_nas.space import SearchSpace


def test_binomial_noise_var_by_hand():
    assert binomial_noise_var(90.0, 6000) == pytest.approx(1e4 * 0.9 * 0.1 / 6000)  # 0.15 %^2
    assert binomial_noise_var(100.0, 100) > 0  # kept off the boundary: a perfect score is still uncertain


def test_architecture_codes_are_ordinal_positions():
    space = SearchSpace({"w": Categorical([8, 16, 24]), "d": Int(1, 3), "k": Categorical([3])})
    codes = architecture_codes(space, [{"w": 8, "d": 3, "k": 3}, {"w": 16, "d": 2, "k": 3}])
    assert codes.tolist() == [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]


def test_posterior_limits():
    """Tiny noise: the scores themselves; noise far above their spread: (nearly) one common value."""
    rng = np.random.default_rng(0)
    codes = rng.uniform(size=(30, 3))
    scores = 80 + 5 * codes[:, 0] + rng.normal(0, 0.5, 30)
    exact = posterior_scores(codes, scores, np.full(30, 1e-6))
    assert np.abs(exact - scores).max() < 0.05
    flat = posterior_scores(codes, scores, np.full(30, 1e4))
    assert flat.std() < 0.05 * scores.std()
    assert flat.mean() == pytest.approx(scores.mean(), abs=0.5)


def _simulate(seed: int, n: int = 60, d: int = 4, sigma: float = 0.6):
    rng = np.random.default_rng(seed)
    codes = rng.uniform(size=(n, d))
    truth = 85 + 2.0 * codes[:, 0] + 1.0 * np.sin(3 * codes[:, 1])  # smooth in the architecture
    return codes, truth, truth + rng.normal(0, sigma, n), np.full(n, sigma ** 2)


def test_posterior_undoes_the_winners_curse():
    """Over repeated noisy searches: the posterior's pick is better in truth, its estimate of that pick is not
    inflated the way the raw maximum is, and its estimates are closer to the truth overall."""
    picked_raw, picked_post, bias_raw, bias_post, err_raw, err_post = [], [], [], [], [], []
    for seed in range(25):
        codes, truth, scores, noise = _simulate(seed)
        post = posterior_scores(codes, scores, noise)
        i, j = int(np.argmax(scores)), int(np.argmax(post))
        picked_raw.append(truth[i])
        picked_post.append(truth[j])
        bias_raw.append(scores[i] - truth[i])
        bias_post.append(post[j] - truth[j])
        err_raw.append(np.mean((scores - truth) ** 2))
        err_post.append(np.mean((post - truth) ** 2))
    assert np.mean(picked_post) > np.mean(picked_raw)
    assert np.mean(bias_raw) > 0.5  # the raw maximum overstates its subnet by most of a noise s.d.
    assert abs(np.mean(bias_post)) < 0.5 * np.mean(bias_raw)
    assert np.mean(err_post) < 0.5 * np.mean(err_raw)


def test_shrunk_ranking_on_subnets():
    space = SearchSpace({"w": Categorical([8, 16, 24, 32]), "d": Int(1, 4)})
    subnets = [{"w": w, "d": d} for w in (8, 16, 24, 32) for d in (1, 2, 3, 4)]
    scores = [80.0 + 0.1 * s["w"] + 0.5 * s["d"] for s in subnets]
    scores[5] += 3.0  # one score lifted far beyond its neighbours' on 200 images
    post = shrunk_ranking(space, subnets, scores, n_images=200)
    assert len(post) == len(scores)
    assert post[5] < scores[5] - 1.0
    assert shrunk_ranking(space, subnets[:2], scores[:2], n_images=200) == scores[:2]  # too few to model
