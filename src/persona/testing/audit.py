"""Empirical privacy audits: evidence that a DP claim is not false.

Run a mechanism many times on two neighbouring data sets ``D`` and ``D'`` (one person added),
reduce each output to a number with a test statistic ``T``, and look at the threshold tests
"say ``D'`` when ``T > τ``". Each test has a false-positive rate ``FPR = P[T(M(D)) > τ]`` and
a true-positive rate ``TPR = P[T(M(D')) > τ]``. Differential privacy is a limit on how good
such tests can be: this is the hypothesis-testing view of DP (Wasserman & Zhou 2010; Kairouz,
Oh & Viswanath 2015; Dong, Roth & Su, "Gaussian Differential Privacy", 2019/2022). Two audits
are offered; both bound the rates with Clopper–Pearson intervals (``TPR`` from below, ``FPR``
from above), so a lower bound on the privacy loss holds with the stated confidence.

**The ε audit** (:func:`audit_samples`, :func:`run_audit`). An (ε, δ)-DP mechanism has
``TPR <= e^ε FPR + δ`` for every test, so

    ε >= log((TPR - δ) / FPR)

(and the same with the complementary event and the roles swapped). This is the right audit
for pure DP (the discrete Laplace): its likelihood ratio is bounded by ``e^ε`` and the bound
is met, with rates far from 0, by the test ``T >= shift`` (the released value at or above the
neighbour's true value). With 40,000 runs a release at ε = 2 shows ε >= 1.8-1.95, and one with
half the noise (ε = 4) shows ε >= 3.6-3.8.

**The Gaussian-DP audit** (:func:`audit_gdp`, :func:`run_gdp_audit`). In the f-DP framework
of Dong, Roth & Su a mechanism's privacy is its *trade-off function*
``T(P, Q)(α) = inf {β : tests with FPR <= α and FNR = β}`` between the output distributions
``P = M(D)`` and ``Q = M(D')``: the smallest type II error at each type I error. The Gaussian
mechanism with L2 sensitivity Δ and noise scale σ has exactly the trade-off function of
``N(0, 1)`` against ``N(μ, 1)`` with ``μ = Δ/σ``:

    G_μ(α) = Φ(Φ⁻¹(1 - α) - μ),

and a mechanism is μ-GDP when ``T(M(D), M(D')) >= G_μ`` for all neighbours. Rewritten for one
test, μ-GDP says

    μ >= Φ⁻¹(TPR) - Φ⁻¹(FPR),

so a lower confidence bound ``μ_low = Φ⁻¹(TPR_low) - Φ⁻¹(FPR_high)`` above the claimed μ proves
the claim wrong. A zCDP release of total ρ made of Gaussian releases (persona's mechanisms,
composed over iterations: μ² adds up like 2ρ) is μ-GDP with ``μ = sqrt(2ρ)``; ``ρ = Δ²/(2σ²)``
for one release, so ``μ = Δ/σ``. The claim audited is therefore that of a *Gaussian*
mechanism: a general ρ-zCDP mechanism need not be ``sqrt(2ρ)``-GDP (randomized response at ε
is ``ε²/2``-zCDP but shows ``μ ≈ 1.25 ε``), so use this audit only on Gaussian releases. The
discrete Gaussian is Gaussian up to a relative excess in μ that vanishes with the scale in grid
units (0.05 % at 16 units; persona's noise is thousands of grid units wide, and OpenDP's ρ
already counts the rounding to the grid, about 0.1 % of Δ).

**Why the GDP audit has power where the ε audit has little.** A claim (ε, δ) with δ = 1e-6
constrains the Gaussian's likelihood ratio only in tails of probability about δ, which no
feasible number of runs reaches; at thresholds with observable rates the Gaussian's ratio is
far below ``e^ε``. At a claimed ε = 2 (μ = 0.42) the ε audit with 40,000 runs found ε >= 0.57
for the correct noise and only 1.67 with the noise halved (μ = 0.84, true ε ≈ 4): a
sensitivity off by a factor of 2 passed. For a Gaussian shift, by contrast, *every* threshold
has ``Φ⁻¹(TPR) - Φ⁻¹(FPR) = μ`` exactly, so the GDP audit can use the threshold between the
two means, where both rates are near 1/2 and best estimated, and compare with the claim at
that point of the trade-off curve. Near the middle each rate's ``Φ⁻¹`` has a standard error
of about ``1.25 / sqrt(n)`` from ``n`` evaluation runs per data set, so ``μ_low`` sits about
``2.5 z / sqrt(n)`` below the estimate (``z = 3.29`` at 99.9 % confidence) and the estimate
itself varies by about ``1.77 / sqrt(n)``. A claim wrong by a factor of 2 (true μ = 2 ×
claimed) is then flagged with probability ``1 - β`` once
``claimed μ · sqrt(n) > 2.5 z + 1.77 z_{1-β}``: at μ = 0.42 and power 0.9987 about 1,050
evaluation runs per data set, 2,100 in all. ``tests/test_privacy_audit.py`` measures it:
with 10,000 runs, μ_low ≈ 0.3 for the correct item counts and ≈ 0.7 with the noise halved.

**False alarms.** The threshold (and its direction) is chosen on one half of the runs and the
bound is computed on the other half, so the choice does not bias the bound. The two one-sided
Clopper–Pearson ends each fail with probability at most ``(1 - confidence) / 2``, so a
correct claim is flagged with probability at most ``1 - confidence`` per audit (0.1 % at the
default 0.999).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from persona.errors import ValidationError

__all__ = [
    "AuditResult",
    "GDPAuditResult",
    "audit_gdp",
    "audit_samples",
    "clopper_pearson",
    "epsilon_lower_bound",
    "gdp_mu",
    "mu_lower_bound",
    "rho_to_mu",
    "run_audit",
    "run_gdp_audit",
]

Statistic = Callable[[NDArray[np.float64]], NDArray[np.float64]]


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


def _candidates(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Thresholds for the ε audit: pooled quantiles, dense in the middle and geometric in
    both tails (where the likelihood ratio of a pure-DP mechanism may be largest)."""
    both = np.concatenate([a, b])
    tails = np.geomspace(5e-4, 0.5, 40)
    levels = np.concatenate([tails, 1 - tails, np.linspace(0.02, 0.98, 97)])
    return np.unique(np.quantile(both, levels))


