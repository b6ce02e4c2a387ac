"""A small exact Gaussian process (Matern 5/2, ARD) fitted by MAP, and log expected improvement.

Written on numpy/scipy because the libraries fall short for this use: scikit-learn's GP
(used by scikit-optimize) fits hyper-parameters by maximum likelihood only (no priors,
erratic with 10-40 points) and gives no input gradients of the posterior; BoTorch would
do it but pulls torch + gpytorch into every suggestion (hundreds of ms). Here one fit and
one acquisition optimisation take tens of ms for 50 observations.

Model: y (standardised) ~ GP(0, s * matern52(r)) + noise, r^2 = sum_i (x_i - x'_i)^2 / l_i^2.
Hyper-parameters theta = log(l_1..l_d, s, noise) get priors (on the length scales Optuna's
GPSampler prior or the dimension-scaled log-normal of Hvarfner et al., "Vanilla Bayesian
Optimization Performs Great in High Dimensions", ICML 2024, as in BoTorch; Gamma densities on
s and noise as in Optuna's GPSampler; all written in log space) and are fitted by L-BFGS-B on the log posterior with
analytic gradients. The noise floor is low (1e-8 of the standardised variance) because
objectives are mostly deterministic and their range can be wide.

log EI follows Ament et al., "Unexpected Improvements to Expected Improvement" (NeurIPS
2023): log h(z) with h(z) = phi(z) + z Phi(z) evaluated without underflow for very negative
z, so the acquisition keeps useful gradients far from the incumbent.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import erfcx, log_ndtr

SQRT5 = math.sqrt(5.0)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_LOG_SQRT_PI_2 = 0.5 * math.log(math.pi / 2)
JITTER = 1e-8


def matern52(X1: np.ndarray, X2: np.ndarray, ls: np.ndarray, scale: float) -> np.ndarray:
    D = (X1[:, None, :] - X2[None, :, :]) / ls
    r = np.sqrt(np.maximum((D ** 2).sum(-1), 0.0))
    return scale * (1.0 + SQRT5 * r + (5.0 / 3.0) * r ** 2) * np.exp(-SQRT5 * r)


def log_h(z: np.ndarray) -> np.ndarray:
    """log(phi(z) + z Phi(z)), accurate for every z (Ament et al. 2023, eq. 9)."""
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    mid = z > -1.0
    zm = z[mid]
    out[mid] = np.log(np.exp(-0.5 * zm ** 2 - _LOG_SQRT_2PI) + zm * np.exp(log_ndtr(zm)))
    low = ~mid & (z > -1e6)
    zl = z[low]
    t = np.log(erfcx(-zl / math.sqrt(2.0)) * np.abs(zl)) + _LOG_SQRT_PI_2  # < 0
    log1mexp = np.where(t > -math.log(2.0), np.log(-np.expm1(t)), np.log1p(-np.exp(t)))
    out[low] = -0.5 * zl ** 2 - _LOG_SQRT_2PI + log1mexp
    far = z <= -1e6
    out[far] = -0.5 * z[far] ** 2 - _LOG_SQRT_2PI - 2.0 * np.log(-z[far])
    return out


def _gamma_logpdf(theta: np.ndarray, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """log Gamma(a, rate b) density of p = exp(theta) (up to a constant) and its theta-gradient.

    No Jacobian term: the mode stays that of the density of p, (a - 1) / b."""
    p = np.exp(theta)
    return (a - 1.0) * theta - b * p, (a - 1.0) - b * p


def hvarfner_log_prior(theta_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The dimension-scaled log-normal of Hvarfner et al. (2024), LogNormal(sqrt(2) + log(d) / 2,
    variance 3) on each l, written as a density of l (no Jacobian, like the Gamma priors): in
    theta = log l it is -(theta - mu)^2 / 6 - theta (+ const). Allows long length scales."""
    mu = math.sqrt(2.0) + 0.5 * math.log(len(theta_l))
    return -(theta_l - mu) ** 2 / 6.0 - theta_l, -(theta_l - mu) / 3.0 - 1.0


