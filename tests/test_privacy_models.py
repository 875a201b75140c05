"""Private training through the model classes (issue 4).

``ALS(privacy=DP(...))``, ``ItemKNN(privacy=...)`` and ``Popularity(privacy=...)`` release
their pooled part (DP-ALS item statistics, noisy co-occurrences, noisy counts) with
differential privacy. The empirical audits below run the *models* many times on
neighbouring data sets (one person added, using the whole contribution bound) and check the
released pooled part against the claim; a deliberately broken mechanism (noise scale / 4)
must be flagged, which shows the audits can fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import persona
from persona.data import Interactions
from persona.errors import PrivacyBudgetExceeded, ValidationError
from persona.models import ALS, BPR, ItemKNN, Popularity, PrivateTrainingUnavailableError
from persona.privacy import DP, BudgetLedger, PrivacySpent
from persona.privacy import _mechanisms as mech
from persona.privacy import _sampler as sampler
from persona.testing import block_interactions, run_audit

PASS_CONFIDENCE = 0.999  # a correct mechanism is wrongly flagged at most 0.1% of the time
CLAIM = 2.0
DELTA = 1e-6


def _interactions(X: sp.spmatrix) -> Interactions:
    X = sp.csr_matrix(X)
    return Interactions.from_csr(X, [f"u{u}" for u in range(X.shape[0])],
                                 [f"i{j}" for j in range(X.shape[1])])


def _break_gaussian(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken version: a quarter of the calibrated noise (true ε far above the claim)."""
    real = mech.gaussian_on_grid
    monkeypatch.setattr(mech, "gaussian_on_grid",
                        lambda x, scale, k, bits: real(x, scale / 4, k, bits=bits))


# --------------------------------------------------------------------------- audits
def _blocks(person_rows: list[list[int]], n_items: int, copies: int) -> sp.csr_matrix:
    """``copies`` disjoint copies (own people, own items) of a small data set."""
    rows = np.array([u for u, items in enumerate(person_rows) for _ in items])
    cols = np.array([j for items in person_rows for j in items])
    offset = np.arange(copies)[:, None]
    r = (rows[None, :] + offset * len(person_rows)).ravel()
    c = (cols[None, :] + offset * n_items).ravel()
    return sp.csr_matrix((np.ones(r.size), (r, c)),
                         shape=(copies * len(person_rows), copies * n_items))


@pytest.mark.parametrize("broken", [False, True])
def test_audit_popularity_model(broken: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The served popularity scores (``counts_``) of ``Popularity(privacy=...)``."""
    cfg = DP(epsilon=CLAIM, delta=DELTA, max_events_per_person=3)
    if broken:
        _break_gaussian(monkeypatch)
    m_items, runs = 3, 40_000
    d = [[0], [1, 2], [0, 2]]
    d_prime = [*d, [0, 1, 2]]

    def run(rows: list[list[int]], n: int) -> np.ndarray:
        # n disjoint copies in one fit: n independent releases of the same mechanism
        model = Popularity(privacy=cfg).fit(_interactions(_blocks(rows, m_items, n)))
        assert model.privacy_spent_.epsilon <= CLAIM
        return model.counts_.reshape(n, m_items)

    result = run_audit(run, d, d_prime, runs=runs, claimed_epsilon=CLAIM, delta=DELTA,
                       confidence=PASS_CONFIDENCE)
    assert result.violated is broken, str(result)


@pytest.mark.slow
@pytest.mark.parametrize("broken", [False, True])
def test_audit_itemknn_model(broken: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The noisy co-occurrence that ``ItemKNN(privacy=...)`` releases (its similarities are
    post-processing of it), one model fit per run."""
    cfg = DP(epsilon=CLAIM, delta=DELTA, max_events_per_person=2)
    if broken:
        _break_gaussian(monkeypatch)
    d = _interactions(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
    d_prime = _interactions(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0]]))
    iu = np.triu_indices(3)

    def run(X: Interactions, n: int) -> np.ndarray:
        out = np.empty((n, iu[0].size))
        model = ItemKNN(neighbours=3, privacy=cfg)
        for r in range(n):
            out[r] = model.fit(X).cooccurrence_[iu]
        return out

    result = run_audit(run, d, d_prime, runs=5_000, claimed_epsilon=CLAIM, delta=DELTA,
                       confidence=PASS_CONFIDENCE if not broken else 0.99)
    assert result.violated is broken, str(result)


