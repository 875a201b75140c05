"""Issue 22: honest time handling. Numbers need a unit, naive times need a zone, and a
split that leaves one side empty says why instead of returning nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from persona.data import Interactions, leave_k_out, time_split
from persona.errors import ValidationError
from store_helpers import ratings_store

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def ratings(shared_data: Path) -> pd.DataFrame:
    return pd.read_csv(shared_data / "ml-latest-small" / "ratings.csv")


# ------------------------------------------------------------ from_pandas: numbers
def test_unix_seconds_without_a_unit_are_refused_with_the_fix(ratings: pd.DataFrame) -> None:
    with pytest.raises(ValidationError) as info:
        Interactions.from_pandas(ratings, user="userId", item="movieId", at="timestamp")
    message = str(info.value)
    assert "at_unit" in message
    assert "at_unit='s'" in message  # the unit the magnitude suggests
    assert "timestamp" in message


@pytest.mark.parametrize(("scale", "unit"), [(1, "ms"), (1_000, "us"), (1_000_000, "ns")])
def test_the_suggested_unit_follows_the_magnitude(ratings: pd.DataFrame, scale: int,
                                                  unit: str) -> None:
    df = ratings.head(50).assign(timestamp=ratings["timestamp"].head(50) * 1000 * scale)
    with pytest.raises(ValidationError, match=f"at_unit='{unit}'"):
        Interactions.from_pandas(df, user="userId", item="movieId", at="timestamp")


def test_movielens_seconds_with_a_unit_are_the_real_dates(ratings: pd.DataFrame) -> None:
    X = Interactions.from_pandas(ratings, user="userId", item="movieId", at="timestamp",
                                 at_unit="s")
    assert X.at is not None
    expected = pd.to_datetime(ratings["timestamp"], unit="s")
    assert X.at.min() == np.datetime64(expected.min(), "us")
    assert X.at.max() == np.datetime64(expected.max(), "us")
    assert str(X.at.min())[:4] == "1996"
    train, test = time_split(X, "2005-01-01")
    # one rating per (person, movie) in MovieLens: a pair's time is its rating's time
    after = int((ratings["timestamp"] >= datetime(2005, 1, 1, tzinfo=UTC).timestamp()).sum())
    assert test.nnz == after > 0
    assert train.nnz == len(ratings) - after > 0


@pytest.mark.parametrize(("unit", "scale"), [("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_every_unit_gives_the_same_instants(ratings: pd.DataFrame, unit: str,
                                            scale: int) -> None:
    df = ratings.head(200)
    ref = Interactions.from_pandas(df, user="userId", item="movieId", at="timestamp",
                                   at_unit="s")
    other = Interactions.from_pandas(df.assign(timestamp=df["timestamp"] * scale),
                                     user="userId", item="movieId", at="timestamp",
                                     at_unit=unit)
    np.testing.assert_array_equal(ref.at, other.at)


def test_fractional_seconds_keep_their_microseconds() -> None:
    df = pd.DataFrame({"user": ["u"], "item": ["a"], "t": [1.5]})
    X = Interactions.from_pandas(df, at="t", at_unit="s")
    assert X.at is not None
    assert X.at[0] == np.datetime64("1970-01-01T00:00:01.500000", "us")


def test_bad_units_and_misplaced_units_are_refused() -> None:
    nums = pd.DataFrame({"user": ["u"], "item": ["a"], "t": [964982703]})
    with pytest.raises(ValidationError, match="'s', 'ms', 'us' or 'ns'"):
        Interactions.from_pandas(nums, at="t", at_unit="sec")
    text = pd.DataFrame({"user": ["u"], "item": ["a"], "t": ["2026-01-01T00:00:00Z"]})
    with pytest.raises(ValidationError, match="at_unit"):
        Interactions.from_pandas(text, at="t", at_unit="s")
    with pytest.raises(ValidationError, match="at_unit"):
        Interactions.from_pandas(nums.drop(columns="t"), at_unit="s")
    flags = pd.DataFrame({"user": ["u"], "item": ["a"], "t": [True]})
    with pytest.raises(ValidationError, match="bool"):
        Interactions.from_pandas(flags, at="t", at_unit="s")


def test_missing_times_are_refused_with_the_fix() -> None:
    df = pd.DataFrame({"user": ["u", "v"], "item": ["a", "b"], "t": [964982703, None]})
    with pytest.raises(ValidationError, match="dropna"):
        Interactions.from_pandas(df, at="t", at_unit="s")
    df = pd.DataFrame({"user": ["u", "v"], "item": ["a", "b"],
                       "t": ["2026-01-01T00:00:00Z", None]})
    with pytest.raises(ValidationError, match="dropna"):
        Interactions.from_pandas(df, at="t")


# ------------------------------------------------------------ from_pandas: zones
def test_naive_times_need_a_zone() -> None:
    df = pd.DataFrame({"user": ["u", "u"], "item": ["a", "b"],
                       "t": ["2026-01-01 10:00", "2026-07-01 10:00"]})
    with pytest.raises(ValidationError, match="tz="):
        Interactions.from_pandas(df, at="t")
    with pytest.raises(ValidationError, match="tz="):
        Interactions.from_pandas(df.assign(t=pd.to_datetime(df["t"])), at="t")
    utc = Interactions.from_pandas(df, at="t", tz="UTC")
    london = Interactions.from_pandas(df, at="t", tz="Europe/London")
    assert utc.at is not None and london.at is not None
    assert utc.at.tolist() == [datetime(2026, 1, 1, 10), datetime(2026, 7, 1, 10)]
    # winter: London is UTC; summer: UTC+1, so 10:00 there is 09:00 UTC
    assert london.at.tolist() == [datetime(2026, 1, 1, 10), datetime(2026, 7, 1, 9)]
    with pytest.raises(ValidationError, match="time zone"):
        Interactions.from_pandas(df, at="t", tz="Mars/Olympus")


def test_aware_times_are_converted_to_utc_without_a_zone() -> None:
    df = pd.DataFrame({"user": ["u", "u"], "item": ["a", "b"],
                       "t": ["2026-01-01T10:00:00+02:00", "2026-01-01T10:00:00Z"]})
    X = Interactions.from_pandas(df, at="t")
    assert X.at is not None
    assert X.at.tolist() == [datetime(2026, 1, 1, 8), datetime(2026, 1, 1, 10)]
    aware = pd.DataFrame({"user": ["u"], "item": ["a"],
                          "t": pd.to_datetime(["2026-01-01T10:00"]).tz_localize("Asia/Tokyo")})
    Y = Interactions.from_pandas(aware, at="t", tz="UTC")  # tz is only for naive times
    assert Y.at is not None
    assert Y.at.tolist() == [datetime(2026, 1, 1, 1)]


def test_a_time_zone_without_times_is_refused() -> None:
    df = pd.DataFrame({"user": ["u"], "item": ["a"]})
    with pytest.raises(ValidationError, match="tz"):
        Interactions.from_pandas(df, tz="UTC")


# ------------------------------------------------------------ splits
def test_time_split_that_leaves_a_side_empty_says_why() -> None:
    df = pd.DataFrame({"user": ["u", "u", "v"], "item": ["a", "b", "a"],
                       "t": ["2026-01-01", "2026-03-01", "2026-02-01"]})
    X = Interactions.from_pandas(df, at="t", tz="UTC")
    with pytest.raises(ValidationError, match=r"test side.*2026-03-01"):
        time_split(X, "2027-01-01")
    with pytest.raises(ValidationError, match=r"train(ing)? side.*2026-01-01"):
        time_split(X, "2025-01-01")
    train, test = time_split(X, datetime(2026, 2, 1, 1, tzinfo=UTC))  # aware: converted
    assert test.nnz == 1 and train.nnz == 2


def test_time_split_reads_an_aware_cut_in_utc() -> None:
    df = pd.DataFrame({"user": ["u", "u"], "item": ["a", "b"],
                       "t": ["2026-01-01T10:00:00Z", "2026-01-01T12:00:00Z"]})
    X = Interactions.from_pandas(df, at="t")
    # 13:00 at UTC+2 is 11:00 UTC: a before, b after
    train, test = time_split(X, "2026-01-01T13:00:00+02:00")
    assert train.history("u") == {"a": 1.0} and test.history("u") == {"b": 1.0}


def test_leave_k_out_that_holds_out_nothing_says_why() -> None:
    df = pd.DataFrame({"user": ["u", "v"], "item": ["a", "a"]})
    with pytest.raises(ValidationError, match="more than 1"):
        leave_k_out(Interactions.from_pandas(df), k=1, random_state=0)


# ------------------------------------------------------------ the store
def _frame(ratings: pd.DataFrame, n: int = 300) -> pd.DataFrame:
    head = ratings.head(n)
    return pd.DataFrame({"user": head["userId"].astype(str), "item": head["movieId"].astype(str),
                         "feature": "ratings", "at": head["timestamp"]})


def test_store_ingest_refuses_numbers_without_a_unit(ratings: pd.DataFrame) -> None:
    store = ratings_store()
    with pytest.raises(ValidationError, match="at_unit='s'"):
        store.ingest(_frame(ratings))
    with pytest.raises(ValidationError, match="at_unit='s'"):
        store.ingest(_frame(ratings).to_dict("records"))
    assert store.stats()["events"] == 0


@pytest.mark.parametrize("records", [False, True])
def test_store_ingest_reads_unix_seconds_with_a_unit(ratings: pd.DataFrame,
                                                     records: bool) -> None:
    store = ratings_store()
    df = _frame(ratings)
    report = store.ingest(df.to_dict("records") if records else df, at_unit="s")
    assert report.inserted == len(df)
    for u in df["user"].unique():
        store.grant(u, "personalization", source="test")
    cols = store.scope("personalization").events()
    expected = np.sort(pd.to_datetime(df["at"], unit="s").to_numpy().astype("datetime64[us]"))
    np.testing.assert_array_equal(np.sort(cols.at), expected)


def test_store_ingest_with_a_unit_refuses_text_times() -> None:
    store = ratings_store()
    rows = [{"user": "u", "item": "a", "feature": "ratings", "at": 964982703},
            {"user": "u", "item": "b", "feature": "ratings", "at": "2026-01-01T00:00:00Z"}]
    with pytest.raises(ValidationError, match=r"row 1.*at_unit"):
        store.ingest(rows, at_unit="s")
    with pytest.raises(ValidationError, match="'s', 'ms', 'us' or 'ns'"):
        store.ingest(rows, at_unit="seconds")
    assert store.stats()["events"] == 0


def test_store_ingest_reads_naive_times_in_the_zone_given() -> None:
    store = ratings_store()
    naive = pd.DataFrame({"user": ["u", "u"], "item": ["a", "b"], "feature": "ratings",
                          "at": pd.to_datetime(["2026-01-01 10:00", "2026-07-01 10:00"])})
    with pytest.raises(ValidationError, match="tz="):
        store.ingest(naive)
    with pytest.raises(ValidationError, match="tz="):
        store.ingest([{"user": "u", "item": "a", "feature": "ratings",
                       "at": "2026-01-01 10:00"}])
    store.ingest(naive, tz="Europe/London")
    store.ingest([{"user": "v", "item": "a", "feature": "ratings",
                   "at": "2026-07-01T10:00:00"}], tz="Europe/London")
    store.grant("u", "personalization", source="test")
    store.grant("v", "personalization", source="test")
    cols = store.scope("personalization").events()
    got = sorted(zip(cols.users[cols.user].tolist(), cols.at.tolist(), strict=True))
    assert got == [("u", datetime(2026, 1, 1, 10)), ("u", datetime(2026, 7, 1, 9)),
                   ("v", datetime(2026, 7, 1, 9))]


@pytest.mark.parametrize("text", ["1780000000", " 1780000000 ", "1780000000.5", "1.78e9"])
def test_store_ingest_refuses_numbers_written_as_text_without_a_unit(text: str) -> None:
    """A CSV's unix times arrive as text: they are numbers all the same, refused without
    at_unit (pydantic alone would read them as a time in a unit it guesses)."""
    store = ratings_store()
    rows = [{"user": "u", "item": "a", "feature": "ratings", "at": "2026-01-01T10:00:00+01:00"},
            {"user": "u", "item": "b", "feature": "ratings", "at": text}]
    with pytest.raises(ValidationError, match=r"row 1.*at_unit='s'") as info:
        store.ingest(rows)
    assert [e["row"] for e in info.value.errors] == [1]
    assert store.stats()["events"] == 0


@pytest.mark.parametrize(("wall", "why"), [
    ("2026-03-29 01:30:00", "does not exist"),  # the clocks go forward at 01:00
    ("2026-10-25 01:30:00", "happens twice"),  # and back at 02:00
])
def test_a_wall_time_a_clock_change_skips_or_repeats_is_refused_saying_which(
    wall: str, why: str
) -> None:
    store = ratings_store()
    with pytest.raises(ValidationError, match=why):
        store.ingest([{"user": "u", "item": "a", "feature": "ratings", "at": wall}],
                     tz="Europe/London")
    assert store.stats()["events"] == 0


@pytest.mark.parametrize("value", [10**400, -(10**400), "1" + "0" * 400])
def test_a_number_too_large_for_a_float_is_refused_as_a_time(value: object) -> None:
    """(found by the fuzz test: an OverflowError escaped from the unit hint)"""
    store = ratings_store()
    with pytest.raises(ValidationError, match="fits no unit"):
        store.ingest([{"user": "u", "item": "a", "feature": "ratings", "at": value}])
    assert store.stats()["events"] == 0


def test_numbers_written_as_text_are_numbers_in_from_pandas_and_ingest() -> None:
    """A CSV read as text holds unix times as strings: they need a unit like numbers do,
    and with one they are read as numbers (the same rule in the data layer and the store)."""
    df = pd.DataFrame({"user": ["u", "v"], "item": ["a", "b"],
                       "at": ["1780000000", "1780000060"]})
    with pytest.raises(ValidationError, match="at_unit='s'"):
        Interactions.from_pandas(df, at="at")
    X = Interactions.from_pandas(df, at="at", at_unit="s")
    assert X.at is not None and sorted(X.at.tolist()) == [
        datetime(2026, 5, 28, 20, 26, 40), datetime(2026, 5, 28, 20, 27, 40)]
    store = ratings_store()
    report = store.ingest([{"user": "u", "item": "a", "feature": "ratings",
                            "at": "1780000000"}], at_unit="s")
    assert report.inserted == 1
    store.grant("u", "personalization", source="test")
    assert store.scope("personalization").events().at.tolist() == [
        datetime(2026, 5, 28, 20, 26, 40)]


@pytest.mark.parametrize("cut", [5, 1780000000, 1.5e9, True, None, "NaT", np.int64(7)])
def test_time_split_refuses_a_cut_that_is_not_a_time(cut: object) -> None:
    """A number as the cut counts in no stated unit (5 was read as 5 µs after 1970); None
    and NaT cut nowhere: each is refused, saying what a cut is."""
    X = Interactions.from_pandas(
        pd.DataFrame({"user": ["u", "v"], "item": ["a", "b"],
                      "at": pd.to_datetime(["2026-01-01", "2026-02-01"]).tz_localize("UTC")}),
        at="at")
    with pytest.raises(ValidationError, match="must be a time"):
        time_split(X, cut)  # type: ignore[arg-type]
