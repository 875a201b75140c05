"""Splits keep shapes, partition the entries and honour k and time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from persona.data import Interactions, leave_k_out, time_split
from persona.errors import ValidationError
from persona.testing import interaction_matrices


@given(X=interaction_matrices(), k=st.integers(1, 3), seed=st.integers(0, 1000))
def test_leave_k_out_partitions(X: Interactions, k: int, seed: int) -> None:
    if not (np.diff(X.matrix.indptr) > k).any():  # nothing to hold out: says so (issue 22)
        with pytest.raises(ValidationError, match="holds out nothing"):
            leave_k_out(X, k=k, random_state=seed)
        return
    train, test = leave_k_out(X, k=k, random_state=seed)
    assert train.shape == test.shape == X.shape
    np.testing.assert_allclose((train.matrix + test.matrix).toarray(), X.matrix.toarray())
    assert train.matrix.multiply(test.matrix).nnz == 0
    lengths = np.diff(X.matrix.indptr)
    held = np.diff(test.matrix.indptr)
    np.testing.assert_array_equal(held, np.where(lengths > k, k, 0))


def test_leave_k_out_by_time_holds_out_latest() -> None:
    df = pd.DataFrame({
        "user": ["u"] * 4 + ["v"], "item": [*list("abcd"), "a"],
        "at": ["2026-01-04", "2026-01-01", "2026-01-03", "2026-01-02", "2026-01-01"],
    })
    X = Interactions.from_pandas(df, at="at", tz="UTC")
    train, test = leave_k_out(X, k=2, by="time")
    assert set(test.history("u")) == {"a", "c"}
    assert test.history("v") == {}  # only one item: stays in training
    assert set(train.history("u")) == {"b", "d"}
    with pytest.raises(ValidationError, match="times"):
        leave_k_out(Interactions.from_pandas(df), by="time")
    with pytest.raises(ValidationError):
        leave_k_out(X, k=0)


def test_time_split() -> None:
    df = pd.DataFrame({"user": ["u", "u", "v"], "item": ["a", "b", "a"],
                       "at": ["2026-01-01", "2026-03-01", "2026-02-01"]})
    X = Interactions.from_pandas(df, at="at", tz="UTC")
    train, test = time_split(X, "2026-02-01")
    assert train.history("u") == {"a": 1.0}
    assert test.history("u") == {"b": 1.0}
    assert test.history("v") == {"a": 1.0}
    assert train.at is not None
    assert test.at is not None
    assert (train.at < np.datetime64("2026-02-01")).all()
    with pytest.raises(ValidationError):
        time_split(Interactions.from_pandas(df), "2026-01-01")


@given(X=interaction_matrices(), k=st.integers(1, 6), share=st.sampled_from([0.2, 0.5, 0.99]),
       seed=st.integers(0, 1000))
def test_leave_k_out_with_a_share_holds_out_up_to_k_and_at_most_that_share(
        X: Interactions, k: int, share: float, seed: int) -> None:
    lengths = np.diff(X.matrix.indptr)
    expected = np.minimum(k, np.floor(share * lengths).astype(np.int64))
    train, test = leave_k_out(X, k=k, max_share=share, random_state=seed, allow_empty=True)
    np.testing.assert_allclose((train.matrix + test.matrix).toarray(), X.matrix.toarray())
    assert train.matrix.multiply(test.matrix).nnz == 0
    np.testing.assert_array_equal(np.diff(test.matrix.indptr), expected)
    if not expected.any():
        with pytest.raises(ValidationError, match="holds out nothing"):
            leave_k_out(X, k=k, max_share=share, random_state=seed)


def test_leave_k_out_with_a_share_draws_uniformly_and_refuses_bad_shares() -> None:
    X = Interactions.from_csr(__import__("scipy.sparse").sparse.csr_matrix(np.ones((1, 4))),
                              ["u"], list("abcd"))
    seen = dict.fromkeys("abcd", 0)
    for seed in range(400):  # two of four held out: each item half the time
        _, test = leave_k_out(X, k=5, max_share=0.5, random_state=seed)
        assert len(test.history("u")) == 2
        for item in test.history("u"):
            seen[item] += 1
    assert all(150 <= v <= 250 for v in seen.values()), seen
    for bad in (0.0, 1.0, 1.5, -0.1, True, "0.5"):
        with pytest.raises(ValidationError, match="max_share must be a number strictly "
                                                  "between 0 and 1"):
            leave_k_out(X, k=1, max_share=bad)  # type: ignore[arg-type]
