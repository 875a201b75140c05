"""pandas (and Arrow) out: ``to_pandas()`` on every tabular object (issue 22).

``Interactions``, a scoped view's reads (``EventColumns``, ``ScopedView.to_pandas``),
``RecommendationArrays`` and served lists (``Recommendations.to_pandas``,
``persona.explain.recommendations_to_pandas`` for a batch) come out as tidy frames with
documented columns and dtypes; the frames go back in through ``Interactions.from_pandas``
unchanged.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

import persona
from persona.data import Interactions
from persona.explain import Recommendations, recommendations_to_pandas
from persona.models import ItemKNN, Popularity, RecommendationArrays
from persona.store import EventColumns
from persona.testing import block_interactions, interaction_matrices
from store_helpers import event, shop

UTC_US = pd.DatetimeTZDtype("us", "UTC")
KINDS = ["decomposition", "justification", "non_personalised", "curated"]


def same(a: Interactions, b: Interactions) -> None:
    """Two Interactions hold the same people, items, confidences and times."""
    assert a.users.tolist() == b.users.tolist()
    assert a.items.tolist() == b.items.tolist()
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.matrix.indptr, b.matrix.indptr)
    np.testing.assert_array_equal(a.matrix.indices, b.matrix.indices)
    np.testing.assert_array_equal(a.matrix.data, b.matrix.data)
    if a.at is None or b.at is None:
        assert a.at is None and b.at is None
    else:
        np.testing.assert_array_equal(a.at, b.at)


def timed() -> Interactions:
    df = pd.DataFrame({
        "user": ["u2", "u1", "u1", "u2", "u3"],
        "item": ["b", "a", "c", "a", "c"],
        "qty": [2.0, 1.0, 3.0, 0.5, 4.0],
        "at": pd.to_datetime(["2026-01-02T10:00:00.000001", "2026-01-01T00:00:00.000000",
                              "2026-01-03T00:00:00.000000",
                              "2026-01-04T00:00:00.000000", "2026-01-05T00:00:00.000000"],
                             utc=True),
    })
    return Interactions.from_pandas(df, value="qty", at="at")


# ---------------------------------------------------------------- Interactions
def test_interactions_to_pandas_columns_values_and_dtypes() -> None:
    X = timed()
    df = X.to_pandas()
    assert list(df.columns) == ["user", "item", "value", "at"]
    assert isinstance(df.user.dtype, pd.CategoricalDtype)
    assert isinstance(df.item.dtype, pd.CategoricalDtype)
    # the categories are the matrix's rows and columns, in order
    assert df.user.cat.categories.tolist() == X.users.tolist()
    assert df.item.cat.categories.tolist() == X.items.tolist()
    assert df.value.dtype == np.float64
    assert df["at"].dtype == UTC_US
    assert isinstance(df.index, pd.RangeIndex) and len(df) == X.nnz
    coo = X.matrix.tocoo()
    np.testing.assert_array_equal(df.user.cat.codes.to_numpy(), coo.row)
    np.testing.assert_array_equal(df.item.cat.codes.to_numpy(), coo.col)
    np.testing.assert_array_equal(df.value.to_numpy(), coo.data)
    assert X.history("u1") == {"a": 1.0, "c": 3.0}
    row = df[(df.user == "u2") & (df.item == "b")].iloc[0]
    assert row["value"] == 2.0
    assert row["at"] == pd.Timestamp("2026-01-02T10:00:00.000001", tz="UTC")


def test_interactions_round_trip_through_pandas() -> None:
    X = timed()
    same(Interactions.from_pandas(X.to_pandas(), value="value", at="at"), X)


def test_interactions_without_times_have_no_at_column() -> None:
    X = Interactions.from_csr(sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.5]])),
                              ["u1", "u2"], ["a", "b"])
    df = X.to_pandas()
    assert list(df.columns) == ["user", "item", "value"]
    Y = Interactions.from_pandas(df, value="value", items=X.catalogue)
    same(Y, X)
    assert Y.catalogue.tolist() == X.catalogue.tolist()


def test_people_and_items_without_entries_survive_the_round_trip() -> None:
    # the categories carry the people and items that have no entry
    m = sp.csr_matrix(np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]))
    X = Interactions.from_csr(m, ["nobody", "u1", "nobody-else"], ["x", "y", "z"])
    df = X.to_pandas()
    assert len(df) == 1
    same(Interactions.from_pandas(df, value="value"), X)


@given(interaction_matrices(max_users=12, max_items=10), st.sampled_from(["none", "log", "row"]))
def test_round_trip_property(X: Interactions, scaling: str) -> None:
    X = Interactions.from_csr(X.matrix, X.users, X.items, scaling=scaling)
    same(Interactions.from_pandas(X.to_pandas(), value="value"), X)


def test_empty_interactions_give_an_empty_frame_with_the_columns() -> None:
    X = Interactions.from_csr(sp.csr_matrix((0, 0)), [], [])
    df = X.to_pandas()
    assert df.shape == (0, 3)
    assert list(df.columns) == ["user", "item", "value"]
    assert isinstance(df.user.dtype, pd.CategoricalDtype)
    assert df.value.dtype == np.float64
    timed_empty = timed().with_matrix(sp.csr_matrix((3, 3)), at=np.zeros(0, "datetime64[us]"))
    df = timed_empty.to_pandas()
    assert list(df.columns) == ["user", "item", "value", "at"] and len(df) == 0
    assert df["at"].dtype == UTC_US
    assert df.user.cat.categories.tolist() == ["u2", "u1", "u3"]


def test_from_pandas_takes_the_order_and_domain_of_categorical_ids() -> None:
    df = pd.DataFrame({
        "user": pd.Categorical(["a", "b"], categories=["b", "a", "nobody"]),
        "item": pd.Categorical(["y", "x"], categories=["x", "y", "unsold"]),
    })
    X = Interactions.from_pandas(df)
    assert X.users.tolist() == ["b", "a", "nobody"]
    assert X.items.tolist() == ["x", "y", "unsold"]
    assert X.history("a") == {"y": 1.0} and X.history("nobody") == {}
    # with a declared catalogue, unused categories outside it are not events
    Y = Interactions.from_pandas(df, items=["y", "x", "z"])
    assert Y.items.tolist() == ["y", "x", "z"]
    assert Y.history("b") == {"x": 1.0}


# ---------------------------------------------------------------- a scoped view's reads
def _store() -> persona.Store:
    store = shop()
    for u in ("u1", "u2", "u3"):
        store.grant(u, "personalization", source="test")
    store.ingest([
        event("u1", "sku-1", at="2026-11-01T10:00:00Z", value=2.0),
        event("u1", "sku-2", feature="views", at="2026-11-20T09:30:00.5Z"),
        event("u2", "sku-2", at="2026-11-02T10:00:00Z"),
        event("u2", "sku-2", at="2026-11-03T10:00:00Z", value=3.0),
        event("u3", "sku-3", feature="views", at="2026-11-25T08:00:00Z"),
    ])
    return store


def test_event_columns_to_pandas() -> None:
    view = _store().scope("personalization")
    cols = view.events()
    df = cols.to_pandas()
    assert list(df.columns) == ["user", "item", "feature", "value", "at"]
    for name, labels, codes in (("user", cols.users, cols.user), ("item", cols.items, cols.item),
                                ("feature", cols.features, cols.feature)):
        assert isinstance(df[name].dtype, pd.CategoricalDtype), name
        assert df[name].cat.categories.tolist() == list(labels)
        np.testing.assert_array_equal(df[name].cat.codes.to_numpy(), codes)
    assert df.value.dtype == np.float64 and df.value.tolist() == cols.value.tolist()
    assert df["at"].dtype == UTC_US
    np.testing.assert_array_equal(df["at"].dt.tz_localize(None).to_numpy(), cols.at)
    first = df[df.feature == "views"].sort_values("at").iloc[0]
    assert (first["user"], first["item"]) == ("u1", "sku-2")
    assert first["at"] == pd.Timestamp("2026-11-20T09:30:00.5Z")


def test_scoped_view_to_pandas_is_a_scoped_audited_read() -> None:
    store = _store()
    view = store.scope("personalization")
    before = len(store.audit.entries())
    df = view.to_pandas()
    assert len(df) == 5 and view.lineage.rows == 5
    assert len(store.audit.entries()) > before
    store.withdraw("u2", "personalization", source="test")
    df = view.to_pandas()  # consent is checked at the read
    assert set(df.user) == {"u1", "u3"}
    assert view.lineage.rows == len(df) == 3


def test_view_frame_builds_the_same_interactions_as_the_view() -> None:
    view = _store().scope("personalization")
    weights = {"purchases": 1.0, "views": 0.25}
    from_view = Interactions.from_view(view, weights=weights)
    back = Interactions.from_pandas(view.to_pandas(), value="value", at="at",
                                    feature="feature", weights=weights)
    same(back, from_view)


def test_history_to_pandas_and_an_empty_read() -> None:
    view = _store().scope("personalization")
    h = view.history("u1").to_pandas()
    assert set(h.item) == {"sku-1", "sku-2"} and set(h.user) == {"u1"}
    empty = view.history("nobody").to_pandas()
    assert len(empty) == 0
    assert list(empty.columns) == ["user", "item", "feature", "value", "at"]
    assert isinstance(empty.feature.dtype, pd.CategoricalDtype)
    assert empty.value.dtype == np.float64 and empty["at"].dtype == UTC_US


def test_hand_made_event_columns() -> None:
    cols = EventColumns(
        users=np.array(["u1"], dtype=object), items=np.array(["a", "b"], dtype=object),
        features=("purchases",), user=np.array([0, 0], dtype=np.int32),
        item=np.array([1, 0], dtype=np.int32), feature=np.array([0, 0], dtype=np.int16),
        value=np.array([1.0, 2.0]),
        at=np.array(["2026-11-01T10:00", "2026-11-02"], dtype="datetime64[us]"))
    df = cols.to_pandas()
    assert df.item.tolist() == ["b", "a"]
    assert df["at"].tolist() == [datetime(2026, 11, 1, 10, tzinfo=UTC),
                              datetime(2026, 11, 2, tzinfo=UTC)]


# ---------------------------------------------------------------- recommendations
@pytest.fixture(scope="module")
def knn() -> ItemKNN:
    return ItemKNN(neighbours=10).fit(block_interactions(groups=2, users_per_group=5))


def test_recommendations_to_pandas(knn: ItemKNN) -> None:
    recs = knn.recommend("u0", n=3)
    assert isinstance(recs, Recommendations)
    df = recs.to_pandas()
    assert list(df.columns) == ["rank", "item", "score", "label", "kind", "model", "text"]
    assert df["rank"].dtype == np.int64 and df["rank"].tolist() == [1, 2, 3]
    assert df.item.tolist() == [r.item for r in recs]
    assert df.score.dtype == np.float64 and df.score.tolist() == [r.score for r in recs]
    assert df.label.tolist() == [r.explanation.label for r in recs]
    assert isinstance(df.kind.dtype, pd.CategoricalDtype)
    assert df.kind.cat.categories.tolist() == KINDS
    assert df.kind.tolist() == [r.explanation.kind for r in recs]
    assert df.model.tolist() == ["ItemKNN"] * 3
    assert df.text.tolist() == [r.explanation.text for r in recs]
    # pd.DataFrame on the list itself gives (field, value) pairs; this is the tidy form
    assert not isinstance(df.iloc[0, 0], tuple)


def test_unexplained_and_empty_lists(knn: ItemKNN) -> None:
    df = knn.recommend("u0", n=2, explain=False).to_pandas()
    assert df.label.isna().all() and df.kind.isna().all() and df.text.isna().all()
    assert df.item.notna().all()
    empty = Recommendations([]).to_pandas()
    assert len(empty) == 0
    assert list(empty.columns) == ["rank", "item", "score", "label", "kind", "model", "text"]
    assert empty["rank"].dtype == np.int64 and empty.score.dtype == np.float64
    assert empty.kind.cat.categories.tolist() == KINDS
    assert "text" not in knn.recommend("u0", n=2).to_pandas(text=False).columns


def test_batch_to_pandas_has_a_user_column(knn: ItemKNN) -> None:
    users = ["u0", "u7", "u3"]
    batch = knn.recommend_batch(users, n=2)
    df = recommendations_to_pandas(batch, users)
    assert list(df.columns) == ["user", "rank", "item", "score", "label", "kind", "model",
                                "text"]
    assert df.user.tolist() == ["u0", "u0", "u7", "u7", "u3", "u3"]
    parts = [b.to_pandas() for b in batch]
    expect = pd.concat(parts, ignore_index=True)
    pd.testing.assert_frame_equal(df.drop(columns="user"), expect)
    by_mapping = recommendations_to_pandas(dict(zip(users, batch, strict=True)))
    pd.testing.assert_frame_equal(by_mapping, df)
    empty = recommendations_to_pandas([], [])
    assert list(empty.columns) == list(df.columns) and len(empty) == 0


def test_batch_input_is_checked(knn: ItemKNN) -> None:
    batch = knn.recommend_batch(["u0", "u1"], n=2)
    with pytest.raises(persona.ValidationError, match="one id per list"):
        recommendations_to_pandas(batch, ["u0"])
    with pytest.raises(persona.ValidationError, match="users"):
        recommendations_to_pandas(batch)
    with pytest.raises(persona.ValidationError, match="list of"):
        recommendations_to_pandas(batch, "u0")
    with pytest.raises(persona.ValidationError, match="Recommendation"):
        recommendations_to_pandas([["i1"]], ["u0"])
    with pytest.raises(persona.ValidationError, match="list of lists"):
        recommendations_to_pandas(batch[0][0], ["u0"])
    with pytest.raises(persona.ValidationError, match="True or False"):
        batch[0].to_pandas(text="no")
    with pytest.raises(persona.ValidationError, match="True or False"):
        recommendations_to_pandas(batch, ["u0", "u1"], text=1)


def test_recommendation_arrays_to_pandas(knn: ItemKNN) -> None:
    users = ["u0", "u6"]
    res = knn.recommend_arrays(users, n=3)
    df = res.to_pandas()
    assert list(df.columns) == ["user", "rank", "item", "score"]
    assert df["rank"].dtype == np.int64 and df.score.dtype == np.float64
    batch = recommendations_to_pandas(knn.recommend_batch(users, n=3, explain=False), users)
    pd.testing.assert_frame_equal(df, batch[["user", "rank", "item", "score"]])
    # shorter lists leave no padding rows
    short = knn.recommend_arrays(users, n=3, include=["i0", "i9"], exclude_seen=False)
    df = short.to_pandas()
    assert len(df) == int(short.lengths.sum()) == 4
    assert df.item.notna().all() and np.isfinite(df.score).all()
    assert df["rank"].tolist() == [1, 2, 1, 2]
    # other ids for the same rows
    assert short.to_pandas(users=["a", "b"]).user.tolist() == ["a", "a", "b", "b"]
    with pytest.raises(persona.ValidationError, match="one id per person"):
        short.to_pandas(users=["a"])


def test_hand_made_arrays_need_users() -> None:
    res = RecommendationArrays(np.array([["a"]], dtype=object), np.array([[1.0]]),
                               np.array([1]))
    with pytest.raises(persona.ValidationError, match="users="):
        res.to_pandas()
    assert res.to_pandas(users=["u9"]).to_dict("list") == {
        "user": ["u9"], "rank": [1], "item": ["a"], "score": [1.0]}


def test_empty_arrays() -> None:
    X = block_interactions(groups=1, users_per_group=3)
    df = Popularity().fit(X).recommend_arrays([], n=2).to_pandas()
    assert list(df.columns) == ["user", "rank", "item", "score"] and len(df) == 0
    assert df["rank"].dtype == np.int64 and df.score.dtype == np.float64


# ---------------------------------------------------------------- without pandas / pyarrow
def test_without_pandas_the_error_says_what_to_install(
    knn: ItemKNN, monkeypatch: pytest.MonkeyPatch
) -> None:
    X = timed()
    recs = knn.recommend("u0", n=2)
    arrays = knn.recommend_arrays(["u0"], n=2)
    cols = _store().scope("personalization").events()
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    for call in (X.to_pandas, recs.to_pandas, arrays.to_pandas, cols.to_pandas,
                 lambda: recommendations_to_pandas([recs], ["u0"])):
        with pytest.raises(persona.MissingDependencyError, match=r"persona\[pandas\]") as exc:
            call()
        assert isinstance(exc.value, persona.PersonaError)
        assert isinstance(exc.value, ImportError)
        assert exc.value.code == "missing_dependency"


def test_without_pyarrow_to_arrow_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(persona.MissingDependencyError, match=r"persona\[arrow\]"):
        timed().to_arrow()


def test_to_arrow_types(knn: ItemKNN) -> None:
    pa = pytest.importorskip("pyarrow")
    t = timed().to_arrow()
    assert t.column_names == ["user", "item", "value", "at"]
    assert t.schema.field("user").type == pa.dictionary(pa.int32(), pa.string())
    assert t.schema.field("value").type == pa.float64()
    assert t.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert t.num_rows == timed().nnz
    assert t.column("user").to_pylist() == timed().to_pandas().user.tolist()
    cols = _store().scope("personalization").events().to_arrow()
    assert cols.column_names == ["user", "item", "feature", "value", "at"]
    recs = knn.recommend("u0", n=2)
    rt = recs.to_arrow()
    assert rt.column_names == ["rank", "item", "score", "label", "kind", "model", "text"]
    assert rt.schema.field("rank").type == pa.int64()
    assert rt.column("text").to_pylist() == [r.explanation.text for r in recs]
    at = knn.recommend_arrays(["u0"], n=2).to_arrow()
    assert at.column("item").to_pylist() == [r.item for r in recs]


def test_personalizer_lists_mix_kinds_in_one_table() -> None:
    store = shop()
    items = [f"sku-{i}" for i in range(6)]
    for u in range(6):
        store.grant(f"p{u}", "personalization", source="test")
    store.ingest([event(f"p{u}", items[(u + k) % 6]) for u in range(6) for k in range(3)])
    store.label_items({i: f"Product {i[4:]}" for i in items})
    p = persona.Personalizer(store, model=ItemKNN(neighbours=6)).fit()
    p.curate(pin=["sku-5"], reason="Spring sale")
    users = ["p0", "stranger"]
    batch = p.recommend_batch(users, n=3)
    df = recommendations_to_pandas(batch, users)
    assert df.user.tolist() == ["p0"] * len(batch[0]) + ["stranger"] * len(batch[1])
    assert df.item.tolist() == [r.item for recs in batch for r in recs]
    assert df.label.tolist() == [f"Product {r.item[4:]}" for recs in batch for r in recs]
    kinds = df.groupby("user", observed=True, sort=False)["kind"].apply(set).to_dict()
    assert kinds["p0"] == {"curated", "decomposition"}
    assert kinds["stranger"] == {"curated", "non_personalised"}
    assert df.loc[df.kind == "curated", "text"].tolist() == ["Chosen by our team: Spring sale."] * 2
    one = p.recommend("p0", n=3).to_pandas()
    pd.testing.assert_frame_equal(one, df[df.user == "p0"].drop(columns="user"))


def test_a_table_builds_no_explanation_and_matches_read_ones(knn: ItemKNN) -> None:
    from persona.schema import unread

    fresh = knn.recommend("u1", n=3)
    df = fresh.to_pandas()
    assert all(unread(r.explanation) is not None for r in fresh)  # still lazy
    read = knn.recommend("u1", n=3)
    _ = [r.explanation.text for r in read]  # every explanation built
    assert all(unread(r.explanation) is None for r in read)
    pd.testing.assert_frame_equal(read.to_pandas(), df)
    full = knn.recommend("u1", n=3, detail="full")
    pd.testing.assert_frame_equal(full.to_pandas(), df)


def test_both_batch_tables_take_users_by_one_rule(knn: ItemKNN) -> None:
    """The people of a batch are checked the same way by RecommendationArrays.to_pandas and
    recommendations_to_pandas (one helper): a numpy array or a Series is a list of ids, a
    str is not, the count must match, and ids follow the id rule (NFC)."""
    users = ["u0", "u1"]
    arrays = knn.recommend_arrays(users, n=2)
    batch = knn.recommend_batch(users, n=2, explain=False)
    for people in (np.array(users, dtype=object), pd.Series(users)):
        assert arrays.to_pandas(users=people)["user"].tolist() == ["u0"] * 2 + ["u1"] * 2
        assert recommendations_to_pandas(batch, people, text=False)["user"].tolist() == (
            ["u0"] * 2 + ["u1"] * 2)
    for bad in ("u0", ["u0"]):
        with pytest.raises(persona.ValidationError, match="users"):
            arrays.to_pandas(users=bad)
        with pytest.raises(persona.ValidationError, match="users"):
            recommendations_to_pandas(batch, bad, text=False)
    nfd = ["Jose\u0301", "u1"]
    assert arrays.to_pandas(users=nfd)["user"].iloc[0] == "Jos\u00e9"
