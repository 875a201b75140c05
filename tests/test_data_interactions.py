"""Interactions builders: weighting, duplicates, time decay, scaling, bad input."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from persona.data import Interactions
from persona.errors import UnknownUserError, ValidationError
from persona.store import EventColumns


class FakeView:
    """Stands in for the store's ScopedView: only ``events()`` and ``lineage`` are read."""

    def __init__(self, cols: EventColumns, lineage: object = "lineage-object") -> None:
        self._cols = cols
        self.lineage = lineage

    def events(self) -> EventColumns:
        return self._cols


def _cols() -> EventColumns:
    return EventColumns(
        users=np.array(["u1", "u2", "u3"], dtype=object),
        items=np.array(["a", "b", "c"], dtype=object),
        features=("purchases", "views", "searches"),
        user=np.array([0, 0, 0, 1, 2], dtype=np.int32),
        item=np.array([0, 0, 1, 1, 2], dtype=np.int32),
        feature=np.array([0, 0, 1, 1, 2], dtype=np.int16),
        value=np.array([1.0, 2.0, 5.0, 1.0, 3.0]),
        at=np.array(
            ["2026-11-01", "2026-11-03", "2026-11-02", "2026-11-05", "2026-11-04"],
            dtype="datetime64[us]",
        ),
    )


def test_from_view_weights_values_and_drops_unlisted_features() -> None:
    X = Interactions.from_view(FakeView(_cols()), weights={"purchases": 1.0, "views": 0.2})
    assert X.history("u1") == pytest.approx({"a": 3.0, "b": 1.0})
    assert X.history("u2") == pytest.approx({"b": 0.2})
    assert X.history("u3") == {}  # 'searches' not in weights: dropped
    assert X.lineage == "lineage-object"
    assert X.features == ("purchases", "views")
    # the latest time of a person-item pair is kept
    assert X.at is not None
    assert X.at[0] == np.datetime64("2026-11-03", "us")


def test_from_view_without_weights_uses_every_feature() -> None:
    X = Interactions.from_view(FakeView(_cols()))
    assert X.history("u3") == {"c": 3.0}
    assert X.features == ("purchases", "views", "searches")


def test_from_view_rejects_other_return_types() -> None:
    class Bad:
        lineage = None

        def events(self) -> list[int]:
            return []

    with pytest.raises(ValidationError, match="EventColumns"):
        Interactions.from_view(Bad())


def test_time_decay_halves_at_one_half_life() -> None:
    X = Interactions.from_view(
        FakeView(_cols()), weights={"views": 1.0}, half_life=timedelta(days=3),
        now=np.datetime64("2026-11-05"),
    )
    # u1-b: 5.0 viewed on 11-02, 3 days before 'now'
    assert X.history("u1")["b"] == pytest.approx(2.5)
    assert X.history("u2")["b"] == pytest.approx(1.0)


def test_scaling_log_and_bm25() -> None:
    X = Interactions.from_view(FakeView(_cols()), scaling="log")
    assert X.history("u1")["a"] == pytest.approx(np.log1p(3.0))
    B = Interactions.from_view(FakeView(_cols()), scaling="bm25")
    assert B.shape == (3, 3)
    assert np.all(B.matrix.data > 0)
    with pytest.raises(ValidationError, match="scaling"):
        Interactions.from_view(FakeView(_cols()), scaling="sqrt")  # type: ignore[arg-type]


def test_bm25_matches_implicit() -> None:
    from implicit.nearest_neighbours import bm25_weight

    rng = np.random.default_rng(1)
    m = sp.random(30, 12, density=0.3, random_state=rng, format="csr") * 5
    X = Interactions.from_csr(m, [f"u{i}" for i in range(30)], [f"i{j}" for j in range(12)],
                              scaling="bm25")
    ref = sp.csr_matrix(bm25_weight(sp.coo_matrix(m), K1=100, B=0.8))
    ref.eliminate_zeros()
    np.testing.assert_allclose(X.matrix.toarray(), np.maximum(ref.toarray(), 0), rtol=1e-12)


def test_from_pandas_sums_duplicates_and_keeps_latest_time() -> None:
    df = pd.DataFrame({
        "user": ["u1", "u1", "u2", "u1"], "item": ["a", "a", "b", "c"],
        "qty": [1.0, 2.0, 4.0, 1.0],
        "when": ["2026-01-02", "2026-01-01", "2026-01-03", "2026-01-04"],
    })
    X = Interactions.from_pandas(df, value="qty", at="when", tz="UTC")
    assert X.shape == (2, 3)
    assert X.history("u1") == {"a": 3.0, "c": 1.0}
    assert X.at is not None
    assert X.at[0] == np.datetime64("2026-01-02", "us")


def test_from_pandas_bad_input_says_what_to_do() -> None:
    df = pd.DataFrame({"user": ["u1", None], "item": ["a", "b"], "v": [1.0, 2.0]})
    with pytest.raises(ValidationError, match="dropna"):
        Interactions.from_pandas(df)
    with pytest.raises(ValidationError, match="not in the frame"):
        Interactions.from_pandas(df, value="nope")
    neg = pd.DataFrame({"user": ["u1"], "item": ["a"], "v": [-1.0]})
    with pytest.raises(ValidationError, match="negative") as info:
        Interactions.from_pandas(neg, value="v")
    assert info.value.errors[0]["row"] == 0
    nan = pd.DataFrame({"user": ["u1"], "item": ["a"], "v": [np.nan]})
    with pytest.raises(ValidationError, match="non-finite"):
        Interactions.from_pandas(nan, value="v")
    with pytest.raises(ValidationError, match="feature"):
        Interactions.from_pandas(nan, weights={"x": 1.0})


def test_from_csr_validation() -> None:
    with pytest.raises(ValidationError, match="shape"):
        Interactions.from_csr(sp.eye(2, format="csr"), ["a"], ["x", "y"])
    with pytest.raises(ValidationError, match="unique"):
        Interactions.from_csr(sp.eye(2, format="csr"), ["a", "a"], ["x", "y"])
    with pytest.raises(ValidationError, match="non-negative"):
        Interactions.from_csr(-sp.eye(2, format="csr"), ["a", "b"], ["x", "y"])
    X = Interactions.from_csr(sp.csr_matrix(np.array([[0.0, 1.0]])), ["a"], ["x", "y"])
    assert X.nnz == 1
    with pytest.raises(UnknownUserError):
        X.history("zz")


@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 7), st.floats(0.01, 100.0)),
        min_size=1, max_size=60,
    )
)
def test_builder_equals_dense_accumulation(events: list[tuple[int, int, float]]) -> None:
    """Property: the CSR built from events equals summing the events densely."""
    df = pd.DataFrame(events, columns=["user", "item", "value"]).astype({"user": str,
                                                                          "item": str})
    X = Interactions.from_pandas(df, value="value")
    dense = np.zeros(X.shape)
    u = {k: i for i, k in enumerate(X.users)}
    it = {k: i for i, k in enumerate(X.items)}
    for a, b, v in events:
        dense[u[str(a)], it[str(b)]] += v
    np.testing.assert_allclose(X.matrix.toarray(), dense, rtol=1e-12)
    assert X.matrix.has_canonical_format
