"""Issue 22: one id rule for the store, the models and the command line.

An id is a str or an int (Python or numpy, never a bool, never a float); an int is the same
id as its decimal string, which is the canonical form persona keeps, stores and returns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import persona
from persona.data import Interactions
from persona.errors import UnknownUserError, ValidationError
from persona.models import ALS, ItemKNN
from persona.schema import ID_RULE, check_id, check_ids
from store_helpers import ratings_store

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def ratings(shared_data: Path) -> pd.DataFrame:
    df = pd.read_csv(shared_data / "ml-latest-small" / "ratings.csv")
    return df[df["userId"] <= 200]


# ------------------------------------------------------------ the rule itself
@pytest.mark.parametrize("value", [170, np.int64(170), np.int32(170), np.uint16(170)])
def test_an_integer_is_its_decimal_string(value: object) -> None:
    assert check_id(value, "user") == "170"
    assert type(check_id(value, "user")) is str
    assert check_ids([value, "a"], "user") == ["170", "a"]


def test_negative_and_large_integers() -> None:
    assert check_id(-3, "user") == "-3"
    assert check_id(2**70, "user") == str(2**70)
    with pytest.raises(ValidationError, match="longer than 512"):
        check_id(10**600, "user")


@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_a_bool_is_never_an_id(value: object) -> None:
    with pytest.raises(ValidationError, match="bool"):
        check_id(value, "user")
    with pytest.raises(ValidationError, match="bool"):
        check_ids(["a", value], "user")


@pytest.mark.parametrize("value", [170.0, np.float64(170.0), 1.5, float("nan")])
def test_a_float_is_refused_with_the_fix(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_id(value, "user")
    message = str(info.value)
    assert "float" in message
    assert "Int64" in message  # the pandas fix for a column with missing values
    assert ID_RULE in message


def test_the_rule_names_integers() -> None:
    assert "int" in ID_RULE and "bool" in ID_RULE and "float" in ID_RULE


def test_interactions_take_integer_ids_and_refuse_floats() -> None:
    import scipy.sparse as sp

    X = Interactions.from_csr(sp.eye(2, format="csr"), [1, 2], np.array([10, 20]))
    assert X.users.tolist() == ["1", "2"] and X.items.tolist() == ["10", "20"]
    assert X.history(1) == {"10": 1.0}
    with pytest.raises(ValidationError, match="float"):
        Interactions.from_csr(sp.eye(2, format="csr"), [1.0, 2.0], ["a", "b"])
    with pytest.raises(ValidationError, match="bool"):
        Interactions.from_csr(sp.eye(2, format="csr"), [True, False], ["a", "b"])
    with pytest.raises(ValidationError, match="unique"):
        Interactions.from_csr(sp.eye(2, format="csr"), [1, "1"], ["a", "b"])


# ------------------------------------------------------------ from_pandas
def test_from_pandas_keeps_integer_ids_as_their_strings(ratings: pd.DataFrame) -> None:
    X = Interactions.from_pandas(ratings, user="userId", item="movieId")
    assert set(X.users.tolist()) == set(ratings["userId"].astype(str))
    nullable = ratings.astype({"userId": "Int64", "movieId": "Int64"})
    Y = Interactions.from_pandas(nullable, user="userId", item="movieId")
    assert Y.users.tolist() == X.users.tolist() and Y.items.tolist() == X.items.tolist()


def test_from_pandas_refuses_float_and_bool_id_columns(ratings: pd.DataFrame) -> None:
    floats = ratings.head(20).astype({"userId": float})
    with pytest.raises(ValidationError) as info:
        Interactions.from_pandas(floats, user="userId", item="movieId")
    assert "userId" in str(info.value) and "Int64" in str(info.value)
    flags = pd.DataFrame({"user": [True, False], "item": ["a", "b"]})
    with pytest.raises(ValidationError, match="bool"):
        Interactions.from_pandas(flags)
    mixed = pd.DataFrame({"user": ["u1", 2.5], "item": ["a", "b"]})
    with pytest.raises(ValidationError, match="float"):
        Interactions.from_pandas(mixed)


def test_categorical_id_columns_follow_the_rule() -> None:
    """A categorical column's categories are ids too: integers become their strings (in
    the categories' order, unused ones kept), floats and bools are refused."""
    df = pd.DataFrame({"user": pd.Categorical([3, 1, 3], categories=[3, 1, 7]),
                       "item": pd.Categorical(["a", "b", "a"])})
    X = Interactions.from_pandas(df)
    assert X.users.tolist() == ["3", "1", "7"]
    assert X.history(3) == {"a": 2.0} and X.history(7) == {}  # summed
    for bad in ([1.5, 2.5], [True, False]):
        frame = pd.DataFrame({"user": pd.Categorical(bad), "item": ["a", "b"]})
        with pytest.raises(ValidationError):
            Interactions.from_pandas(frame)