@pytest.mark.slow
@pytest.mark.parametrize("broken", [False, True])
def test_audit_als_model(broken: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The item-side statistics that ``ALS(privacy=...)`` releases, captured while the model
    fits (one iteration, 2 factors, 4 items), and its item factors (post-processing)."""
    # the cap (4) is not below anyone's item count, and the initial item factors come from
    # the fixed seed, so each release is a fixed statistic plus fresh noise
    cfg = DP(epsilon=CLAIM, delta=DELTA, max_events_per_person=4)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, size=(30, 4)).astype(float)
    d = _interactions(base)
    d_prime = _interactions(np.vstack([base, np.ones((1, 4))]))
    released: list[np.ndarray] = []
    real = mech._add_noise

    def capture(idx: np.ndarray, scale: float, k: int, bits: object) -> np.ndarray:
        out = real(idx, scale / 4 if broken else scale, k, bits)
        released.append(out)
        return out

    monkeypatch.setattr(mech, "_add_noise", capture)
    factors: dict[int, np.ndarray] = {}

    def run(X: Interactions, n: int) -> np.ndarray:
        released.clear()
        model = ALS(factors=2, iterations=1, regularization=0.1, random_state=0, privacy=cfg)
        Y = np.empty((n, 8))
        for r in range(n):
            Y[r] = model.fit(X).item_factors_.ravel()
            assert model.privacy_spent_.epsilon <= CLAIM
        factors[X.n_users] = Y
        return np.stack(released)

    runs = 4_000
    result = run_audit(run, d, d_prime, runs=runs, claimed_epsilon=CLAIM, delta=DELTA,
                       confidence=PASS_CONFIDENCE if not broken else 0.99)
    assert result.violated is broken, str(result)
    if not broken:  # the released factors are post-processing: they cannot do worse
        on_factors = run_audit(lambda X, n: factors[X.n_users], d, d_prime, runs=runs,
                               claimed_epsilon=CLAIM, delta=DELTA, confidence=PASS_CONFIDENCE)
        assert not on_factors.violated, str(on_factors)


# --------------------------------------------------------------------------- accounting
_MODELS = [
    lambda cfg: ALS(factors=4, iterations=3, random_state=0, privacy=cfg),
    lambda cfg: ItemKNN(neighbours=5, privacy=cfg),
    lambda cfg: Popularity(privacy=cfg),
    lambda cfg: Popularity(count="confidence", privacy=cfg),
]


@pytest.mark.parametrize("make", _MODELS)
@pytest.mark.parametrize("epsilon", [0.5, 4.0])
def test_privacy_spent_matches_configuration(make, epsilon: float) -> None:
    cfg = persona.DP(epsilon=epsilon, delta=1e-6, max_events_per_person=5)
    model = make(cfg).fit(block_interactions())
    spent = model.privacy_spent_
    assert spent is not None and spent.unit_of_privacy == "one person"
    assert spent.epsilon <= epsilon and spent.delta <= cfg.delta  # never more
    assert spent.epsilon >= 0.99 * epsilon  # and the budget is used, not wasted
    assert spent.bounds["max_events_per_person"] == 5
    assert model.privacy is cfg  # stored unchanged


def test_laplace_popularity_is_pure_dp() -> None:
    model = Popularity(privacy=DP(epsilon=1.0, delta=0.0)).fit(block_interactions())
    assert model.privacy_spent_.delta == 0.0 and model.privacy_spent_.epsilon <= 1.0


def test_bpr_refuses_private_training() -> None:
    with pytest.raises(PrivateTrainingUnavailableError, match=r"ALS\(privacy=\.\.\.\)"):
        BPR(factors=4, iterations=2, privacy=DP(epsilon=1.0)).fit(block_interactions())


@pytest.mark.parametrize("bad", [{"epsilon": 1.0}, 1.0, "dp"])
def test_privacy_must_be_a_dp(bad: object) -> None:
    model = ALS(factors=4, privacy=bad)  # stored unchanged, validated at fit
    assert model.privacy is bad
    with pytest.raises(ValidationError, match=r"persona\.DP"):
        model.fit(block_interactions())


def test_bm25_is_not_offered_privately() -> None:
    with pytest.raises(ValidationError, match="cosine"):
        ItemKNN(measure="bm25", privacy=DP(epsilon=1.0)).fit(block_interactions())


def test_dp_als_bounds_are_checked() -> None:
    with pytest.raises(ValidationError, match="factor_norm"):
        ALS(factors=4, privacy=DP(epsilon=1.0, factor_norm=2.0)).fit(block_interactions())


def test_two_fits_are_charged_twice() -> None:
    X = block_interactions()
    cfg = DP(epsilon=1.0, delta=1e-6, max_events_per_person=5)
    ledger = BudgetLedger(epsilon_budget=2.5, delta_budget=1e-5)

    def fit() -> tuple[ALS, PrivacySpent]:
        model = ALS(factors=4, iterations=2, random_state=0, privacy=cfg).fit(X)
        return model, model.privacy_spent_

    for _ in range(2):
        _, line = ledger.run("recommendations", epsilon=cfg.epsilon, delta=cfg.delta,
                             compute=fit)
        assert line.mechanism == "dp-als"
    assert len(ledger.charges("recommendations")) == 2
    eps, delta = ledger.spent("recommendations")
    assert 1.98 <= eps <= 2.0 and delta == pytest.approx(2e-6)
    called = []
    with pytest.raises(PrivacyBudgetExceeded):  # a third fit would overspend: not run
        ledger.run("recommendations", epsilon=cfg.epsilon, delta=cfg.delta,
                   compute=lambda: called.append(1) or fit())
    assert not called


def test_noise_comes_from_os_bits_not_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Private fits draw no noise from ``numpy.random``: the legacy global generator is
    disabled, ``default_rng`` may only be seeded with the model's own ``random_state`` (the
    data-independent initial factors), and the sampler's bit source is what the noise used."""
    X = block_interactions()
    cfg = DP(epsilon=1.0, delta=1e-6, max_events_per_person=5)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("numpy.random used")

    for name in ("random", "rand", "randn", "normal", "laplace", "standard_normal",
                 "randint", "choice", "uniform", "seed", "permutation", "shuffle"):
        monkeypatch.setattr(np.random, name, forbidden)
    real_rng = np.random.default_rng
    seeds: list[object] = []

    def checked_rng(seed: object = None) -> np.random.Generator:
        seeds.append(seed)
        assert seed == 7, "default_rng seeded with something other than random_state"
        return real_rng(seed)

    monkeypatch.setattr(np.random, "default_rng", checked_rng)
    drawn = []
    real_words, real_half = sampler._words, sampler._halfwords
    monkeypatch.setattr(sampler, "_words", lambda b, n: drawn.append(n) or real_words(b, n))
    monkeypatch.setattr(sampler, "_halfwords",
                        lambda b, n: drawn.append(n) or real_half(b, n))
    a = ALS(factors=4, iterations=2, random_state=7, privacy=cfg).fit(X)
    b = ALS(factors=4, iterations=2, random_state=7, privacy=cfg).fit(X)
    assert seeds == [7, 7] and drawn
    # same seed, same data: the noise differs, so it is not derived from the seed
    assert not np.array_equal(a.item_factors_, b.item_factors_)
    for model in (ItemKNN(neighbours=5, privacy=cfg), Popularity(privacy=cfg)):
        drawn.clear()
        model.fit(X)
        assert drawn


# --------------------------------------------------------------------------- serving
@pytest.fixture(scope="module")
def private_models() -> list:
    X = block_interactions()
    cfg = DP(epsilon=8.0, delta=1e-6, max_events_per_person=8)
    return [ALS(factors=8, iterations=5, random_state=0, privacy=cfg).fit(X),
            ItemKNN(neighbours=10, privacy=cfg).fit(X),
            Popularity(privacy=cfg).fit(X)]


def test_explanations_state_privacy_in_plain_words(private_models: list) -> None:
    for model in private_models:
        for rec in model.recommend("u0", n=4):
            e = rec.explanation
            assert e.privacy is not None
            assert e.privacy.epsilon == model.privacy_spent_.epsilon
            assert e.privacy.unit == "one person"
            assert "epsilon" not in e.text.lower() and "ε" not in e.text
            if model.personalised:  # reasons still add up to the served score
                total = sum(r.contribution for r in e.reasons)
                scale = max(abs(rec.score), sum(abs(r.contribution) for r in e.reasons))
                assert abs(total - rec.score) <= 1e-9 * scale


def test_save_load_keeps_privacy_spent(private_models: list, tmp_path) -> None:
    for k, model in enumerate(private_models):
        path = model.save(tmp_path / f"m{k}")
        same = type(model).load(path)
        assert same.privacy_spent_ == model.privacy_spent_
        assert same.privacy == model.privacy and isinstance(same.privacy, DP)
        assert same.recommend("u1", n=5) == model.recommend("u1", n=5)
        e = same.recommend("u1", n=1)[0].explanation
        assert e.privacy is not None and e.privacy.epsilon == model.privacy_spent_.epsilon
    # a non-private model still loads with no spend
    plain = Popularity().fit(block_interactions())
    assert Popularity.load(plain.save(tmp_path / "plain")).privacy_spent_ is None


def test_popularity_scores_are_the_noisy_counts(private_models: list) -> None:
    model = private_models[2]
    recs = model.recommend("anyone", n=24)
    assert all(r.score >= 0 for r in recs)
    assert [r.score for r in recs] == sorted(model.counts_, reverse=True)
    # not the exact counts: noise was added
    exact = np.bincount(model.history_.indices, minlength=24)
    assert not np.array_equal(model.counts_, exact)


def test_forget_and_fold_in_do_not_rerelease_pooled_parts() -> None:
    X = block_interactions()
    cfg = DP(epsilon=8.0, delta=1e-6, max_events_per_person=8)
    als = ALS(factors=8, iterations=3, random_state=0, privacy=cfg).fit(X)
    knn = ItemKNN(neighbours=10, privacy=cfg).fit(X)
    pop = Popularity(privacy=cfg).fit(X)
    pooled = [als.item_factors_.copy(), knn.similarity_.toarray(), pop.counts_.copy()]
    for model in (als, knn, pop):
        model.forget("u4")
        model.fold_in("newcomer", ["i0", "i1", "i2"])
        assert "u4" not in set(model.users_)
        assert model.recommend("newcomer", n=3)
    np.testing.assert_array_equal(als.item_factors_, pooled[0])
    np.testing.assert_array_equal(knn.similarity_.toarray(), pooled[1])
    np.testing.assert_array_equal(pop.counts_, pooled[2])
    # the newcomer's ALS vector is the exact solve of their own row
    items, parts = als.contributions("newcomer", "i3")
    assert set(items) == {"i0", "i1", "i2"}
    assert parts.sum() == pytest.approx(als.score("newcomer", ["i3"])[0], rel=1e-9)


def test_private_models_still_recommend_the_known_answer() -> None:
    """At a generous ε, private ALS and ItemKNN find each person's own group (chance: 1/3;
    few factors and iterations keep DP-ALS's noise per statistic low on 60 people)."""
    X = block_interactions()
    cfg = DP(epsilon=16.0, delta=1e-6, max_events_per_person=8)
    for model in (ALS(factors=4, iterations=3, random_state=0, privacy=cfg),
                  ItemKNN(neighbours=10, privacy=cfg)):
        model.fit(X)
        hits = sum(int(r.item[1:]) // 8 == int(u[1:]) // 20
                   for u in X.users for r in model.recommend(u, n=2))
        assert hits / (2 * X.n_users) >= 0.8, type(model).__name__