def optuna_log_prior(theta_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The length-scale prior of Optuna's GPSampler, -(0.1 / lam + 0.1 lam) with lam = 1 / l^2
    (unnormalised, no Jacobian), i.e. -0.1 (l^2 + 1 / l^2): mode at l = 1, whatever the dimension."""
    a, b = np.exp(2.0 * theta_l), np.exp(-2.0 * theta_l)
    return -0.1 * (a + b), -0.2 * (a - b)


LS_PRIORS = {"optuna": optuna_log_prior, "hvarfner": hvarfner_log_prior}


class GP:
    """Exact GP regression on inputs in [0, 1]^d; ``fit`` then ``posterior``/``log_ei``."""

    # priors: (a, rate) of Gamma densities; bounds of log hyper-parameters
    SCALE_PRIOR = (2.0, 0.5)
    NOISE_PRIOR = (1.1, 30.0)
    LS_BOUNDS = (math.log(0.01), math.log(20.0))
    SCALE_BOUNDS = (math.log(0.01), math.log(50.0))
    # noise floor (variance of the standardised scores): 1e-8, not Optuna's 1e-6. With a wide
    # range of values (Branin: 0.4-300) a floor of 1e-6 is a noise of ~0.05 in the objective's
    # units, which smooths away the differences near the optimum (measured: Branin mean log10
    # regret at 50 trials -4.0 with 1e-6, -5.4 with 1e-8; docs/benchmarks/hpo.md)
    NOISE_BOUNDS = (math.log(1e-8), math.log(1.0))

    def __init__(self, X: np.ndarray, y: np.ndarray, ls_prior: str = "optuna"):
        if ls_prior not in LS_PRIORS:
            raise ValueError(f"ls_prior: expected one of {', '.join(LS_PRIORS)}, got {ls_prior!r}")
        self.ls_prior = ls_prior
        self.X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        self.y_mean = float(y.mean())
        self.y_std = float(y.std()) or 1.0
        self.y = (y - self.y_mean) / self.y_std
        d = self.X.shape[1]
        self.theta = np.concatenate([np.full(d, math.log(0.5)), [0.0, math.log(1e-3)]])

    # -- hyper-parameters ------------------------------------------------------------
    def ls_log_prior(self, theta_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log prior of the length scales (theta = log l, per dimension) and its gradient."""
        return LS_PRIORS[self.ls_prior](theta_l)

    def neg_log_posterior(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """-(log marginal likelihood + log prior) and its gradient."""
        X, y, d = self.X, self.y, self.X.shape[1]
        ls, scale, noise = np.exp(theta[:d]), math.exp(theta[d]), math.exp(theta[d + 1])
        n = len(y)
        D2 = ((X[:, None, :] - X[None, :, :]) / ls) ** 2  # n, n, d
        r = np.sqrt(D2.sum(-1))
        e = np.exp(-SQRT5 * r)
        Kf = scale * (1.0 + SQRT5 * r + (5.0 / 3.0) * r ** 2) * e
        K = Kf + (noise + JITTER) * np.eye(n)
        try:
            c = cho_factor(K, lower=True)
        except np.linalg.LinAlgError:
            return 1e10, np.zeros_like(theta)
        alpha = cho_solve(c, y)
        nll = 0.5 * y @ alpha + np.log(np.diag(c[0])).sum() + n * _LOG_SQRT_2PI
        W = cho_solve(c, np.eye(n)) - np.outer(alpha, alpha)
        grad = np.empty_like(theta)
        dk_dr = scale * (5.0 / 3.0) * (1.0 + SQRT5 * r) * e  # times D2_i gives dK/dlog l_i
        grad[:d] = 0.5 * np.einsum("ij,ij,ijk->k", W, dk_dr, D2)
        grad[d] = 0.5 * (W * Kf).sum()
        grad[d + 1] = 0.5 * noise * np.trace(W)
        lp_l, g_l = self.ls_log_prior(theta[:d])
        lp_s, g_s = _gamma_logpdf(theta[d:d + 1], *self.SCALE_PRIOR)
        lp_n, g_n = _gamma_logpdf(theta[d + 1:], *self.NOISE_PRIOR)
        grad[:d] -= g_l
        grad[d] -= g_s[0]
        grad[d + 1] -= g_n[0]
        return float(nll - lp_l.sum() - lp_s.sum() - lp_n.sum()), grad

    def fit(self, starts: list[np.ndarray] | None = None) -> "GP":
        """MAP hyper-parameters (L-BFGS-B from the default and any given starting points)."""
        d = self.X.shape[1]
        bounds = [self.LS_BOUNDS] * d + [self.SCALE_BOUNDS, self.NOISE_BOUNDS]
        best = None
        for t0 in [self.theta] + list(starts or []):
            t0 = np.clip(t0, [b[0] for b in bounds], [b[1] for b in bounds])
            res = minimize(self.neg_log_posterior, t0, jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": 200})
            if best is None or res.fun < best.fun:
                best = res
        return self.set_theta(best.x)

    def set_theta(self, theta: np.ndarray) -> "GP":
        d = self.X.shape[1]
        self.theta = np.asarray(theta, dtype=float)
        self.ls, self.scale, self.noise = np.exp(self.theta[:d]), math.exp(self.theta[d]), math.exp(self.theta[d + 1])
        K = matern52(self.X, self.X, self.ls, self.scale) + (self.noise + JITTER) * np.eye(len(self.X))
        self.L = np.linalg.cholesky(K)
        self.alpha = cho_solve((self.L, True), self.y)
        return self

    def condition(self, Xp: np.ndarray, yp: np.ndarray) -> "GP":
        """A copy with extra (fantasy) observations ``yp`` (standardised scale), same hyper-parameters."""
        g = GP.__new__(GP)
        g.X, g.y = np.vstack([self.X, Xp]), np.concatenate([self.y, yp])
        g.y_mean, g.y_std, g.ls_prior = self.y_mean, self.y_std, self.ls_prior
        return g.set_theta(self.theta)

    def fantasize(self, Xp: np.ndarray, n: int, rng: np.random.Generator) -> "GP":
        """A copy conditioned on ``n`` joint posterior samples at ``Xp`` (same hyper-parameters):
        ``alpha`` gets one column per sample, so ``posterior`` gives one mean per sample (the
        variance does not depend on the values) and ``log_ei`` averages EI over the samples,
        each against its own incumbent (``best`` or a better fantasised value). This is the
        Monte-Carlo form of the greedy step of q-EI: E[max(f(x) - max(best, f(Xp)), 0)]."""
        Xp = np.atleast_2d(Xp)
        Ks = matern52(Xp, self.X, self.ls, self.scale)
        v = solve_triangular(self.L, Ks.T, lower=True)
        cov = matern52(Xp, Xp, self.ls, self.scale) - v.T @ v
        cov = 0.5 * (cov + cov.T)  # samples of the latent f: the running trials are not observed yet
        w, U = np.linalg.eigh(cov)  # eigh, not Cholesky: cov may be numerically singular
        samples = (Ks @ self.alpha)[:, None] + (U * np.sqrt(np.maximum(w, 0.0))) @ rng.standard_normal((len(Xp), n))
        g = self.condition(Xp, samples.mean(1))
        g.alpha = cho_solve((g.L, True), np.vstack([np.repeat(self.y[:, None], n, 1), samples]))
        g.fantasies = samples  # (p, n)
        g.fantasy_best = samples.max(0)  # (n,): each sample's best fantasised value
        return g

    # -- predictions -----------------------------------------------------------------
    def posterior(self, Xs: np.ndarray, grad: bool = False):
        """Mean and standard deviation (standardised scale) at rows of ``Xs``; with ``grad``
        also their gradients with respect to ``Xs`` (shape (m, d) each)."""
        Xs = np.atleast_2d(Xs)
        Ks = matern52(Xs, self.X, self.ls, self.scale)  # m, n
        mu = Ks @ self.alpha
        v = solve_triangular(self.L, Ks.T, lower=True)
        var = np.maximum(self.scale - (v ** 2).sum(0), 1e-12)
        sd = np.sqrt(var)
        if not grad:
            return mu, sd
        Diff = Xs[:, None, :] - self.X[None, :, :]  # m, n, d
        r = np.sqrt(((Diff / self.ls) ** 2).sum(-1))
        J = -(self.scale * (5.0 / 3.0) * (1.0 + SQRT5 * r) * np.exp(-SQRT5 * r))[..., None] * Diff / self.ls ** 2
        dmu = np.einsum("mnd,n...->m...d", J, self.alpha)  # (m, d), or (m, k, d) with fantasies
        Kinv_ks = cho_solve((self.L, True), Ks.T).T  # m, n
        dvar = -2.0 * np.einsum("mnd,mn->md", J, Kinv_ks)
        dsd = dvar / (2.0 * sd[:, None])
        return mu, sd, dmu, dsd

    def log_ei(self, Xs: np.ndarray, best: float, grad: bool = False):
        """log expected improvement over ``best`` (standardised scale; higher y is better)."""
        if self.alpha.ndim == 2:
            return self._log_ei_fantasies(Xs, best, grad)
        if not grad:
            mu, sd = self.posterior(Xs)
            z = (mu - best) / sd
            return log_h(z) + np.log(sd)
        mu, sd, dmu, dsd = self.posterior(Xs, grad=True)
        z = (mu - best) / sd
        lh = log_h(z)
        dlh = np.exp(log_ndtr(z) - lh)  # d log h / dz = Phi(z) / h(z)
        dz = (dmu - z[:, None] * dsd) / sd[:, None]
        return lh + np.log(sd), dlh[:, None] * dz + dsd / sd[:, None]

    def _log_ei_fantasies(self, Xs: np.ndarray, best: float, grad: bool):
        """log of the mean EI over the fantasies of ``fantasize`` (and its gradient)."""
        bests = np.maximum(best, self.fantasy_best)  # (k,)
        k = len(bests)
        out = self.posterior(Xs, grad=grad)
        mu, sd = out[0], out[1]  # (m, k), (m,)
        z = (mu - bests) / sd[:, None]
        lh = log_h(z)
        top = lh.max(1, keepdims=True)
        wts = np.exp(lh - top)
        total = wts.sum(1, keepdims=True)
        value = (top + np.log(total))[:, 0] - math.log(k) + np.log(sd)
        if not grad:
            return value
        dmu, dsd = out[2], out[3]  # (m, k, d), (m, d)
        dlh = np.exp(log_ndtr(z) - lh)  # (m, k)
        dz = (dmu - z[..., None] * dsd[:, None, :]) / sd[:, None, None]
        wts /= total
        return value, np.einsum("mk,mk,mkd->md", wts, dlh, dz) + dsd / sd[:, None]
