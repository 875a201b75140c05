"""DP partition selection of items (issue 16: a store without a declared catalogue may only
name items whose noisy count of distinct people passes a threshold set from δ)."""

from __future__ import annotations

import math

import numpy as np
import opendp.prelude as dp
import pytest
import scipy.sparse as sp
from scipy import stats

from persona.errors import ValidationError
from persona.privacy import DP, plan_item_selection, private_item_selection
from persona.privacy.sampler import SeededBits, discrete_gaussian_pmf

dp.enable_features("contrib")


def _one_person_per_item(n: int) -> sp.csr_matrix:
    """``n`` items, each held by a different single person."""
    return sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n))), shape=(n, n))


@pytest.mark.parametrize("cfg", [DP(epsilon=1.0), DP(epsilon=0.3, delta=1e-9,
                                                     max_events_per_person=200),
                                 DP(epsilon=8.0, delta=1e-3, max_events_per_person=1)])
def test_the_plan_is_openDPs_map_and_within_the_budget(cfg: DP) -> None:
    spent = plan_item_selection(cfg)
    assert spent.epsilon <= cfg.epsilon
    assert spent.delta == cfg.delta
    assert spent.noise["threshold_delta"] <= cfg.delta / 2
    m = cfg.max_events_per_person
    meas = dp.m.make_gaussian_threshold(
        dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T="i64")),
        dp.l02inf_distance(dp.absolute_distance(T="i64")),
        scale=spent.noise["scale"], threshold=int(spent.noise["threshold"]))
    fixed = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(meas), cfg.delta)
    assert fixed.map((m, m, 1)) == (spent.epsilon, spent.delta)
    assert meas.map((m, m, 1)) == (spent.noise["rho"], spent.noise["threshold_delta"])
    # the chance that a count of 1 ends strictly above the threshold is within the
    # threshold's δ share (OpenDP's own function keeps counts equal to it too, whose chance
    # P[Z >= T - 1] its map does not bound; persona keeps only counts above T)
    threshold, scale = int(spent.noise["threshold"]), spent.noise["scale"]
    tail = np.arange(threshold, threshold + int(60 * scale) + 10)
    single = -math.expm1(math.log1p(-spent.noise["threshold_delta"]) / m)
    assert discrete_gaussian_pmf(scale, tail).sum() <= single * (1 + 1e-9)


def test_keeping_counts_equal_to_the_threshold_would_break_openDPs_delta() -> None:
    """Why persona keeps only counts strictly above T: OpenDP 0.16's function keeps counts
    equal to T as well, and for an item one person alone holds that has a chance above the
    δ its map reports (here about 7 times above)."""
    cfg = DP(epsilon=8.0, delta=1e-3, max_events_per_person=1)
    spent = plan_item_selection(cfg)
    threshold, scale = int(spent.noise["threshold"]), spent.noise["scale"]
    at_or_above = discrete_gaussian_pmf(scale, np.arange(threshold - 1, threshold + 200)).sum()
    assert at_or_above > 2 * spent.noise["threshold_delta"]


def test_selection_spends_the_plan_on_any_data_even_empty() -> None:
    cfg = DP(epsilon=1.0, max_events_per_person=3)
    X = sp.random(50, 8, density=0.3, format="csr", random_state=0)
    cols, spent = private_item_selection(X, cfg, bits=SeededBits(1))
    assert spent == plan_item_selection(cfg)
    for empty in (sp.csr_matrix((0, 8)), sp.csr_matrix((5, 8))):
        none, spent_empty = private_item_selection(empty, cfg, bits=SeededBits(1))
        assert none.dtype == np.int64
        assert none.size == 0
        assert spent_empty == spent
    assert cols.dtype == np.int64
    assert np.all(np.diff(cols) > 0)  # sorted


def test_an_item_one_person_holds_is_selected_at_most_at_the_delta_rate() -> None:
    """40,000 items, each held by one person alone (cap 1, so the one-item chance is the
    threshold's whole δ share, 5e-3 here): the number selected is Binomial(40,000, p) with
    p <= δ/2. False alarm rate of the bound below: 1e-6 (the bits are seeded anyway)."""
    cfg = DP(epsilon=1.0, delta=1e-2, max_events_per_person=1)
    n = 40_000
    cols, spent = private_item_selection(_one_person_per_item(n), cfg, bits=SeededBits(2))
    assert cols.size <= stats.binom.ppf(1 - 1e-6, n, cfg.delta / 2)
    # and the rate is the planned one: not far below it either (the threshold is the
    # smallest meeting δ/2, so p is within a factor of the next integer's)
    threshold = int(spent.noise["threshold"])
    p = discrete_gaussian_pmf(spent.noise["scale"], np.arange(threshold, threshold + 400)
                              ).sum()  # P[1 + Z > T]
    assert stats.binom.cdf(cols.size, n, p) > 1e-6
    assert stats.binom.sf(cols.size - 1, n, p) > 1e-6


def test_at_the_default_delta_a_one_person_item_is_practically_never_named() -> None:
    """δ = 1e-6: 20,000 one-person items give 0.01 selections on average; 3 or more happen
    with probability below 2e-7."""
    cols, _ = private_item_selection(_one_person_per_item(20_000), DP(epsilon=1.0),
                                     bits=SeededBits(3))
    assert cols.size <= 2


def test_heavily_used_items_are_selected_and_empty_columns_never() -> None:
    rng = np.random.default_rng(4)
    heavy = np.ones((2_000, 3))  # everyone holds items 0-2
    light = (rng.random((2_000, 5)) < 0.0005).astype(float)  # ~1 person each
    X = sp.csr_matrix(np.hstack([heavy, light, np.zeros((2_000, 4))]))
    cfg = DP(epsilon=1.0, max_events_per_person=8)
    for seed in range(5):
        cols, _ = private_item_selection(X, cfg, bits=SeededBits(10 + seed))
        assert cols.tolist() == [0, 1, 2]


def test_column_order_does_not_matter_beyond_the_noise() -> None:
    heavy = sp.csr_matrix(np.ones((1_000, 4)))
    X = sp.hstack([sp.csr_matrix((1_000, 3)), heavy]).tocsr()
    perm = np.array([5, 0, 6, 1, 4, 2, 3])
    cols, _ = private_item_selection(X, DP(epsilon=1.0), bits=SeededBits(5))
    cols_perm, _ = private_item_selection(X[:, perm], DP(epsilon=1.0), bits=SeededBits(6))
    assert cols.tolist() == [3, 4, 5, 6]
    assert sorted(perm[cols_perm].tolist()) == cols.tolist()


def test_each_person_counts_once_per_item_and_up_to_the_cap() -> None:
    """Repeated events of one person on an item count once (distinct people)."""
    X = sp.csr_matrix(np.full((1, 1), 1e6))  # one person, a huge value
    for seed in range(20):
        cols, _ = private_item_selection(X, DP(epsilon=4.0), bits=SeededBits(seed))
        assert cols.size == 0


def test_selection_needs_a_positive_delta_and_a_sparse_matrix() -> None:
    with pytest.raises(ValidationError, match="delta = 0"):
        plan_item_selection(DP(epsilon=1.0, delta=0.0))
    with pytest.raises(ValidationError, match="scipy sparse"):
        private_item_selection(np.ones((2, 2)), DP(epsilon=1.0))
    assert math.isfinite(plan_item_selection(DP(epsilon=1.0)).noise["threshold"])
