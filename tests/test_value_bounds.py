"""Issue 17, point 7: event values are bounded at the edge, and no factor model returns
empty lists silently.

A negative value used to be stored and then refused by every fit (one bad event blocked
training for the whole purpose, with no way to remove it); one value of 1e25 made a
non-private ALS fit give NaN factors and empty lists for everyone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import persona
from persona.data import Interactions
from persona.models import ALS, BPR
from store_helpers import Clock, event, fingerprint, shop

BAD_VALUES = {
    "negative": -1.0,
    "negative zero point one": -0.1,
    "absurdly large": 1e25,
    "just above the bound": 1e9 * (1 + 1e-12),
    "NaN": float("nan"),
    "infinite": float("inf"),
    "negative infinite": float("-inf"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_out_of_bounds_values_are_refused_by_row_and_field(case: str) -> None:
    store = shop(clock=Clock())
    store.ingest([event("u9", "z")])
    before = fingerprint(store)
    with pytest.raises(persona.ValidationError) as info:
        store.ingest([event("u1", "a"), event("u2", "b", value=BAD_VALUES[case])])
    assert "row 1, field 'value'" in str(info.value)
    assert "from 0 to 1e9" in str(info.value)
    assert fingerprint(store) == before


@pytest.mark.parametrize("value", [0.0, 1e9, 3, 0.5])
def test_values_inside_the_bounds_are_stored(value: float) -> None:
    store = shop(clock=Clock())
    assert store.ingest([event("u1", "a", value=value)]).inserted == 1


def test_skip_mode_leaves_out_bad_values_and_training_still_works() -> None:
    store = shop(clock=Clock())
    for u in ("u1", "u2", "u3"):
        store.grant(u, "personalization", source="form")
    report = store.ingest(
        [event("u1", "a"), event("u2", "b", value=-3.0), event("u3", "c", value=1e25),
         event("u2", "a"), event("u3", "b")],
        on_invalid="skip",
    )
    assert (report.inserted, report.rejected) == (3, 2)
    assert report.rejected_by_field == {"value": 2}
    X = Interactions.from_view(store.scope("personalization"))
    assert X.matrix.data.min() >= 0
    ALS(factors=2, iterations=2, random_state=0).fit(X)


def test_a_dataframe_with_a_negative_value_is_refused() -> None:
    store = shop(clock=Clock())
    df = pd.DataFrame([event("u1", "a"), event("u2", "b", value=-2.0)])
    with pytest.raises(persona.ValidationError, match="row 1, field 'value'"):
        store.ingest(df)


def _huge(value: float) -> Interactions:
    m = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3))))
    m.data[0] = value
    return Interactions.from_csr(m, [f"u{i}" for i in range(6)], [f"i{i}" for i in range(6)])


@pytest.mark.parametrize("value", [1e25, 1e30])
def test_als_fit_with_overflowing_values_raises_instead_of_empty_lists(value: float) -> None:
    model = ALS(factors=4, iterations=5, random_state=0)
    with pytest.raises(persona.PersonaError, match="regularization") as info:
        model.fit(_huge(value))
    assert "largest value" in str(info.value)
    assert not model.is_fitted


@pytest.mark.parametrize("value", [1e9, 1e12, 1e15, 1e18])
def test_als_fit_with_huge_values_raises_or_serves_everyone(value: float) -> None:
    """Whether float32 arithmetic overflows at these sizes depends on the BLAS build and
    the CPU (1e12 overflowed on one machine and not on another); what never happens is
    a fitted model that serves empty lists."""
    model = ALS(factors=4, iterations=5, random_state=0)
    X = _huge(value)
    refused: persona.PersonaError | None = None
    try:
        model.fit(X)
    except persona.PersonaError as error:
        refused = error
    if refused is not None:
        assert "largest value" in str(refused)
        assert not model.is_fitted
        return
    assert np.isfinite(model.item_factors_).all()
    assert all(model.recommend(u, n=2) for u in X.users)


def test_factor_models_fitted_on_sane_values_serve_everyone() -> None:
    X = _huge(1e6)
    for cls in (ALS, BPR):
        model = cls(factors=4, iterations=5, random_state=0).fit(X)
        assert all(model.recommend(u, n=2) for u in X.users)


def test_a_feature_can_set_a_lower_bound_of_its_own() -> None:
    store = shop(clock=Clock())
    store.define_feature("quantity", purposes=["personalization"], category="order lines",
                         retention_days=None, max_value=1000)
    assert store.features["quantity"].max_value == 1000
    assert store.features["purchases"].max_value is None
    batch = [event("u1", "a", "quantity", value=1000.0), event("u2", "b", "quantity",
             value=1001.0), event("u3", "c", value=5000.0)]
    with pytest.raises(persona.ValidationError, match=r"row 1, field 'value'.*max_value"):
        store.ingest(batch)
    report = store.ingest(batch, on_invalid="skip")
    assert (report.inserted, report.rejected_by_field) == (2, {"value": 1})
    for bad in (0, -1, float("nan"), 2e9):
        with pytest.raises(persona.ValidationError, match="max_value"):
            store.define_feature("quantity", purposes=["personalization"],
                                 category="order lines", retention_days=None, max_value=bad)
