"""Empirical privacy audits of every mechanism, and of deliberately broken versions.

Each audit runs a mechanism many times on neighbouring data sets ``D`` and ``D'`` (one person
added, contributing as much as the bounds allow). The Gaussian releases (item counts,
co-occurrences, the DP-ALS item statistics) are audited against their Gaussian-DP claim
``μ = sqrt(2ρ)`` (:func:`persona.testing.run_gdp_audit`); the Laplace release (pure DP) against
its ε (:func:`persona.testing.run_audit`). Every real mechanism must pass; every broken one
(the noise scale divided by 2, as a sensitivity off by a factor of 2 would do) must be flagged,
which shows the audits have power.

False alarms: each audit runs at 99.9 % confidence, so a correct mechanism is flagged at most
0.1 % of the time per test. Power: with the run counts below, the broken variants' lower bounds
sit far above their claims (measured values are in the comments), so they are flagged in
practically every run.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import norm

from audit_helpers import blocks, noise_divided
from persona.errors import ValidationError
from persona.privacy import (
    DP,
    bound_contributions,
    private_als_item_factors,
    private_cooccurrence,
    private_item_counts,
)
from persona.privacy import _mechanisms as mech
from persona.privacy.sampler import OS_BITS
from persona.testing import (
    AuditResult,
    GDPAuditResult,
    audit_gdp,
    audit_samples,
    clopper_pearson,
    epsilon_lower_bound,
    gdp_mu,
    mu_lower_bound,
    rho_to_mu,
    run_audit,
    run_gdp_audit,
)

PASS_CONFIDENCE = 0.999  # a correct mechanism is wrongly flagged at most 0.1% of the time
CLAIM = 2.0
DELTA = 1e-6


def test_clopper_pearson_and_bound_basics() -> None:
    lo, hi = clopper_pearson(0, 100)
    assert lo == 0.0
    assert 0.0 < hi < 0.05
    assert clopper_pearson(100, 100)[1] == 1.0
    assert epsilon_lower_bound(10, 100, 10, 100) == 0.0
    assert epsilon_lower_bound(900, 1000, 10, 1000, delta=0.0) > 3.0


def test_gdp_bound_basics() -> None:
    assert rho_to_mu(0.5) == 1.0
    assert gdp_mu(norm.cdf(1.0), norm.cdf(-1.0)) == pytest.approx(2.0)
    assert mu_lower_bound(500, 1000, 500, 1000) == 0.0
    # the bound is below the point estimate and grows with the number of runs
    small = mu_lower_bound(69, 100, 31, 100)
    large = mu_lower_bound(6_900, 10_000, 3_100, 10_000)
    assert 0.0 <= small < large < gdp_mu(0.69, 0.31)
    assert mu_lower_bound(0, 100, 0, 100) == 0.0
    assert math.isfinite(mu_lower_bound(100, 100, 0, 100))


def test_gdp_audit_rejects_bad_input() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        run_gdp_audit(lambda x, n: np.zeros(n), 0, 1, runs=10)
    with pytest.raises(ValidationError, match="exactly one"):
        run_gdp_audit(lambda x, n: np.zeros(n), 0, 1, runs=10, claimed_rho=1.0, claimed_mu=1.0)
    with pytest.raises(ValidationError, match="rho"):
        rho_to_mu(-1.0)
    with pytest.raises(ValidationError, match="at least 4"):
        audit_gdp([0.0], [1.0], claimed_mu=1.0)
    with pytest.raises(ValidationError, match="confidence"):
        audit_gdp(np.zeros(10), np.ones(10), claimed_mu=1.0, confidence=1.0)


def _counts_mechanism(cfg: DP, m_items: int, claims: list[float]) -> tuple[
        Callable[[list[list[int]], int], np.ndarray], list[list[int]], list[list[int]]]:
    """``private_item_counts`` on ``n`` disjoint copies in one call: ``n`` independent
    releases of the same mechanism. Each call's ρ (or ε) is appended to ``claims``."""
    d_rows = [[0], [1, 2], [0, 2]][: max(1, m_items)]
    person = list(range(m_items))  # the added person uses the whole bound

    def run(rows: list[list[int]], n: int) -> np.ndarray:
        counts, spent = private_item_counts(blocks(rows, m_items, n), cfg)
        claims.append(spent.rho if spent.rho is not None else spent.epsilon)
        return counts.reshape(n, m_items)

    return run, d_rows, [*d_rows, person]


def gaussian_counts_audit(factor: float, runs: int = 10_000) -> GDPAuditResult:
    """Noisy item counts (Gaussian, L2 sensitivity sqrt(3)) against μ = sqrt(2ρ)."""
    cfg = DP(epsilon=CLAIM, delta=DELTA, max_events_per_person=3)
    rhos: list[float] = []
    run, d, d_prime = _counts_mechanism(cfg, 3, rhos)
    with noise_divided("gaussian_on_grid", factor):
        out_d, out_p = run(d, runs), run(d_prime, runs)
    assert rhos[0] == rhos[1]  # the claim does not depend on the data
    return audit_gdp(*_project(out_d, out_p), claimed_mu=rho_to_mu(rhos[0]),
                     confidence=PASS_CONFIDENCE)