_GDP_LEVELS = np.linspace(0.05, 0.95, 19)
"""Pooled quantile levels tried as thresholds by the GDP audit. For a Gaussian shift every
threshold has the same ``Φ⁻¹(TPR) - Φ⁻¹(FPR)`` and the rates are best estimated near the
middle; a few central candidates keep the selection half from picking a tail threshold that
only looked good by chance (which costs power on the evaluation half)."""


def _above_below(
    sample: NDArray[np.float64], taus: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """How many values of ``sample`` are strictly above, and strictly below, each threshold."""
    s = np.sort(sample)
    return s.size - np.searchsorted(s, taus, side="right"), np.searchsorted(s, taus, side="left")


def _best_threshold(
    a: NDArray[np.float64], b: NDArray[np.float64], delta: float, confidence: float
) -> tuple[float, int]:
    """Threshold (and direction) with the largest lower bound on the selection half."""
    candidates = _candidates(a, b)
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
    >>> from persona.privacy.sampler import discrete_laplace
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


def _statistics(
    out_d: NDArray[np.float64], out_p: NDArray[np.float64], statistic: Statistic | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """One number per run: ``statistic`` of the outputs, or by default their projection on
    the difference of the two data sets' mean outputs over the *first half* of the runs (the
    likelihood-ratio direction for Gaussian noise; the audits select on that half too)."""
    if statistic is not None:
        return (np.asarray(statistic(out_d), dtype=np.float64).ravel(),
                np.asarray(statistic(out_p), dtype=np.float64).ravel())
    direction = (out_p[: out_p.shape[0] // 2].mean(axis=0)
                 - out_d[: out_d.shape[0] // 2].mean(axis=0))
    norm = np.linalg.norm(direction)
    direction = direction / norm if norm > 0 else direction
    return out_d @ direction, out_p @ direction


def run_audit(
    mechanism: Callable[[object, int], ArrayLike], d: object, d_prime: object, *,
    runs: int, claimed_epsilon: float, delta: float = 0.0,
    statistic: Statistic | None = None,
    confidence: float = 0.95,
) -> AuditResult:
    """Run ``mechanism(data, runs)`` on both data sets and audit the outputs (ε audit).

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
    >>> from persona.privacy.sampler import discrete_gaussian
    >>> mech = lambda x, n: x + discrete_gaussian(4, n)      # sensitivity 1
    >>> r = run_audit(mech, 0, 1, runs=20_000, claimed_epsilon=2.0, delta=1e-6,
    ...               confidence=0.999)
    >>> r.violated
    False
    """
    out_d = np.asarray(mechanism(d, runs), dtype=np.float64).reshape(runs, -1)
    out_p = np.asarray(mechanism(d_prime, runs), dtype=np.float64).reshape(runs, -1)
    s_d, s_p = _statistics(out_d, out_p, statistic)
    return audit_samples(s_d, s_p, claimed_epsilon=claimed_epsilon, delta=delta,
                         confidence=confidence)


# ---------------------------------------------------------------------------------------------
# Gaussian differential privacy


def rho_to_mu(rho: float) -> float:
    """The Gaussian-DP parameter ``μ = sqrt(2ρ)`` of Gaussian releases of total zCDP ``ρ``.

    Examples
    --------
    >>> rho_to_mu(0.125)          # sensitivity 1, noise scale 2: μ = Δ/σ
    0.5
    """
    if not rho >= 0 or not math.isfinite(rho):
        raise ValidationError(f"rho must be finite and >= 0, not {rho!r}")
    return math.sqrt(2.0 * rho)


def gdp_mu(tpr: float, fpr: float) -> float:
    """``Φ⁻¹(TPR) - Φ⁻¹(FPR)``: the smallest μ for which μ-GDP allows a test with these rates.

    Examples
    --------
    >>> from scipy.stats import norm
    >>> round(gdp_mu(norm.cdf(0.25), norm.cdf(-0.25)), 12)
    0.5
    """
    return float(stats.norm.ppf(tpr) - stats.norm.ppf(fpr))


def mu_lower_bound(
    hits_pos: int, n_pos: int, hits_neg: int, n_neg: int, confidence: float = 0.999
) -> float:
    """Lower confidence bound on μ from one test: ``hits_pos`` of ``n_pos`` runs on the data
    set the test should detect said "detected" (true positives), ``hits_neg`` of ``n_neg``
    runs on the other one did too (false positives). It is
    ``Φ⁻¹(lower(TPR)) - Φ⁻¹(upper(FPR))`` with Clopper–Pearson ends, or 0 when that is not
    positive; it holds with probability ``confidence``.

    Examples
    --------
    >>> round(mu_lower_bound(6915, 10000, 3085, 10000), 3)       # μ̂ = 1.0
    0.914
    >>> mu_lower_bound(400, 1000, 600, 1000)
    0.0
    """
    lo_pos, _ = clopper_pearson(hits_pos, n_pos, confidence)
    _, hi_neg = clopper_pearson(hits_neg, n_neg, confidence)
    if lo_pos <= 0.0 or hi_neg >= 1.0:
        return 0.0
    return max(0.0, gdp_mu(lo_pos, hi_neg))


def _mu_point(hits_pos: int, n_pos: int, hits_neg: int, n_neg: int) -> float:
    """Point estimate of ``Φ⁻¹(TPR) - Φ⁻¹(FPR)``, rates shrunk by ½ a run from 0 and 1."""
    return gdp_mu((hits_pos + 0.5) / (n_pos + 1), (hits_neg + 0.5) / (n_neg + 1))


@dataclass(frozen=True)
class GDPAuditResult:
    """Outcome of one Gaussian-DP audit."""

    claimed_mu: float
    """The claim: ``μ = sqrt(2ρ)`` (``Δ/σ`` for one Gaussian release)."""
    mu_lower: float
    """Lower confidence bound on the true μ (holds with probability ``confidence``)."""
    mu_estimate: float
    """Point estimate of ``Φ⁻¹(TPR) - Φ⁻¹(FPR)`` at the chosen test (for reporting)."""
    tpr: float
    """Observed true-positive rate of the chosen test on the evaluation half."""
    fpr: float
    """Observed false-positive rate of the chosen test on the evaluation half."""
    threshold: float
    direction: int
    """``1``: the test says ``D'`` when the statistic is above the threshold; ``-1``: below."""
    runs: int
    confidence: float

    @property
    def violated(self) -> bool:
        """True when the data prove the claimed μ is too small."""
        return self.mu_lower > self.claimed_mu

    def __str__(self) -> str:
        verdict = "VIOLATED" if self.violated else "consistent"
        return (f"claimed μ = {self.claimed_mu:.4g}; empirical lower bound μ >= "
                f"{self.mu_lower:.4f} (estimate {self.mu_estimate:.4f}, TPR {self.tpr:.4f}, "
                f"FPR {self.fpr:.4f}) from {self.runs} runs per data set at "
                f"{self.confidence:.1%} confidence: {verdict}")


def _best_gdp_test(
    a: NDArray[np.float64], b: NDArray[np.float64], confidence: float
) -> tuple[float, int]:
    """Threshold and direction with the largest lower bound on μ on the selection half."""
    taus = np.unique(np.quantile(np.concatenate([a, b]), _GDP_LEVELS))
    up_a, down_a = _above_below(a, taus)  # "say D' when T > τ" / "... when T < τ"
    up_b, down_b = _above_below(b, taus)
    best, best_tau, best_dir = -1.0, float(taus[0]), 1
    for direction, pos, neg in ((1, up_b, up_a), (-1, down_b, down_a)):
        for t in range(taus.size):
            mu = mu_lower_bound(int(pos[t]), b.size, int(neg[t]), a.size, confidence)
            if mu > best:
                best, best_tau, best_dir = mu, float(taus[t]), direction
    return best_tau, best_dir


def audit_gdp(
    stat_d: ArrayLike, stat_d_prime: ArrayLike, *, claimed_mu: float,
    confidence: float = 0.999,
) -> GDPAuditResult:
    """Gaussian-DP audit from precomputed test statistics of runs on ``D`` and on ``D'``.

    The first half of each sample picks the threshold test "say ``D'`` when the statistic
    is above (or below) ``τ``" with the largest lower bound on μ; the second half bounds
    ``μ >= Φ⁻¹(TPR) - Φ⁻¹(FPR)`` for that one test with Clopper–Pearson intervals. Since
    the roles of ``D`` and ``D'`` are symmetric for μ-GDP, the two directions cover all
    four ways of reading a threshold test.

    Parameters
    ----------
    stat_d, stat_d_prime
        One number per run on ``D`` and on ``D'`` (in the order they were drawn), or the
        whole outputs (runs × ...), reduced to one number per run as :func:`run_gdp_audit`
        does by default.
    claimed_mu
        The claim: ``sqrt(2ρ)`` of the release (see :func:`rho_to_mu`).
    confidence
        Probability that ``mu_lower`` is below the true μ; a correct claim is flagged at most
        ``1 - confidence`` of the time (0.1 % by default).

    Examples
    --------
    >>> from persona.privacy.sampler import SeededBits, discrete_gaussian
    >>> bits = SeededBits(0)                                  # reproducible, for tests only
    >>> noise = lambda scale: discrete_gaussian(scale, 4_000, bits=bits).astype(float)
    >>> r = audit_gdp(noise(100), 50 + noise(100), claimed_mu=0.5)   # σ = 100, shift 50
    >>> r.violated, round(r.mu_estimate, 1)
    (False, 0.5)
    >>> audit_gdp(noise(50), 50 + noise(50), claimed_mu=0.5).violated  # half the noise
    True
    """
    a = np.asarray(stat_d, dtype=np.float64)
    b = np.asarray(stat_d_prime, dtype=np.float64)
    if a.ndim > 1 or b.ndim > 1:  # whole outputs: the default statistic
        a, b = _statistics(a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1), None)
    a, b = a.ravel(), b.ravel()
    if a.size < 4 or b.size < 4:
        raise ValidationError("an audit needs at least 4 runs per data set (2 per half)")
    if not math.isfinite(claimed_mu) or claimed_mu < 0:
        raise ValidationError(f"claimed_mu must be finite and >= 0, not {claimed_mu!r}")
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence must be in (0, 1), not {confidence!r}")
    ha, hb = a.size // 2, b.size // 2
    tau, direction = _best_gdp_test(a[:ha], b[:hb], confidence)
    ea, eb = a[ha:], b[hb:]
    neg = int(np.sum(direction * ea > direction * tau))
    pos = int(np.sum(direction * eb > direction * tau))
    return GDPAuditResult(
        claimed_mu=float(claimed_mu),
        mu_lower=mu_lower_bound(pos, eb.size, neg, ea.size, confidence),
        mu_estimate=_mu_point(pos, eb.size, neg, ea.size),
        tpr=pos / eb.size, fpr=neg / ea.size, threshold=tau, direction=direction,
        runs=int(min(a.size, b.size)), confidence=confidence,
    )


def run_gdp_audit(
    mechanism: Callable[[object, int], ArrayLike], d: object, d_prime: object, *,
    runs: int, claimed_rho: float | None = None, claimed_mu: float | None = None,
    statistic: Statistic | None = None, confidence: float = 0.999,
) -> GDPAuditResult:
    """Run ``mechanism(data, runs)`` on both data sets and audit the outputs against a
    Gaussian-DP claim (give ``claimed_rho``, the total zCDP ρ of a Gaussian release, or
    ``claimed_mu`` directly).

    Parameters
    ----------
    mechanism
        ``mechanism(data, runs)`` returns ``runs`` independent outputs, as an array whose
        first axis is the run.
    d, d_prime
        Neighbouring data sets: ``d_prime`` is ``d`` with one person added.
    runs
        Runs per data set (half select the test, half bound μ).
    claimed_rho, claimed_mu
        The claim under test, exactly one of them: ``μ = sqrt(2ρ)``
        (``PrivacySpent.rho`` of a Gaussian release).
    statistic
        Maps the outputs (runs × ...) to one number per run; by default the outputs are
        projected on the difference of the two data sets' mean outputs over the selection
        half (the likelihood-ratio direction for Gaussian noise).
    confidence
        See :func:`audit_gdp`.

    Examples
    --------
    >>> from persona.privacy.sampler import SeededBits, discrete_gaussian
    >>> bits = SeededBits(1)                                  # reproducible, for tests only
    >>> mech = lambda x, n: x + discrete_gaussian(20, n, bits=bits)    # Δ = 10, σ = 20
    >>> run_gdp_audit(mech, 0, 10, runs=4_000, claimed_rho=1 / 8).violated   # μ = 1/2
    False
    >>> broken = lambda x, n: x + discrete_gaussian(10, n, bits=bits)  # the noise halved
    >>> run_gdp_audit(broken, 0, 10, runs=4_000, claimed_rho=1 / 8).violated
    True
    """
    if (claimed_rho is None) == (claimed_mu is None):
        raise ValidationError("give exactly one of claimed_rho (zCDP) and claimed_mu (GDP)")
    mu = rho_to_mu(claimed_rho) if claimed_rho is not None else float(claimed_mu or 0.0)
    if runs < 4:
        raise ValidationError(f"runs must be at least 4, not {runs}")
    out_d = np.asarray(mechanism(d, runs), dtype=np.float64).reshape(runs, -1)
    out_p = np.asarray(mechanism(d_prime, runs), dtype=np.float64).reshape(runs, -1)
    s_d, s_p = _statistics(out_d, out_p, statistic)
    return audit_gdp(s_d, s_p, claimed_mu=mu, confidence=confidence)
