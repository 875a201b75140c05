"""Empirical privacy audits: evidence that a DP claim is not false.

Run a mechanism many times on two neighbouring data sets ``D`` and ``D'`` (one person added),
reduce each output to a number with a test statistic, and pick a threshold ``τ``. For an
(ε, δ)-DP mechanism every event ``S`` satisfies ``P[M(D') ∈ S] <= e^ε P[M(D) ∈ S] + δ``, so

    ε >= log((p' - δ) / p)      with p' = P[T(M(D')) > τ],  p = P[T(M(D)) > τ]

(and the same with the complementary event and the roles swapped). With Clopper–Pearson
bounds — ``p'`` from below, ``p`` from above — this is a lower bound on the true ε that holds
with the stated confidence. A lower bound above the claimed ε proves the claim wrong; a
broken mechanism (noise too small) must be flagged, which shows the audit has power.

The threshold is chosen on one half of the runs and evaluated on the other half, so the
choice does not bias the bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "AuditResult",
    "audit_samples",
    "clopper_pearson",
    "epsilon_lower_bound",
    "run_audit",
]


def clopper_pearson(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided Clopper–Pearson interval for a binomial proportion.

    Examples
    --------
    >>> lo, hi = clopper_pearson(50, 100)
    >>> round(lo, 4), round(hi, 4)
    (0.3983, 0.6017)
    """
    a = 1.0 - confidence
    lo = 0.0 if hits == 0 else float(stats.beta.ppf(a / 2, hits, n - hits + 1))
    hi = 1.0 if hits == n else float(stats.beta.ppf(1 - a / 2, hits + 1, n - hits))
    return lo, hi


def epsilon_lower_bound(
    hits_a: int, n_a: int, hits_b: int, n_b: int, delta: float = 0.0,
    confidence: float = 0.95,
) -> float:
    """Lower bound on ε from the rates of one event under two neighbouring data sets:
    ``log((lower(p_a) - δ) / upper(p_b))``, or 0 when that is not positive.

    Examples
    --------
    >>> round(epsilon_lower_bound(4000, 10000, 500, 10000), 2)
    1.97
    """
    lo_a, _ = clopper_pearson(hits_a, n_a, confidence)
    _, hi_b = clopper_pearson(hits_b, n_b, confidence)
    if lo_a - delta <= 0 or hi_b <= 0:
        return 0.0
    return max(0.0, math.log((lo_a - delta) / hi_b))


@dataclass(frozen=True)
class AuditResult:
    """Outcome of one audit."""

    claimed_epsilon: float
    delta: float
    epsilon_lower: float
    """Lower bound on the true ε (holds with probability ``confidence``)."""
    threshold: float
    runs: int
    confidence: float

    @property
    def violated(self) -> bool:
        """True when the data prove the claimed ε is too small."""
        return self.epsilon_lower > self.claimed_epsilon

    def __str__(self) -> str:
        verdict = "VIOLATED" if self.violated else "consistent"
        return (f"claimed ε = {self.claimed_epsilon:.3g} (δ = {self.delta:.2g}); empirical "
                f"lower bound ε >= {self.epsilon_lower:.3f} from {self.runs} runs per data set "
                f"at {self.confidence:.1%} confidence: {verdict}")


def _best_threshold(
    a: NDArray[np.float64], b: NDArray[np.float64], delta: float, confidence: float
) -> tuple[float, int]:
    """Threshold (and direction) with the largest lower bound on the selection half."""
    both = np.concatenate([a, b])
    levels = np.concatenate([np.geomspace(5e-4, 0.5, 40), 1 - np.geomspace(5e-4, 0.5, 40)])
    candidates = np.unique(np.quantile(both, levels))
    best, best_tau, best_dir = -1.0, float(candidates[0]), 1
    for tau in candidates:
        for direction in (1, -1):
            ha = int(np.sum(direction * a > direction * tau))
            hb = int(np.sum(direction * b > direction * tau))
            for x, y in ((ha, hb), (hb, ha)):
                eps = epsilon_lower_bound(x, a.size, y, b.size, delta, confidence)
                if eps > best:
                    best, best_tau, best_dir = eps, float(tau), direction
    return best_tau, best_dir


