"""An erasure takes exactly one person: everything of theirs (events, event ids, consent,
feedback, items only they had), nothing of anyone else's, even people who share their
storage bucket; and it reports and audits what it did."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import persona
from store_helpers import Clock, event, file_bytes, file_rows, ingest_when_new, shop

PEOPLE = [f"p{k:03d}" for k in range(140)]  # more than two buckets of 64


def _everyone(store: persona.Store) -> set[tuple[str, str, float]]:
    cols = store.scope("personalization").events()
    return {(cols.users[u], cols.items[i], float(v))
            for u, i, v in zip(cols.user, cols.item, cols.value, strict=True)}


def _filled(clock: Clock | None = None, path: str = ":memory:") -> persona.Store:
    store = shop(path, clock=clock or Clock())
    for p in PEOPLE:
        store.grant(p, "personalization", source="form")
    for half in (PEOPLE[::2], PEOPLE[1::2]):  # two batches: two segments per bucket
        store.ingest([e for p in half for e in (
            event(p, f"shared-{int(p[1:]) % 3}", value=float(int(p[1:]) + 1), id=f"e-{p[1:]}"),
            event(p, f"own-{p}", value=2.0, id=f"f-{p[1:]}"))])
    return store


def test_erasing_one_person_keeps_everyone_else_exactly() -> None:
    store = _filled()
    before = _everyone(store)
    victim = PEOPLE[70]  # in the middle bucket, with neighbours on both sides
    others = [p for p in PEOPLE if p != victim]
    histories = {p: store.scope("personalization").history(p) for p in others[65:75]}
    report = store.erase(victim)
    assert (report.held, report.events, report.consent_events) == (True, 2, 1)
    assert report.subject == store.pseudonym(victim)
    assert _everyone(store) == {row for row in before if row[0] != victim}
    for p, cols in histories.items():
        again = store.scope("personalization").history(p)
        assert list(again.items) == list(cols.items) and list(again.value) == list(cols.value)
    assert store.consented("personalization") == set(others)
    assert store.stats()["people"] == len(others)
    assert store.stats()["events"] == 2 * len(others)


def test_items_only_the_erased_person_had_go_with_them(tmp_path: Path) -> None:
    store = _filled(path=str(tmp_path / "shop.db"))
    store.define_items({"own-p005": "Declared by the shop"})
    store.feedback("p006", "own-p007", "not_interested")
    items_before = store.stats()["items"]
    for p in ("p005", "p007", "p008"):
        store.erase(p)
    catalogue = set(store.scope("personalization").events().items)
    assert "own-p008" not in catalogue
    assert store.stats()["items"] == items_before - 1  # own-p008 only
    labels = store.item_labels()
    assert labels.get("own-p005") == "Declared by the shop"  # declared: kept
    assert "own-p008" not in file_rows(store, "SELECT group_concat(ext) FROM items")[0][0]
    # another person's feedback still names own-p007: its row stays
    assert "own-p007" in file_rows(store, "SELECT group_concat(ext) FROM items")[0][0]
    # the shared items other people hold stay
    assert {"shared-0", "shared-1", "shared-2"} <= catalogue


def test_the_erased_persons_feedback_items_go_too() -> None:
    store = shop(clock=Clock())
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", "a")])
    store.feedback("u1", "only-in-feedback", "dont_use")
    assert store.stats()["items"] == 2
    store.erase("u1")
    assert store.stats()["items"] == 0
    assert store.feedback_of("u1") == []


def test_event_ids_of_an_erased_person_are_forgotten() -> None:
    store = _filled()
    victim = PEOPLE[3]
    store.erase(victim)
    store.grant(victim, "personalization", source="came back")
    report = store.ingest([event(victim, "shared-0", value=9.0, id="e-003"),
                           event(victim, "x", value=1.0, id="f-003")])
    assert (report.inserted, report.duplicates) == (2, 0)
    # other people's ids are still known: resending their events changes nothing
    again = store.ingest([event(PEOPLE[4], "shared-1", value=5.0, id="e-004")])
    assert (again.inserted, again.duplicates) == (0, 1)
    assert sorted(store.scope("personalization").history(victim).items) == ["shared-0", "x"]


def test_the_erasure_is_audited_with_its_counts() -> None:
    store = _filled()
    store.withdraw(PEOPLE[1], "personalization")
    report = store.erase(PEOPLE[1])
    entry = store.audit.entries(action="erase")[-1]
    assert entry.seq == report.audit_seq
    assert entry.subject == report.subject
    assert entry.detail == {"events": 2, "consent_events": 2, "held": True}
    stranger = store.erase("never-seen")
    assert (stranger.held, stranger.events, stranger.consent_events) == (False, 0, 0)
    assert store.audit.entries(action="erase")[-1].detail == {
        "events": 0, "consent_events": 0, "held": False}
    assert stranger.audit_seq == store.audit.entries(action="erase")[-1].seq


def test_a_file_store_is_checkpointed_so_no_old_page_keeps_the_id(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = _filled(path=str(path))
    victim = "victim-4a7d"
    store.grant(victim, "personalization", source="form")
    store.ingest([event(victim, "shared-0")])
    store.erase(victim)
    wal = Path(str(path) + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    assert victim.encode() not in file_bytes(path)
    store.close()


def test_erasure_keeps_segments_sorted_for_the_people_left() -> None:
    clock = Clock()
    store = shop(clock=clock)
    for p in PEOPLE[:10]:
        store.grant(p, "personalization", source="form")
    for day in (5, 1, 3):  # several batches, times not in order
        store.ingest([event(p, f"i{day}", at=f"2026-11-{day:02d}T00:00:00Z") for p in PEOPLE[:10]])
    store.erase(PEOPLE[4])
    for p in PEOPLE[:10]:
        if p == PEOPLE[4]:
            continue
        cols = store.scope("personalization").history(p)
        assert [cols.items[i] for i in cols.item] == ["i1", "i3", "i5"]
        assert bool(np.all(np.diff(cols.at.astype("int64")) >= 0))


def _segments(store: persona.Store) -> list[tuple[int, int, int]]:
    return file_rows(store, "SELECT bucket, level, n FROM segments ORDER BY bucket, id")


def test_rewritten_segments_keep_their_level_and_others_stay_untouched(tmp_path: Path) -> None:
    """An erasure merges only the bucket that held the person, into one segment of the
    highest level it merged (a compaction, not an erasure, raises levels)."""
    store = shop(str(tmp_path / "shop.db"), clock=Clock())
    for p in ("a", "b"):
        store.grant(p, "personalization", source="form")
    far = "p-far"
    store.grant(far, "personalization", source="form")
    store.ingest([event("a", "x"), event("b", "y")])
    store.ingest([event("a", "x2"), event("b", "y2")])
    assert _segments(store) == [(0, 0, 2), (0, 0, 2)]
    store.erase("a")
    assert _segments(store) == [(0, 0, 2)]
    store.ingest([event("b", "y3"), event(far, "z")])
    store.ingest([event("b", "y4")])
    assert store.compact() == 2
    assert _segments(store) == [(0, 1, 5)]
    store.ingest([event("b", "y5"), event(far, "z2")])
    store.erase(far)
    assert _segments(store) == [(0, 1, 5)]  # merged into one, keeping the level 1 it held
    store.erase("b")
    assert _segments(store) == []


def test_an_export_of_someone_never_erased_has_their_audit_entries_from_the_first() -> None:
    store = persona.Store(":memory:")
    store.prefer_non_profiling("u1")  # the store's first audit entry
    out = store.export("u1")
    assert [(e["seq"], e["action"]) for e in out["audit"]] == [
        (1, "prefer_non_profiling"), (2, "export")]


def test_an_item_another_bucket_still_uses_is_kept_whichever_segment_holds_it() -> None:
    """The orphan scan reads every segment until each candidate is found in use: an item of
    the erased person that only a later-scanned segment holds stays."""
    store = shop(clock=Clock())
    people = [f"q{k:03d}" for k in range(70)]  # q000..q063 in bucket 0, the rest in bucket 1
    for p in people:
        store.grant(p, "personalization", source="form")
    store.ingest([event(p, "common") for p in people[64:]])  # bucket 1 only
    store.ingest([event("q000", "rare"), event("q000", "mine"), event("q001", "rare")])
    store.erase("q000")  # rewrites bucket 0: its segment is now scanned after bucket 1's
    cols = store.scope("personalization").history("q001")
    assert [cols.items[i] for i in cols.item] == ["rare"]
    assert store.stats()["items"] == 2  # common, rare; "mine" went with q000


def test_nothing_to_rewrite_reports_nothing() -> None:
    clock = Clock()
    store = shop(clock=clock)
    assert store.apply_retention() == 0
    assert store.compact() == 0
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", "a")])
    assert store.compact() == 0  # one segment per bucket already
    assert store.apply_retention() == 0  # a segment read, nothing past retention
    ingest_when_new(store, clock, [event("u1", "old", "views", at="2026-01-01T00:00:00Z")])
    store.ingest([event("u1", "new", "views", at="2026-11-25T00:00:00Z")])
    assert store.apply_retention() == 1
    assert sorted(store.scope("personalization").events().items) == ["a", "new"]


def test_a_rewrite_touches_only_the_buckets_that_lose_events(tmp_path: Path) -> None:
    clock = Clock()
    store = shop(str(tmp_path / "shop.db"), clock=clock)
    people = [f"r{k:03d}" for k in range(130)]  # buckets 0, 1 and 2
    store.ingest([event(p, "new", "views", at="2026-11-25T00:00:00Z") for p in people])
    store.ingest([event(p, "new2", "views", at="2026-11-25T00:00:00Z") for p in people])
    store.compact()  # every bucket: one segment of level 1
    ingest_when_new(store, clock,
                    [event(people[70], "old", "views", at="2026-01-01T00:00:00Z")])  # bucket 1
    before = file_rows(store, "SELECT id, bucket, level, n FROM segments")
    assert sorted(r[1:] for r in before) == [(0, 1, 126), (1, 0, 1), (1, 1, 128), (2, 1, 6)]
    assert store.apply_retention() == 1
    after = file_rows(store, "SELECT id, bucket, level, n FROM segments")
    untouched = [r for r in before if r[1] != 1]
    assert [r for r in after if r[1] != 1] == untouched  # same rows, same ids
    assert [r[1:] for r in after if r[1] == 1] == [(1, 1, 128)]
    assert store.stats()["events"] == 260
