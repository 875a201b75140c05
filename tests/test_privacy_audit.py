"""Empirical privacy audits of every mechanism, and of deliberately broken versions.

Each audit runs the mechanism many times on neighbouring data sets ``D`` and ``D'`` (one
person added, contributing as much as the bounds allow) and derives a Clopper–Pearson lower
bound on ε. The real mechanisms must stay below their claim; the broken ones (noise scale
divided by 4 for the Gaussian, sensitivity halved for the Laplace) must be flagged, which
shows the audit can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from persona.privacy import DP, private_als_item_factors, private_cooccurrence, private_item_counts
from persona.privacy import _mechanisms as mech
from persona.testing import audit_samples, clopper_pearson, epsilon_lower_bound, run_audit

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


def _blocks(person_rows: list[list[int]], n_items: int, copies: int) -> sp.csr_matrix:
    """``copies`` disjoint copies (own people, own items) of a small data set."""
    rows = np.array([u for u, items in enumerate(person_rows) for _ in items])
    cols = np.array([j for items in person_rows for j in items])
    offset = np.arange(copies)[:, None]
    r = (rows[None, :] + offset * len(person_rows)).ravel()
    c = (cols[None, :] + offset * n_items).ravel()
    return sp.csr_matrix((np.ones(r.size), (r, c)),
                         shape=(copies * len(person_rows), copies * n_items))


def _counts_mechanism(cfg: DP, m_items: int, runs: int):
    d_rows = [[0], [1, 2], [0, 2]][: max(1, m_items)]
    person = list(range(m_items))

    def run(rows, n):
        # n disjoint copies in one call: n independent releases of the same mechanism
        counts, _ = private_item_counts(_blocks(rows, m_items, n), cfg)
        return counts.reshape(n, m_items)

    return run, d_rows, [*d_rows, person]


@pytest.mark.parametrize("broken", [False, True])
def test_audit_dp_item_counts_gaussian(broken: bool, monkeypatch) -> None:
    cfg = DP(epsilon=CLAIM, delta=DELTA, max_events_per_person=3)
    if broken:
        real = mech.gaussian_on_grid
        monkeypatch.setattr(mech, "gaussian_on_grid",
                            lambda x, scale, k, bits: real(x, scale / 4, k, bits=bits))
    run, d, d_prime = _counts_mechanism(cfg, 3, 40_000)
    result = run_audit(run, d, d_prime, runs=40_000, claimed_epsilon=CLAIM, delta=DELTA,
                       confidence=PASS_CONFIDENCE)
    assert result.violated is broken, str(result)


@pytest.mark.parametrize("broken", [False, True])
def test_audit_dp_item_counts_laplace(broken: bool, monkeypatch) -> None:
    cfg = DP(epsilon=CLAIM, delta=0.0, max_events_per_person=1)
    if broken:  # sensitivity halved == noise scale halved
        real = mech.laplace_on_grid
        monkeypatch.setattr(mech, "laplace_on_grid",
                            lambda x, scale, k, bits: real(x, scale / 2, k, bits=bits))
    run, d, d_prime = _counts_mechanism(cfg, 1, 40_000)
    result = run_audit(run, d, d_prime, runs=40_000, claimed_epsilon=CLAIM, delta=0.0,
                       confidence=PASS_CONFIDENCE)
    assert result.violated is broken, str(result)
    if not broken:  # the audit is not vacuous: it sees a good part of the real ε
        assert result.epsilon_lower > 0.5 * CLAIM


@pytest.mark.slow
@pytest.mark.parametrize("broken", [False, True])
def test_audit_dp_cooccurrence(broken: bool, monkeypatch) -> None:
    cfg = DP(epsilon=CLAIM, delta=DELTA, max_events_per_person=2)
    if broken:
        real = mech.gaussian_on_grid
        monkeypatch.setattr(mech, "gaussian_on_grid",
                            lambda x, scale, k, bits: real(x, scale / 4, k, bits=bits))
    d = sp.csr_matrix(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
    d_prime = sp.vstack([d, sp.csr_matrix(np.array([[1.0, 0.0, 1.0]]))]).tocsr()
    iu = np.triu_indices(3)

    def run(X, n):
        return np.stack([private_cooccurrence(X, cfg)[0][iu] for _ in range(n)])

    result = run_audit(run, d, d_prime, runs=8_000, claimed_epsilon=CLAIM, delta=DELTA,
                       confidence=PASS_CONFIDENCE if not broken else 0.99)
    assert result.violated is broken, str(result)


@pytest.mark.parametrize(("broken", "weight_budget"), [(False, None), (True, None),
                                                      (False, 1.5), (True, 1.5)])
def test_audit_dp_als_item_statistics(broken: bool, weight_budget: float | None) -> None:
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
    scale, k = spent.noise["scale"], int(spent.noise["k"])
    if broken:
        scale = scale / 4

    def run(X, n):
        R = mech.bound_contributions(X, cfg.max_events_per_person, cfg.max_value)
        weights = None
        if weight_budget is not None:
            weights = np.minimum(1.0, weight_budget / np.sqrt(np.maximum(R.getnnz(axis=1), 1)))
        W_int, C_int, W_float = mech._als_inputs(R, 0.0, weights)
        U_int = mech._user_vectors(W_float, Y, 0.1, cfg.factor_norm, True)
        idx = mech._item_statistics(W_int, C_int, U_int, k, with_a=False)
        assert idx.size == int(spent.noise["size"])
        assert R.getnnz() == X.getnnz()  # nothing sampled away
        return mech._add_noise(np.tile(idx, n), scale, k, mech.OS_BITS).reshape(n, -1)

    result = run_audit(run, d, d_prime, runs=40_000, claimed_epsilon=CLAIM, delta=DELTA,
                       confidence=PASS_CONFIDENCE)
    assert result.violated is broken, str(result)


def test_audit_samples_flags_an_obvious_leak() -> None:
    rng = np.random.default_rng(1)
    d = np.zeros(2_000)
    d_prime = np.ones(2_000)  # no noise at all: ε is infinite
    result = audit_samples(d + rng.integers(0, 1, 2_000), d_prime, claimed_epsilon=1.0)
    assert result.violated
    assert "VIOLATED" in str(result)
    assert math.isfinite(result.epsilon_lower)