def audit_samples(
    stat_d: ArrayLike, stat_d_prime: ArrayLike, *, claimed_epsilon: float, delta: float = 0.0,
    confidence: float = 0.95,
) -> AuditResult:
    """Audit from precomputed test statistics of runs on ``D`` and on ``D'``.

    Half of each sample picks the threshold, the other half bounds ε (both orders of the
    two data sets and both tails are tried on the selection half).

    Examples
    --------
    >>> from persona.privacy import discrete_laplace
    >>> n = 40_000
    >>> d = discrete_laplace(4.0, n).astype(float)           # true ε = 1/4 for a shift of 1
    >>> d2 = 1 + discrete_laplace(4.0, n).astype(float)
    >>> audit_samples(d, d2, claimed_epsilon=0.5, confidence=0.999).violated
    False
    >>> d3 = 1 + discrete_laplace(0.5, n).astype(float)      # the claim is wrong: ε = 2
    >>> audit_samples(discrete_laplace(0.5, n).astype(float), d3, claimed_epsilon=0.5).violated
    True
    """
    a = np.asarray(stat_d, dtype=np.float64)
    b = np.asarray(stat_d_prime, dtype=np.float64)
    ha, hb = a.size // 2, b.size // 2
    tau, direction = _best_threshold(a[:ha], b[:hb], delta, confidence)
    ea, eb = direction * a[ha:] > direction * tau, direction * b[hb:] > direction * tau
    na, nb = a.size - ha, b.size - hb
    lb = max(
        epsilon_lower_bound(int(eb.sum()), nb, int(ea.sum()), na, delta, confidence),
        epsilon_lower_bound(int(ea.sum()), na, int(eb.sum()), nb, delta, confidence),
    )
    return AuditResult(claimed_epsilon=float(claimed_epsilon), delta=float(delta),
                       epsilon_lower=lb, threshold=tau, runs=int(min(a.size, b.size)),
                       confidence=confidence)


def run_audit(
    mechanism: Callable[[object, int], ArrayLike], d: object, d_prime: object, *,
    runs: int, claimed_epsilon: float, delta: float = 0.0,
    statistic: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None = None,
    confidence: float = 0.95,
) -> AuditResult:
    """Run ``mechanism(data, runs)`` on both data sets and audit the outputs.

    Parameters
    ----------
    mechanism
        ``mechanism(data, runs)`` returns ``runs`` independent outputs, as an array whose
        first axis is the run.
    d, d_prime
        Neighbouring data sets: ``d_prime`` is ``d`` with one person added.
    runs
        Runs per data set.
    claimed_epsilon, delta
        The claim under test.
    statistic
        Maps the outputs (runs × ...) to one number per run; by default the outputs are
        projected on the difference of the two data sets' mean outputs (the likelihood-ratio
        direction for Gaussian noise).
    confidence
        Confidence of the Clopper–Pearson intervals.

    Examples
    --------
    >>> from persona.privacy import discrete_gaussian
    >>> mech = lambda x, n: x + discrete_gaussian(4, n)      # sensitivity 1
    >>> r = run_audit(mech, 0, 1, runs=20_000, claimed_epsilon=2.0, delta=1e-6,
    ...               confidence=0.999)
    >>> r.violated
    False
    """
    out_d = np.asarray(mechanism(d, runs), dtype=np.float64).reshape(runs, -1)
    out_p = np.asarray(mechanism(d_prime, runs), dtype=np.float64).reshape(runs, -1)
    if statistic is None:
        half = runs // 2
        direction = out_p[:half].mean(axis=0) - out_d[:half].mean(axis=0)
        norm = np.linalg.norm(direction)
        direction = direction / norm if norm > 0 else direction
        s_d, s_p = out_d @ direction, out_p @ direction
    else:
        s_d = np.asarray(statistic(out_d), dtype=np.float64)
        s_p = np.asarray(statistic(out_p), dtype=np.float64)
    return audit_samples(s_d, s_p, claimed_epsilon=claimed_epsilon, delta=delta,
                         confidence=confidence)