def test_recommend_and_explain_by_integer_after_fitting_on_integers(
    ratings: pd.DataFrame, tmp_path: Path
) -> None:
    X = Interactions.from_pandas(ratings, user="userId", item="movieId")
    als = ALS(factors=8, iterations=3, random_state=0).fit(X)
    recs = als.recommend(170, n=5)
    assert recs == als.recommend("170", n=5)
    assert len(recs) == 5 and all(type(r.item) is str for r in recs)
    top = int(recs[0].item)
    e = als.explain(np.int64(170), top)
    assert e.item == recs[0].item
    assert np.isclose(als.score(170, [top])[0], recs[0].score)
    arrays = als.recommend_arrays([170, np.int64(1)], n=3)
    assert arrays.items[0].tolist() == [r.item for r in recs[:3]]
    seen = set(ratings.loc[ratings["userId"] == 170, "movieId"])
    assert not seen & {int(r.item) for r in recs}  # exclude_seen found 170's history
    with pytest.raises(ValidationError, match="float"):
        als.recommend(170.0)
    with pytest.raises(ValidationError, match="bool"):
        als.recommend(True)
    with pytest.raises(UnknownUserError):
        als.recommend(10**9)
    # a model file round trip keeps the rule
    loaded = ALS.load(als.save(tmp_path / "als"))
    again = loaded.recommend(170, n=5)
    assert [(r.item, r.rank) for r in again] == [(r.item, r.rank) for r in recs]
    knn = ItemKNN().fit(X)
    assert all(r.item != str(top) for r in knn.similar_items(top, n=3))
    assert knn.recommend(170, n=3)


# ------------------------------------------------------------ the store
def test_store_ingests_integer_ids_and_the_model_recommends_by_integer(
    ratings: pd.DataFrame,
) -> None:
    store = ratings_store()
    df = pd.DataFrame({"user": ratings["userId"], "item": ratings["movieId"],
                       "feature": "ratings",
                       "at": pd.to_datetime(ratings["timestamp"], unit="s", utc=True)})
    assert df["user"].dtype.kind == "i"
    report = store.ingest(df)
    assert report.inserted == len(df)
    store.ingest([{"user": 170, "item": np.int64(1), "feature": "ratings",
                   "at": "2026-01-01T00:00:00Z"}])
    for u in ratings["userId"].unique():
        store.grant(int(u), "personalization", source="test")
    assert "170" in store.consented("personalization")
    X = Interactions.from_view(store.scope("personalization"))
    als = ALS(factors=8, iterations=3, random_state=0).fit(X)
    assert als.recommend(170, n=3)
    assert store.consent_status(170)["personalization"] is not None
    store.erase(170)
    assert "170" not in store.consented("personalization")


def test_store_refuses_float_and_bool_ids_with_the_rule() -> None:
    store = ratings_store()
    rows = [{"user": 170.0, "item": "a", "feature": "ratings", "at": "2026-01-01T00:00:00Z"},
            {"user": "u", "item": True, "feature": "ratings", "at": "2026-01-01T00:00:00Z"}]
    with pytest.raises(ValidationError) as info:
        store.ingest(rows)
    message = str(info.value)
    assert "row 0, field 'user'" in message and "float" in message
    assert "row 1, field 'item'" in message and "bool" in message
    assert store.stats()["events"] == 0
    floats = pd.DataFrame({"user": [1.0, 2.0], "item": ["a", "b"], "feature": "ratings",
                           "at": "2026-01-01T00:00:00Z"})
    with pytest.raises(ValidationError, match="Int64"):
        store.ingest(floats)
    with pytest.raises(ValidationError, match="bool"):
        store.grant(True, "personalization", source="test")


def test_event_ids_follow_the_rule_too() -> None:
    """An event id (order line) from an integer column is its decimal string: re-sending
    it as text is the same event; bools and floats are refused with the rule."""
    store = persona.Store(":memory:")
    store.define_purpose("p", description="d")
    store.define_feature("f", purposes=["p"], category="c", retention_days=None)
    df = pd.DataFrame({"id": [1, 2], "user": [10, 11], "item": ["a", "b"], "feature": "f",
                       "at": pd.to_datetime(["2026-01-01", "2026-01-02"]).tz_localize("UTC")})
    assert store.ingest(df).inserted == 2
    again = [{"id": "1", "user": "10", "item": "a", "feature": "f",
              "at": "2026-01-01T00:00:00Z"},
             {"id": np.int64(2), "user": 11, "item": "b", "feature": "f",
              "at": "2026-01-02T00:00:00Z"}]
    report = store.ingest(again)
    assert report.inserted == 0 and report.duplicates == 2
    for bad in (True, 3.0):
        with pytest.raises(ValidationError, match="never a bool or a float"):
            store.ingest([{"id": bad, "user": "u", "item": "a", "feature": "f",
                           "at": "2026-01-03T00:00:00Z"}])
    assert store.stats()["events"] == 2
