"""What was shown is evidence: the Personalizer records what it served (issue 18)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

import persona
import persona.reports as reports
from store_helpers import Clock, file_rows, own_connection
from test_personalizer import ITEMS, shop_with_people


def _personalizer(clock: Clock | None = None, path: str = ":memory:",
                  **kw: object) -> persona.Personalizer:
    store = shop_with_people(clock=clock, path=path)
    return persona.Personalizer(
        store, model=persona.ALS(factors=8, iterations=10, random_state=0), **kw
    ).fit()


def test_recommend_records_what_it_showed_by_default() -> None:
    clock = Clock()
    p = _personalizer(clock)
    store = p.store
    recs = p.recommend("p0", n=5)
    shown = store.shown("p0")
    assert [r.item for r in shown] == [r.item for r in recs]
    full_recs = p.recommend("p0", n=5, detail="full")  # the same call, every reason listed
    for r, s, full in zip(recs, shown, full_recs, strict=True):
        assert s.source == "recommend" and s.verified
        assert s.text == r.explanation.text  # word for word what the person read
        assert s.label == r.explanation.label and s.rank == r.rank and s.score == r.score
        assert s.kind == r.explanation.kind == "decomposition"
        assert s.reasons_digest == store.reasons_digest(r.explanation)
        # over every reason (the served summary lists only those its text names): the
        # full form's list gives the same digest, the summary's list alone does not
        assert s.reasons_digest == store.reasons_digest(list(full.explanation.reasons))
        if r.explanation.rest is not None and r.explanation.rest.count:
            assert s.reasons_digest != store.reasons_digest(list(r.explanation.reasons))
        assert s.model_version == p.model_version_
        assert s.at == clock.now and s.purpose == "personalization"
    # a different list of reasons has a different digest
    other = list(full_recs[0].explanation.reasons)[1:]
    assert store.reasons_digest(other) != shown[0].reasons_digest
    assert [s.item for s in store.shown("p0", newest_first=True)][5:] == [r.item for r in recs][::-1]
    # the older API lists them too, in its shape, so the Art. 15 report does
    old = store.shown_explanations("p0")[:5]  # (then the second call's, with full detail)
    assert [(e["explanation"]["item"], e["explanation"]["text"], e["verified"]) for e in old] == [
        (r.item, r.explanation.text, True) for r in recs
    ]
    report = reports.transparency(store, "p0")
    assert [x["explanation"]["text"] for x in report.explanations][:5] == [
        r.explanation.text for r in recs]
    assert recs[0].explanation.text in report.to_markdown()
    assert store.audit.verify()


def test_application_records_and_served_records_are_listed_together() -> None:
    clock = Clock()
    p = _personalizer(clock)
    store = p.store
    store.record_explanation("p1", {"item": "sku-3", "text": "Shown in an email."})
    clock.advance(minutes=1)
    recs = p.recommend("p1", n=2)
    shown = store.shown("p1")
    assert [(s.source, s.item) for s in shown] == [
        ("record_explanation", "sku-3"), *[("recommend", r.item) for r in recs]]
    assert shown[0].text == "Shown in an email." and shown[0].verified
    assert shown[0].explanation == {"item": "sku-3", "text": "Shown in an email."}


def test_a_request_costs_no_commit_of_its_own_and_its_records_are_group_committed(
    tmp_path: Path,
) -> None:
    p = _personalizer(path=str(tmp_path / "shop.db"))
    store = p.store
    store.flush()
    statements: list[str] = []
    store._con.set_trace_callback(statements.append)
    for user in ("p0", "p1", "p2", "p0"):
        p.recommend(user, n=3)
    store._con.set_trace_callback(None)
    assert not [s for s in statements if s.startswith(("BEGIN IMMEDIATE", "INSERT", "UPDATE"))]
    # another connection sees them once the batch is committed: one transaction for all
    statements.clear()
    store._con.set_trace_callback(statements.append)
    store.flush()
    store._con.set_trace_callback(None)
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
    other = sqlite3.connect(str(tmp_path / "shop.db"))
    rows = other.execute("SELECT count(*) FROM shown").fetchone()[0]
    reads = other.execute(
        "SELECT detail FROM audit WHERE action = 'scoped_history_read' ORDER BY seq"
    ).fetchall()[-4:]
    other.close()
    assert rows == 4
    assert all("shown" in json.loads(d) for (d,) in reads)  # each request: its digest


def test_the_background_writer_commits_within_its_delay_and_a_full_batch_at_once(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "shop.db")
    p = _personalizer(path=path)
    p.store.flush()
    p.store._journal.limit = 3
    for user in ("p0", "p1", "p2"):
        p.recommend(user, n=2)
    other = sqlite3.connect(path)
    assert other.execute("SELECT count(*) FROM shown").fetchone()[0] == 3  # the third wrote
    p.recommend("p3", n=2)
    deadline = time.monotonic() + 10  # the writer wakes 0.05 s after the first request
    while other.execute("SELECT count(*) FROM shown").fetchone()[0] < 4:
        assert time.monotonic() < deadline, "the background writer did not commit"
        time.sleep(0.01)
    other.close()


def test_records_survive_reopening_and_closing_writes_what_waits(tmp_path: Path) -> None:
    path = str(tmp_path / "shop.db")
    p = _personalizer(path=path)
    recs = p.recommend("p0", n=3)
    p.store.close()
    again = persona.Store(path)
    assert [s.item for s in again.shown("p0")] == [r.item for r in recs]
    assert all(s.verified for s in again.shown("p0"))
    assert again.audit.verify()


def test_opting_out_records_nothing_shown_but_still_audits_the_read() -> None:
    p = _personalizer(record_shown=False)
    before = len(p.store.audit)
    p.recommend("p0", n=3)
    assert p.store.shown("p0") == []
    entries = p.store.audit.entries()[before:]
    assert [(e.action, "shown" in e.detail) for e in entries] == [("scoped_history_read", False)]
    with pytest.raises(persona.ValidationError, match="record_shown"):
        persona.Personalizer(p.store, record_shown=1)  # type: ignore[arg-type]


def test_every_list_is_recorded_the_fallback_and_curated_items_included() -> None:
    p = _personalizer()
    p.curate(pin=["sku-23"], reason="Holiday gift guide")
    recs = p.recommend("p39", n=3)  # no consent: the non-profiling list, with the pin
    shown = p.store.shown("p39")
    assert [(s.item, s.kind) for s in shown] == [
        (r.item, r.explanation.kind) for r in recs]
    assert {"curated", "non_personalised"} == {s.kind for s in shown}
    assert p.store.shown("nobody-held") == [] and p.recommend("nobody-held", n=2)
    assert p.store.shown("nobody-held") == []  # nothing is stored of people not held


def test_shown_records_expire_with_their_retention(tmp_path: Path) -> None:
    clock = Clock()
    p = _personalizer(clock, path=str(tmp_path / "shop.db"))
    store = p.store
    assert store.shown_retention_days == 90
    store.record_explanation("p0", {"item": "sku-1", "text": "old"})
    p.recommend("p0", n=2)
    store.set_shown_retention(10)
    assert store.audit.entries()[-1].action == "shown_retention"
    clock.advance(days=11)
    p.recommend("p0", n=1)
    assert [s.rank for s in store.shown("p0")] == [1]  # the old ones are never returned
    store.apply_retention()
    assert file_rows(store, "SELECT count(*) FROM shown")[0][0] == 1
    assert file_rows(store, "SELECT count(*) FROM shown_explanations")[0][0] == 0
    assert store.audit.entries()[-1].detail["shown_deleted"] == 2
    store.set_shown_retention(None)
    assert store.shown_retention_days is None
    for bad in (0, -1, 1.5, True, "30"):
        with pytest.raises(persona.ValidationError, match="days"):
            store.set_shown_retention(bad)  # type: ignore[arg-type]
    assert store.shown_retention_days is None
    assert store.audit.verify()


def test_erasure_removes_shown_records_and_export_includes_them(tmp_path: Path) -> None:
    p = _personalizer(path=str(tmp_path / "shop.db"))
    store = p.store
    recs = p.recommend("p0", n=3)
    exported = store.export("p0")
    assert [s["item"] for s in exported["shown"]] == [r.item for r in recs]
    assert exported["profiling"] == {"non_profiling": False, "since": None, "source": None}
    p.recommend("p0", n=2)  # still waiting in the journal when the erasure comes
    p.forget("p0")
    assert file_rows(store, "SELECT count(*) FROM shown")[0][0] == 0
    assert store.shown("p0") == [] and store.export("p0")["shown"] == []
    blob = b"".join(
        str(row).encode() for row in file_rows(store, "SELECT * FROM audit")
    )
    assert recs[0].explanation.text.encode() not in blob  # the log holds digests only
    assert store.audit.verify()


def test_explain_at_answers_for_a_past_recommendation_after_a_refit() -> None:
    clock = Clock()
    p = _personalizer(clock)
    recs = p.recommend("p0", n=3)
    version = p.model_version_
    shown_at = clock.now
    clock.advance(hours=1)
    p.store.ingest([{"user": "p0", "item": "sku-20", "feature": "purchases",
                     "at": "2026-11-20T10:00:00Z"}])
    p.fit()
    assert p.model_version_ != version
    clock.advance(hours=1)
    p.recommend("p0", n=3)
    answer = p.explain("p0", recs[1].item, at=shown_at + timedelta(minutes=30))
    assert answer.text == recs[1].explanation.text
    assert answer.model_version == version and answer.at == shown_at
    assert answer.reasons_digest == p.store.reasons_digest(recs[1].explanation)
    assert p.explain("p0", recs[1].item, at=shown_at.isoformat()).seq == answer.seq
    with pytest.raises(persona.NotShownError, match=r"store\.shown\(user\)") as err:
        p.explain("p0", recs[1].item, at=shown_at - timedelta(seconds=1))
    assert err.value.code == "not_shown" and isinstance(err.value, persona.PersonaError)
    with pytest.raises(persona.ValidationError, match="time zone"):
        p.explain("p0", recs[1].item, at="yesterday")


def test_the_model_version_is_stable_across_save_and_load(tmp_path: Path) -> None:
    p = _personalizer()
    p.save(tmp_path / "model")
    q = persona.Personalizer.load(tmp_path / "model", p.store)
    assert q.model_version_ == p.model_version_ and len(p.model_version_) == 16


def test_a_changed_record_no_longer_verifies(tmp_path: Path) -> None:
    p = _personalizer(path=str(tmp_path / "shop.db"))
    p.recommend("p0", n=2)
    p.store.flush()
    con = own_connection(p.store)
    con.execute("UPDATE shown SET body = replace(body, 'We', 'They')")
    con.close()
    assert not any(s.verified for s in p.store.shown("p0"))
    assert p.store.audit.verify()  # the chain itself is untouched


def test_a_format_3_file_gains_the_shown_and_profiling_tables(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    shop_with_people(path=path).close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE shown")
    con.execute("DROP TABLE profiling")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    store = persona.Store(path)
    assert file_rows(
        store, "SELECT value FROM meta WHERE key = 'schema_version'")[0] == ("5",)  # (now)
    assert store.prefer_non_profiling("p0") and store.shown("p0") == []
    assert store.audit.verify()


def test_a_digest_is_only_of_reasons() -> None:
    p = _personalizer()
    for bad in ([None], ["sku-1"], [{"item": "a"}], "sku-1", None, 3):
        with pytest.raises(persona.ValidationError, match="reasons"):
            p.store.reasons_digest(bad)


def _while_another_process_writes(
    path: str, request: Callable[[], object], before: Callable[[], object] | None = None,
) -> bool:
    """Run ``request`` in a thread while another connection holds the file's write lock
    (``before`` first, in this thread, with the lock held); whether it finished before the
    lock was let go (the test waits 20 s for it; the store's timeout is 30 s)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process, writing
    served = threading.Event()
    try:
        if before is not None:
            before()
        worker = threading.Thread(target=lambda: (request(), served.set()))
        worker.start()
        in_time = served.wait(20)
    finally:
        other.execute("COMMIT")
        other.close()
    worker.join()
    return in_time


def test_serving_goes_on_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    """Defect (issue 21): the background writer held the handle's lock while it waited for
    SQLite's write lock, so while another process wrote (an ingest, a consent change), every
    serving request of this process waited for that write too. The writer now commits on a
    connection of its own; the serving reads go on, and nothing is lost or reordered."""
    path = str(tmp_path / "shop.db")
    p = _personalizer(path=path)
    p.store.flush()
    shown: list[list[str]] = []

    def first() -> None:
        shown.append([r.item for r in p.recommend("p0", n=2)])
        time.sleep(0.5)  # the background writer woke after 0.05 s and waits for the lock

    in_time = _while_another_process_writes(
        path, lambda: shown.append([r.item for r in p.recommend("p1", n=2)]), before=first)
    assert in_time, "a serving request waited for another process's write"
    p.store.flush()
    assert [[s.item for s in p.store.shown(u)] for u in ("p0", "p1")] == shown
    reads = [e.subject for e in p.store.audit.entries() if e.action == "scoped_history_read"]
    assert reads[-2:] == [p.store.pseudonym("p0"), p.store.pseudonym("p1")]
    assert p.store.audit.verify()


def test_a_refold_while_another_process_writes_does_not_wait(tmp_path: Path) -> None:
    """Defect (issue 21, measured with benchmarks/bench_serving.py: p99 0.43 s, 208
    requests/s from 4 processes beside one ingesting): a person whose data changed since
    their row was built is re-folded from their history, and that read wrote its audit
    entry in a write transaction of its own, so it waited for every write of another
    process. It is now read in a snapshot and its entry group-committed after the
    request's."""
    path = str(tmp_path / "shop.db")
    p = _personalizer(path=path)
    p.recommend("p0", n=3)
    p.store.ingest([{"user": "p0", "item": ITEMS[20], "feature": "purchases",
                     "value": 3.0, "at": "2026-11-02T10:00:00Z"}])  # p0's data changed
    p.store.flush()
    shown: list[list[str]] = []
    in_time = _while_another_process_writes(
        path, lambda: shown.append([r.item for r in p.recommend("p0", n=3)]))
    assert in_time, "a serving request's re-fold waited for another process's write"
    assert ITEMS[20] not in shown[0]  # the new purchase is in p0's history: not suggested
    p.store.flush()
    entries = [e for e in p.store.audit.entries() if e.action == "scoped_history_read"]
    # the request's read, then the re-fold's history read (with its rows), in that order
    assert [e.detail["lineage"] for e in entries[-2:]] == [True, False]
    assert entries[-1].detail["rows"] == 5 and entries[-1].subject == p.store.pseudonym("p0")
    assert p.store.audit.verify()

