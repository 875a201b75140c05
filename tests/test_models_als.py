"""ALS specifics: implicit's fit, the exact serving solve, contributions, hooks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from threadpoolctl import threadpool_limits

from persona.data import Interactions
from persona.errors import ValidationError
from persona.models import ALS
from persona.testing import block_interactions, interaction_matrices


def _random(n_users: int = 80, n_items: int = 40, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    m = sp.random(n_users, n_items, density=0.15, random_state=rng, format="csr")
    m.data = 1 + np.round(m.data * 5)
    return Interactions.from_csr(m, [f"u{i}" for i in range(n_users)],
                                 [f"i{j}" for j in range(n_items)])


def _raw_implicit(X: Interactions, **kw: float) -> object:
    from implicit.cpu.als import AlternatingLeastSquares

    with threadpool_limits(1, "blas"):
        raw = AlternatingLeastSquares(**kw)
        raw.fit(sp.csr_matrix(X.matrix, dtype=np.float32), show_progress=False)
    return raw


def test_item_factors_are_implicits() -> None:
    """Same seed, same data: persona's fit is implicit's fit, bit for bit."""
    X = _random()
    model = ALS(factors=6, iterations=4, regularization=0.1, random_state=3).fit(X)
    raw = _raw_implicit(X, factors=6, iterations=4, regularization=0.1, random_state=3)
    np.testing.assert_array_equal(model.item_factors_, raw.item_factors)  # type: ignore[attr-defined]


def test_served_vectors_are_the_exact_solve_not_cg() -> None:
    from implicit.cpu.als import user_factor

    X = _random()
    model = ALS(factors=8, iterations=5, regularization=0.1, random_state=0).fit(X)
    Y = model.item_factors_.astype(np.float64)
    worst_cg = 0.0
    for r in range(0, X.n_users, 7):
        u = str(X.users[r])
        exact = user_factor(Y, Y.T @ Y, X.matrix, r, 0.1, 8)  # implicit's reference solve
        np.testing.assert_allclose(model.user_vector(u), exact, rtol=1e-9, atol=1e-12)
        cg = model.user_factors_[r]
        worst_cg = max(worst_cg, float(np.abs(cg - exact).max() / np.abs(exact).max()))
    assert worst_cg > 1e-4  # implicit issue #175: CG factors are not the exact solve


def test_scores_match_implicit_explain() -> None:
    X = _random()
    model = ALS(factors=8, iterations=5, random_state=0).fit(X)
    raw = _raw_implicit(X, factors=8, iterations=5, regularization=0.05, random_state=0)
    cui = sp.csr_matrix(X.matrix, dtype=np.float32)
    for r in (0, 5, 11):
        total, _, _ = raw.explain(r, cui, 3)  # type: ignore[attr-defined]
        assert model.score(str(X.users[r]), ["i3"])[0] == pytest.approx(total, rel=1e-4)


@settings(max_examples=15)
@given(X=interaction_matrices(max_users=15, max_items=12))
def test_contributions_sum_to_served_score(X: Interactions) -> None:
    model = ALS(factors=4, iterations=3, random_state=0).fit(X)
    for u in X.users[:4]:
        for rec in model.recommend(str(u), n=3, exclude_seen=False):
            items, parts = model.contributions(str(u), rec.item)
            assert list(items) == list(X.history(str(u)))
            # relative to the magnitude of the dot product (|y_i|·|u| bounds |score|), so
            # scores that are ~0 by cancellation are judged on the scale of their terms
            y = model.item_factors_.astype(np.float64)[list(model.items_).index(rec.item)]
            norm = float(np.linalg.norm(y) * np.linalg.norm(model.user_vector(str(u))))
            scale = max(abs(rec.score), float(np.abs(parts).sum()), norm)
            assert abs(parts.sum() - rec.score) <= 1e-9 * scale


def test_precompute_equals_lazy_and_batch_uses_float64_scores() -> None:
    X = _random()
    lazy = ALS(factors=8, iterations=3, random_state=0).fit(X)
    eager = ALS(factors=8, iterations=3, random_state=0).fit(X).precompute()
    users = list(X.users)
    assert lazy.recommend_batch(users) == eager.recommend_batch(users)
    rec = lazy.recommend("u1", n=1)[0]
    u = lazy.user_vector("u1")
    assert rec.score == pytest.approx(float(lazy.item_factors_.astype(np.float64)[list(lazy.items_).index(rec.item)] @ u), rel=1e-14)


def test_forget_resolves_only_touched_items() -> None:
    X = block_interactions()
    model = ALS(factors=8, iterations=10, random_state=0).fit(X)
    before = model.item_factors_.copy()
    touched = [list(model.items_).index(i) for i in X.history("u0")]
    model.forget("u0")
    changed = np.flatnonzero(np.any(model.item_factors_ != before, axis=1))
    assert set(changed) <= set(touched)
    assert changed.size > 0


def test_parameters_validated_at_fit_not_init() -> None:
    model = ALS(factors=-3)  # stored unchanged
    assert model.factors == -3
    with pytest.raises(ValidationError, match="factors"):
        model.fit(_random())
    with pytest.raises(ValidationError, match=r"persona\.DP"):
        ALS(privacy=object()).fit(_random())


def test_generator_random_state_is_accepted() -> None:
    X = _random()
    a = ALS(factors=4, iterations=2, random_state=np.random.default_rng(5)).fit(X)
    b = ALS(factors=4, iterations=2, random_state=np.random.default_rng(5)).fit(X)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


def test_item_step_is_one_overridable_place() -> None:
    calls = []

    class Private(ALS):
        def _item_step(self, Ciu, Y, U, config) -> None:  # type: ignore[no-untyped-def]
            calls.append(Y.shape)
            super()._item_step(Ciu, Y, U, config)

    Private(factors=4, iterations=3, random_state=0).fit(_random())
    assert calls == [(40, 4)] * 3


def test_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    ALS(factors=4, iterations=2, random_state=0).fit(_random())
    assert "ALS" not in capsys.readouterr().err
    ALS(factors=4, iterations=2, random_state=0, show_progress=True).fit(_random())
    assert "ALS" in capsys.readouterr().err
