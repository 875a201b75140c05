"""Rule 5: bad input raises a persona error naming the row and the field, the whole batch is
rejected, and the store is exactly as before. Re-sending an event changes nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import persona
from store_helpers import Clock, event, fingerprint, shop

GOOD = [event("u1", "a"), event("u2", "b"), event("u3", "c")]


def bad_batch(row: int, **change: Any) -> list[dict[str, Any]]:
    batch = [dict(e) for e in GOOD]
    for key, value in change.items():
        if value is KeyError:
            del batch[row][key]
        else:
            batch[row][key] = value
    return batch


CASES = {
    "unknown feature": (1, {"feature": "clicks"}, "feature", "define_feature"),
    "missing user": (2, {"user": KeyError}, "user", "missing"),
    "missing item": (0, {"item": KeyError}, "item", "missing"),
    "missing time": (1, {"at": KeyError}, "at", "missing"),
    "missing feature": (1, {"feature": KeyError}, "feature", "missing"),
    "NaN value": (1, {"value": float("nan")}, "value", "finite"),
    "infinite value": (2, {"value": float("inf")}, "value", "finite"),
    "time without zone": (1, {"at": "2026-11-01T10:00:00"}, "at", "time zone"),
    "naive datetime": (0, {"at": datetime(2026, 11, 1, 10)}, "at", "time zone"),
    "time as a number": (0, {"at": 1761991200}, "at", "ISO 8601"),
    "empty user": (1, {"user": ""}, "user", "non-empty"),
    "blank item": (1, {"item": "   "}, "item", "non-empty"),
    # issue 22: an int is an id (17850 is '17850'); a float from a column with gaps is not
    "user not a string": (2, {"user": 17850.0}, "user", "Int64"),
    "value is a string": (0, {"value": "2.0"}, "value", "number"),
    "value is a bool": (0, {"value": True}, "value", "number"),
    "future time": (1, {"at": "2027-01-01T00:00:00Z"}, "at", "future"),
    "unknown field": (1, {"usr": "u1"}, "usr", "unknown field"),
    "garbage time": (2, {"at": "yesterday"}, "at", "ISO 8601"),
    "None user": (0, {"user": None}, "user", "string"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_row_rejects_whole_batch_and_names_row_and_field(case: str) -> None:
    row, change, field, hint = CASES[case]
    store = shop(clock=Clock())
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u9", "z")])
    before = fingerprint(store)
    with pytest.raises(persona.ValidationError) as info:
        store.ingest(bad_batch(row, **change))
    err = info.value
    assert isinstance(err, persona.PersonaError)
    assert f"row {row}, field '{field}'" in str(err)
    assert hint.lower() in str(err).lower()
    assert "nothing was stored" in str(err)
    assert any(e["row"] == row and e["field"] == field for e in err.errors)
    assert fingerprint(store) == before


def test_every_problem_is_listed_not_only_the_first() -> None:
    store = shop(clock=Clock())
    batch = [event(value=float("nan")), event(user=""), event(at="2026-11-01"), event()]
    with pytest.raises(persona.ValidationError) as info:
        store.ingest(batch)
    assert {(e["row"], e["field"]) for e in info.value.errors} == {
        (0, "value"),
        (1, "user"),
        (2, "at"),
    }


def test_skip_mode_stores_valid_rows_and_counts_the_rest() -> None:
    store = shop(clock=Clock())
    report = store.ingest(
        [event("u1", "a"), event("", "b"), event("u2", "c", value=float("nan")), event("u3", "d")],
        on_invalid="skip",
    )
    assert (report.received, report.inserted, report.rejected) == (4, 2, 2)
    assert report.rejected_by_field == {"user": 1, "value": 1}
    assert store.stats()["events"] == 2


def test_not_a_list_of_events() -> None:
    store = shop()
    with pytest.raises(persona.ValidationError, match="wrap one event in a list"):
        store.ingest(event())  # type: ignore[arg-type]
    with pytest.raises(persona.ValidationError, match="row 1, field '\\*'"):
        store.ingest([event(), "not an event"])


def test_resending_events_changes_nothing() -> None:
    store = shop(clock=Clock())
    first = store.ingest([event("u1", "a"), event("u1", "b", id="order-7/line-1")])
    # the audit log records the second call; nothing else may change
    before = [t for i, t in enumerate(fingerprint(store)) if i != 7]
    again = store.ingest([event("u1", "a"), event("u1", "b", id="order-7/line-1")])
    assert first.inserted == 2 and again.inserted == 0 and again.duplicates == 2
    assert [t for i, t in enumerate(fingerprint(store)) if i != 7] == before
    assert store.stats()["events"] == 2
    # same explicit id with other content is the same event; same content, new id is new
    assert store.ingest([event("u1", "zzz", id="order-7/line-1")]).inserted == 0
    assert store.ingest([event("u1", "a", id="order-8")]).inserted == 1
    # identical rows without an id inside one batch: two events by default (repeat
    # purchases), one with dedupe="exact" (issue 22)
    assert store.ingest([event("u2", "q"), event("u2", "q")]).inserted == 2
    assert store.ingest([event("u3", "q"), event("u3", "q")], dedupe="exact").inserted == 1


def test_event_ids_are_per_person() -> None:
    store = shop(clock=Clock())
    assert store.ingest([event("u1", "a", id="e1"), event("u2", "a", id="e1")]).inserted == 2


def test_pandas_dataframe_ingest_and_naive_times() -> None:
    pd = pytest.importorskip("pandas")
    store = shop(clock=Clock())
    df = pd.DataFrame(
        {
            "user": ["u1", "u2"],
            "item": ["a", "b"],
            "feature": ["purchases", "views"],
            "value": [1.0, 2.0],
            "at": pd.to_datetime(["2026-11-01 10:00", "2026-11-02 11:00"]).tz_localize(
                "Europe/London"
            ),
        }
    )
    assert store.ingest(df).inserted == 2
    store.grant("u1", "personalization", source="form")
    cols = store.scope("personalization").events()
    assert str(cols.at[0]) == "2026-11-01T10:00:00.000000"
    naive = df.assign(at=pd.to_datetime(["2026-11-01 10:00", "2026-11-02 11:00"]))
    before = fingerprint(store)
    with pytest.raises(persona.ValidationError, match=r"row 0, field 'at'.*time zone"):
        store.ingest(naive)
    assert fingerprint(store) == before
    missing = df.assign(user=["u1", None])
    with pytest.raises(persona.ValidationError, match="row 1, field 'user'"):
        store.ingest(missing)
    with pytest.raises(persona.ValidationError, match="unknown column"):
        store.ingest(df.assign(extra=1))


def test_consent_calls_validate() -> None:
    store = shop(clock=Clock())
    before = fingerprint(store)
    with pytest.raises(persona.ValidationError, match="source"):
        store.grant("u1", "personalization", source="  ")
    with pytest.raises(persona.ValidationError, match="'user'"):
        store.grant("", "personalization", source="form")
    with pytest.raises(persona.ValidationError, match="future"):
        store.grant("u1", "personalization", source="form", at=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(persona.ValidationError, match="time zone"):
        store.grant("u1", "personalization", source="form", at="2026-01-01T00:00:00")
    with pytest.raises(persona.ValidationError, match="'granted' or 'denied'"):
        store.apply_consent_mode("u1", {"ad_user_data": "yes"})
    assert fingerprint(store) == before


def test_utc_time_strings_convert_exactly_on_the_fast_path() -> None:
    """Plain ``...Z`` / ``...+00:00`` strings are converted as one byte table with integer
    arithmetic; they must give the standard library's answer, and any other form must leave
    the fast path (issue 2)."""
    import random
    from datetime import timedelta

    from persona.store._event_times import _times_us, _utc_strings_us

    rng = random.Random(7)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    seconds = [rng.randrange(-62135596800, 253402300799) for _ in range(2000)]
    stamps = [epoch + timedelta(seconds=s) for s in seconds]
    raw = [d.isoformat().replace("+00:00", "Z" if i % 2 else "+00:00")
           for i, d in enumerate(stamps)]
    expected = [(d - epoch) // timedelta(microseconds=1) for d in stamps]
    assert _utc_strings_us(raw).tolist() == expected  # mixed lengths: cut to the date-time
    # one length throughout: one buffer
    for tail, sep in (("Z", "T"), ("+00:00", "T"), ("Z", " ")):
        same = [d.isoformat(sep=sep).replace("+00:00", tail) for d in stamps]
        assert _utc_strings_us(same).tolist() == expected
    # one length throughout, but another offset: not for this path
    assert _utc_strings_us([d.isoformat().replace("+00:00", "+01:00") for d in stamps]) is None
    for other in ("2026-11-01T10:00:00+01:00", "2026-11-01T10:00:00.5Z", "2026-11-01T10:00Z"):
        assert _utc_strings_us([*raw[:3], other]) is None
    mixed = [*raw[:3], "2026-11-01T11:00:00+01:00"]
    parsed = [datetime.fromisoformat(v.replace("Z", "+00:00")) for v in mixed]
    assert _times_us(parsed, mixed).tolist() == [*expected[:3], 1793527200000000]


def test_rows_with_different_fields_of_the_same_count_take_the_general_path() -> None:
    store = shop(clock=Clock())
    batch = [event("u1", "a"), {k: v for k, v in event("u2", "b").items() if k != "value"}]
    batch[1]["id"] = "e-2"
    report = store.ingest(batch)
    assert report.inserted == 2
    odd = {k: v for k, v in event("u1", "d").items() if k != "value"}
    odd["colour"] = "red"
    with pytest.raises(persona.ValidationError, match=r"row 1.*colour"):
        store.ingest([event("u1", "c"), odd])


@pytest.mark.parametrize(
    "bad",
    [
        "2026-02-29T10:00:00Z",  # not a leap year
        "1900-02-29T10:00:00Z",  # nor is 1900
        "2026-13-01T10:00:00Z",
        "2026-00-01T10:00:00Z",
        "2026-04-31T10:00:00Z",
        "2026-11-00T10:00:00Z",
        "2026-11-01T24:00:00Z",
        "2026-11-01T10:60:00Z",
        "2026-11-01T10:00:60Z",
        "0000-01-01T00:00:00Z",
        "2026-11-01X10:00:00Z",
        "2026/11/01T10:00:00Z",
        "2026-11-01T10-00-00Z",
        "2026-1a-01T10:00:00Z",
        "２026-11-01T10:00:00Z",  # a full-width digit
    ],
)
def test_impossible_or_other_utc_strings_leave_the_fast_path_and_are_rejected(bad: str) -> None:
    from persona.store._event_times import _utc_strings_us

    good = "2026-11-01T10:00:00Z"
    assert _utc_strings_us([good, bad, good]) is None
    store = shop(clock=Clock())
    before = fingerprint(store)
    with pytest.raises(persona.ValidationError) as info:
        store.ingest([event("u1", at=good), event("u2", at=bad)])
    assert [(e["row"], e["field"]) for e in info.value.errors] == [(1, "at")]
    assert fingerprint(store) == before


def test_other_forms_pydantic_reads_fall_back_and_are_stored() -> None:
    from persona.store._event_times import _utc_strings_us

    other = ["2026-11-01T10:00:00z", "2026-11-01T11:00:00+01:00", "2026-11-01T10:00:00.000Z"]
    assert _utc_strings_us(["2026-11-01T10:00:00Z", *other]) is None
    store = shop(clock=Clock())
    store.ingest([event(f"u{k}", at=a) for k, a in enumerate(other)])
    times = {store.export(f"u{k}")["events"][0]["at"] for k in range(3)}
    assert len(times) == 1  # the same instant, three ways


def test_leap_days_and_year_ends_take_the_fast_path() -> None:
    from persona.store._event_times import _utc_strings_us

    cases = ["2024-02-29T23:59:59Z", "2000-02-29T00:00:00Z", "1999-12-31T23:59:59+00:00",
             "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01 00:00:00Z",
             "1969-12-31t23:59:59Z"]
    got = _utc_strings_us(cases)
    assert got is not None
    expected = [
        (datetime.fromisoformat(c.replace("Z", "+00:00")) - datetime(1970, 1, 1, tzinfo=UTC))
        // timedelta(microseconds=1)
        for c in cases
    ]
    assert got.tolist() == expected


_CHARS = "0123456789-:T t+Z"


@given(
    st.lists(
        st.one_of(
            st.datetimes(
                min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
            ).map(lambda d: d.replace(microsecond=0).isoformat() + "Z"),
            st.text(alphabet=_CHARS, min_size=19, max_size=25),
            st.tuples(
                st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32),
                st.integers(0, 25), st.integers(0, 61), st.integers(0, 61),
            ).map(lambda t: "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z".format(*t)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_what_the_fast_path_accepts_pydantic_accepts_as_the_same_instant(raw: list[str]) -> None:
    from pydantic import AwareDatetime, TypeAdapter

    from persona.store._event_times import _utc_strings_us

    got = _utc_strings_us(raw)
    adapter = TypeAdapter(AwareDatetime)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    parsed = []
    for r in raw:
        try:
            parsed.append((adapter.validate_python(r) - epoch) // timedelta(microseconds=1))
        except Exception:
            parsed.append(None)
    if got is not None:
        assert got.tolist() == parsed
    elif None not in parsed:  # pydantic reads them all: only other forms may fall back
        assert not all(_PLAIN_UTC.fullmatch(r) for r in raw)


_PLAIN_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(Z|\+00:00)")