def _project(out_d: np.ndarray, out_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs projected on the mean difference of the selection half (as run_gdp_audit)."""
    half = out_d.shape[0] // 2
    direction = out_p[:half].mean(axis=0) - out_d[:half].mean(axis=0)
    direction /= np.linalg.norm(direction)
    return out_d @ direction, out_p @ direction


@pytest.mark.parametrize("broken", [False, True])
def test_audit_dp_item_counts_gaussian(broken: bool) -> None:
    # claimed μ = 0.42; measured μ_low (20 runs): 0.24-0.32 correct, 0.66-0.77 noise halved
    result = gaussian_counts_audit(2.0 if broken else 1.0)
    assert result.violated is broken, str(result)
    if not broken:  # the audit is not vacuous: it sees most of the real μ
        assert result.mu_estimate > 0.5 * result.claimed_mu, str(result)


def signed_counts_audit(factor: float, runs: int = 10_000) -> GDPAuditResult:
    """Signed item totals (``signed=True``: values in [-1, 1]; Gaussian, L2 sensitivity
    sqrt(3)) against μ = sqrt(2ρ): the data have values of both signs and the added person
    takes -1 on every item, the whole bound in the direction the unsigned clip would drop."""
    cfg = DP(epsilon=CLAIM, delta=DELTA, max_events_per_person=3)
    rhos: list[float] = []
    d_rows, person = [[0], [1, 2], [0, 2]], [0, 1, 2]

    def run(rows: list[list[int]], n: int) -> np.ndarray:
        M = blocks(rows, 3, n)
        signs = np.array([1.0 if (u + j) % 2 else -1.0 for u, items in enumerate(rows)
                          for j in items])
        if rows[-1] is person:
            signs[-len(person):] = -1.0
        M.data = np.tile(signs, n)
        counts, spent = private_item_counts(M, cfg, signed=True)
        rhos.append(spent.rho)
        return counts.reshape(n, 3)

    with noise_divided("gaussian_on_grid", factor):
        out_d, out_p = run(d_rows, runs), run([*d_rows, person], runs)
    assert rhos[0] == rhos[1]
    return audit_gdp(*_project(out_d, out_p), claimed_mu=rho_to_mu(rhos[0]),
                     confidence=PASS_CONFIDENCE)


@pytest.mark.parametrize("broken", [False, True])
def test_audit_dp_signed_item_counts(broken: bool) -> None:
    # claimed μ = 0.42; measured μ_low (3 runs): 0.29-0.32 correct, 0.69-0.72 noise halved
    result = signed_counts_audit(2.0 if broken else 1.0)
    assert result.violated is broken, str(result)
    if not broken:
        assert result.mu_estimate > 0.5 * result.claimed_mu, str(result)


def laplace_counts_audit(factor: float, runs: int = 40_000) -> AuditResult:
    """Noisy item counts (Laplace, pure ε = 2, L1 sensitivity 1) against ε: the test
    ``T >= 1`` (at the neighbour's true value) meets the bound ``e^ε`` with rates far from 0."""
    cfg = DP(epsilon=CLAIM, delta=0.0, max_events_per_person=1)
    eps: list[float] = []
    run, d, d_prime = _counts_mechanism(cfg, 1, eps)
    with noise_divided("laplace_on_grid", factor):
        result = run_audit(run, d, d_prime, runs=runs, claimed_epsilon=CLAIM, delta=0.0,
                           confidence=PASS_CONFIDENCE)
    assert max(eps) <= CLAIM
    return result


@pytest.mark.parametrize("broken", [False, True])
def test_audit_dp_item_counts_laplace(broken: bool) -> None:
    # measured ε_low (20 runs): 1.83-1.94 correct, 3.57-3.90 with the noise halved (ε = 4)
    result = laplace_counts_audit(2.0 if broken else 1.0)
    assert result.violated is broken, str(result)
    if not broken:  # the audit is not vacuous: it sees most of the real ε
        assert result.epsilon_lower > 0.75 * CLAIM, str(result)


def cooccurrence_audit(factor: float, runs: int = 6_000, copies: int = 100) -> GDPAuditResult:
    """Noisy co-occurrences (L2 sensitivity sqrt(3) at 2 items per person): ``copies``
    disjoint copies per call, each copy's upper triangle is one release."""
    cfg = DP(epsilon=CLAIM, delta=DELTA, max_events_per_person=2)
    d = [[0, 1], [1, 2]]
    d_prime = [*d, [0, 2]]
    iu = np.triu_indices(3)
    rhos: list[float] = []
    at = np.arange(copies)

    def run(rows: list[list[int]], n: int) -> np.ndarray:
        out = []
        for _ in range(n // copies):
            C, spent = private_cooccurrence(blocks(rows, 3, copies), cfg)
            rhos.append(spent.rho)
            out.append(C.reshape(copies, 3, copies, 3)[at, :, at, :][:, iu[0], iu[1]])
        return np.concatenate(out)

    with noise_divided("gaussian_on_grid", factor):
        out_d, out_p = run(d, runs), run(d_prime, runs)
    assert len(set(rhos)) == 1  # the claim does not depend on the data
    return audit_gdp(*_project(out_d, out_p), claimed_mu=rho_to_mu(rhos[0]),
                     confidence=PASS_CONFIDENCE)


@pytest.mark.parametrize("broken", [False, True])
def test_audit_dp_cooccurrence(broken: bool) -> None:
    # claimed μ = 0.42; measured μ_low (20 runs): 0.15-0.33 correct, 0.58-0.72 noise halved
    result = cooccurrence_audit(2.0 if broken else 1.0)
    assert result.violated is broken, str(result)


def als_audit(factor: float, weight_budget: float | None, runs: int = 10_000) -> GDPAuditResult:
    """One DP-ALS iteration's release (the item-side statistics given the public item
    factors), through the same functions the fit uses."""
    # the cap (4) is not below anyone's item count, so the release is a fixed statistic plus
    # noise and may be tiled over the runs; the added person uses the whole bound
    cfg = DP(epsilon=CLAIM, delta=DELTA, max_events_per_person=4)
    rng = np.random.default_rng(0)
    Y = rng.standard_normal((4, 2))
    d = sp.csr_matrix(rng.integers(0, 2, size=(30, 4)).astype(float))
    d_prime = sp.vstack([d, sp.csr_matrix(np.ones((1, 4)))]).tocsr()
    _, spent = private_als_item_factors(d, 2, 1, 0.1, 0.0, cfg, random_state=0,
                                        weight_budget=weight_budget)
    assert spent.rho is not None
    scale, k = spent.noise["scale"] / factor, int(spent.noise["k"])

    def run(X: sp.csr_matrix, n: int) -> np.ndarray:
        R = bound_contributions(X, cfg.max_events_per_person, cfg.max_value)
        weights = None
        if weight_budget is not None:
            weights = np.minimum(1.0, weight_budget / np.sqrt(np.maximum(R.getnnz(axis=1), 1)))
        W_int, C_int, W_float = mech._als_inputs(R, 0.0, weights)
        U_int = mech._user_vectors(W_float, Y, 0.1, cfg.factor_norm, True)
        idx = mech._item_statistics(W_int, C_int, U_int, k, with_a=False)
        assert idx.size == int(spent.noise["size"])
        assert R.getnnz() == X.getnnz()  # nothing sampled away
        return mech._add_noise(np.tile(idx, n), scale, k, OS_BITS).reshape(n, -1)

    return run_gdp_audit(run, d, d_prime, runs=runs, claimed_rho=spent.rho,
                         confidence=PASS_CONFIDENCE)


@pytest.mark.parametrize(("broken", "weight_budget"), [(False, None), (True, None),
                                                      (False, 1.5), (True, 1.5)])
def test_audit_dp_als_item_statistics(broken: bool, weight_budget: float | None) -> None:
    # claimed μ = 0.42; measured μ_low (20 runs each): 0.19-0.34 correct, 0.66-0.74 halved
    result = als_audit(2.0 if broken else 1.0, weight_budget)
    assert result.violated is broken, str(result)


def test_audit_samples_flags_an_obvious_leak() -> None:
    rng = np.random.default_rng(1)
    d = np.zeros(2_000)
    d_prime = np.ones(2_000)  # no noise at all: ε is infinite
    result = audit_samples(d + rng.integers(0, 1, 2_000), d_prime, claimed_epsilon=1.0)
    assert result.violated
    assert "VIOLATED" in str(result)
    assert math.isfinite(result.epsilon_lower)
    gdp = audit_gdp(d, d_prime, claimed_mu=1.0)
    assert gdp.violated and "VIOLATED" in str(gdp)
    assert math.isfinite(gdp.mu_lower) and gdp.mu_lower > 4.0
    assert (gdp.tpr, gdp.fpr) == (1.0, 0.0)


def test_gdp_audit_sees_a_leak_in_either_direction() -> None:
    """The released value moving down when the person is added is found as well."""
    z = np.random.default_rng(2).standard_normal((2, 4_000))
    result = audit_gdp(z[0], z[1] - 1.0, claimed_mu=0.5)  # μ = 1 against a claim of 0.5
    assert result.violated and result.direction == -1, str(result)
