"""The store's file format: bucketed segments, their size-tiered merging, and opening files
of other format versions (issue 2)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import persona
from persona.store._sql import (
    BUCKET_BITS,
    EVENT_DTYPE,
    FANOUT,
    MAX_SEGMENTS,
    SCHEMA_VERSION,
    load_segments,
    merge_plan,
)
from store_helpers import Clock, event, file_rows, own_connection, shop


def _content(store: persona.Store) -> tuple[object, ...]:
    ev = store.scope("personalization").events()
    rows = sorted(
        zip(
            ev.users[ev.user].tolist(),
            ev.items[ev.item].tolist(),
            ev.value.tolist(),
            ev.at.astype(str).tolist(),
            strict=True,
        )
    )
    exports = [store.export(f"u{u}")["events"] for u in range(0, 150, 7)]
    return tuple(rows), repr(exports)


def _filled(path: str) -> persona.Store:
    store = shop(path, clock=Clock())
    for u in range(130):
        store.grant(f"u{u}", "personalization", source="test")
    for b in range(12):
        store.ingest(
            [
                event(f"u{(b * 37 + i) % 150}", f"sku-{i % 40}", value=float(b),
                      at=f"2026-11-{1 + i % 20:02d}T10:00:00Z")
                for i in range(200)
            ]
        )
    return store


def _downgrade_to_format_1(path: str) -> None:
    """Rewrite the file as persona's store format 1 wrote it: one segment row per person
    per batch, keyed by ``subject_id``, records with a zero ``pad`` where ``member`` is now."""
    con = sqlite3.connect(path)
    rows = con.execute("SELECT bucket, n, data FROM segments ORDER BY id").fetchall()
    rec, subj = load_segments(rows)
    rec = rec.copy()
    rec["member"] = 0
    con.execute("DROP TABLE segments")
    con.execute(
        "CREATE TABLE segments (id INTEGER PRIMARY KEY, subject_id INTEGER NOT NULL, "
        "n INTEGER NOT NULL, data BLOB NOT NULL)"
    )
    con.execute("CREATE INDEX segments_subject ON segments(subject_id)")
    for code in np.unique(subj).tolist():
        mine = rec[subj == code]
        for part in (mine[: mine.size // 2], mine[mine.size // 2 :]):  # two segments each
            if part.size:
                con.execute(
                    "INSERT INTO segments(subject_id, n, data) VALUES (?, ?, ?)",
                    (code, int(part.size), part.tobytes()),
                )
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()


def test_a_format_1_file_is_migrated_on_open(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    store = _filled(path)
    expected = _content(store)
    events = store.stats()["events"]
    store.close()
    _downgrade_to_format_1(path)

    store = persona.Store(path, clock=Clock())
    con = own_connection(store)
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert "segments_v1" not in tables and "segments_subject" not in tables
    assert store.stats()["events"] == events
    assert _content(store) == expected
    migrate = [e for e in store.audit.entries() if e.action == "migrate"]
    assert len(migrate) == 1 and migrate[0].detail["events"] == events
    assert store.audit.verify()
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.ingest([event("u1", "sku-new")])  # and it takes new events as usual
    assert "sku-new" in set(store.scope("personalization").history("u1").items)
    con.close()
    store.close()
    again = persona.Store(path, clock=Clock())  # migrated once only
    assert [e.action for e in again.audit.entries()].count("migrate") == 1
    again.close()


def test_a_file_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "new.db")
    shop(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    with pytest.raises(persona.StoreError, match=r"newer persona.*upgrade persona"):
        persona.Store(path)


def test_merge_plan_counts_in_base_fanout_and_caps_segments() -> None:
    assert merge_plan([0] * (FANOUT - 1)) is None
    assert merge_plan([0] * FANOUT) == 1
    assert merge_plan([1] * (FANOUT - 1) + [0] * FANOUT) == 2  # the carry goes up
    assert merge_plan([3] * MAX_SEGMENTS + [0]) == 4  # past the cap: merge everything
    # a long run of one-segment batches never holds more than MAX_SEGMENTS per bucket,
    # and rewrites each event about log_FANOUT(batches) times
    levels: list[int] = []
    rewrites = 0
    for _ in range(2000):
        levels.append(0)
        top = merge_plan(levels)
        if top is not None:
            rewrites += sum(1 for lv in levels if lv < top)
            levels = [lv for lv in levels if lv >= top] + [top]
        assert len(levels) <= MAX_SEGMENTS
    assert rewrites / 2000 < 1.5 * np.log(2000) / np.log(FANOUT)


def test_many_small_batches_keep_few_segments_and_read_right(tmp_path: Path) -> None:
    store = shop(str(tmp_path / "shop.db"), clock=Clock())
    people = [f"p{i}" for i in range(3 << BUCKET_BITS)]
    for p in people[::2]:
        store.grant(p, "personalization", source="test")
    sent: dict[str, int] = {}
    for b in range(60):
        batch = [
            event(people[(b * 7 + i) % len(people)], f"sku-{b}-{i}", value=float(i))
            for i in range(5)
        ]
        store.ingest(batch)
        for e in batch:
            sent[e["user"]] = sent.get(e["user"], 0) + 1
        per_bucket = file_rows(
            store, "SELECT max(c) FROM (SELECT count(*) AS c FROM segments GROUP BY bucket)"
        )[0][0]
        assert per_bucket <= MAX_SEGMENTS
    view = store.scope("personalization")
    for p in people:
        history = view.history(p)
        assert len(history) == (sent.get(p, 0) if p in people[::2] else 0)
        assert len(store.export(p)["events"]) == sent.get(p, 0)
    assert len(view.events()) == sum(sent.get(p, 0) for p in people[::2])
    assert store.compact() > 0
    assert file_rows(
        store, "SELECT count(*) FROM segments GROUP BY bucket HAVING count(*) > 1"
    ) == []
    assert len(view.events()) == sum(sent.get(p, 0) for p in people[::2])


def test_records_keep_their_layout() -> None:
    assert EVENT_DTYPE.itemsize == 32 and BUCKET_BITS < 15  # ``member`` is an int16
    # one person's reads unpack records with struct instead of numpy: the same fields
    from persona.store._decode import _RECORD

    rec = np.zeros(3, dtype=EVENT_DTYPE)
    rec["item"] = [7, -1, 2**31 - 1]
    rec["feature"] = [1, 2, -3]
    rec["member"] = [0, 63, 5]
    rec["value"] = [2.5, -0.0, 1e300]
    rec["at"] = [-(2**62), 0, 2**62]
    rec["eid"] = [0, 2**64 - 1, 12345]
    assert list(_RECORD.iter_unpack(rec.tobytes())) == rec.tolist()


@given(
    n=st.integers(0, 300),
    people=st.integers(1, 2**40),
    span=st.sampled_from([1, 10**6, 10**12, 2**62]),
    seed=st.integers(0, 2**32 - 1),
)
def test_person_time_order_is_the_stable_lexsort(n: int, people: int, span: int, seed: int) -> None:
    """The combined-key sort equals ``np.lexsort((at, subj))``, ties kept in input order,
    and falls back to it when the two ranges do not fit in 63 bits."""
    from persona.store._sql import person_time_order

    rng = np.random.default_rng(seed)
    subj = rng.integers(1, people + 1, n, dtype=np.int64)
    at = rng.integers(-span, span, n, dtype=np.int64) if span > 1 else np.zeros(n, np.int64)
    if n > 4:  # exact duplicates: their input order must be kept
        subj[: n // 4] = subj[n // 4 : 2 * (n // 4)]
        at[: n // 4] = at[n // 4 : 2 * (n // 4)]
    assert person_time_order(subj, at).tolist() == np.lexsort((at, subj)).tolist()
