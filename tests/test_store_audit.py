"""Rule 6: the audit log is append-only and hash-chained; tampering is detected."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import persona
from store_helpers import Clock, event, file_rows, own_connection, shop


def busy_store(path: str = ":memory:") -> persona.Store:
    store = shop(path, clock=Clock())
    store.grant("u1", "personalization", source="form")
    store.ingest([event("u1", "a")])
    store.scope("personalization").events()
    store.export("u1")
    store.erase("u1")
    return store


def test_every_kind_of_change_is_logged() -> None:
    actions = {e.action for e in busy_store().audit.entries()}
    assert {
        "define_purpose",
        "define_feature",
        "consent_grant",
        "ingest",
        "scoped_read",
        "export",
        "erase",
    } <= actions


def test_log_refuses_updates_and_deletes_through_sql(tmp_path) -> None:
    store = busy_store(str(tmp_path / "shop.db"))
    con = own_connection(store)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit SET action = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit WHERE seq = 1")
    con.close()


def tamper(store: persona.Store, *statements: str) -> None:
    con = own_connection(store)
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("DROP TRIGGER audit_no_delete")
    for sql in statements:
        con.execute(sql)
    con.close()


TAMPERING: dict[str, Callable[[persona.Store], None]] = {
    "edited detail": lambda s: tamper(s, "UPDATE audit SET detail = '{\"rows\":0}' WHERE seq = 9"),
    "edited action": lambda s: tamper(s, "UPDATE audit SET action = 'scoped_read' WHERE seq = 8"),
    "edited time": lambda s: tamper(
        s, "UPDATE audit SET at = '2020-01-01T00:00:00+00:00' WHERE seq = 3"
    ),
    "deleted middle": lambda s: tamper(s, "DELETE FROM audit WHERE seq = 5"),
    "deleted last": lambda s: tamper(
        s, "DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)"
    ),
    "reordered": lambda s: tamper(
        s,
        "UPDATE audit SET seq = -4 WHERE seq = 4",
        "UPDATE audit SET seq = 4 WHERE seq = 5",
        "UPDATE audit SET seq = 5 WHERE seq = -4",
    ),
    "rehashed entry": lambda s: tamper(s, "UPDATE audit SET hash = prev WHERE seq = 6"),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_tampering_is_detected(how: str, tmp_path) -> None:
    store = busy_store(str(tmp_path / "shop.db"))
    assert store.audit.verify()
    TAMPERING[how](store)
    assert not store.audit.verify()
    with pytest.raises(persona.AuditError, match="failed verification"):
        store.audit.check()


def test_anchor_detects_a_rewritten_chain() -> None:
    store = busy_store()
    anchor = store.audit.head()
    assert store.audit.verify(anchor)
    other = busy_store()  # a different, internally consistent history
    assert not other.audit.verify(anchor)


def test_application_events_are_recorded_by_pseudonym() -> None:
    store = busy_store()
    seq = store.record("app.curation", {"pin": ["sku-1"], "reason": "Holiday gift guide"})
    assert store.audit.entries()[-1].seq == seq
    store.record("app.explanation_shown", {"item": "sku-9"}, user="u7")
    entry = store.audit.entries()[-1]
    assert entry.subject == store.pseudonym("u7")
    assert "u7" not in entry.model_dump_json()
    assert store.audit.verify()
    with pytest.raises(persona.ValidationError, match=r"app\."):
        store.record("erase", {})
    with pytest.raises(persona.ValidationError, match="JSON"):
        store.record("app.x", {"bad": object()})


_IDS = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40)


@given(users=st.lists(_IDS.filter(str.strip), min_size=1, max_size=5))
def test_pseudonym_is_hmac_sha256_of_the_id(users: list[str]) -> None:
    """Pseudonyms are HMAC-SHA256 of the id (in NFC, persona's id rule) under the store's
    key, whatever ids came before (the keyed state is copied per id, never updated), so
    pseudonyms in existing files stay valid."""
    import hmac
    import unicodedata

    key = bytes(range(32))  # the store's key, given (held outside the file)
    store = persona.Store(":memory:", pseudonym_key=key)
    for user in users:
        nfc = unicodedata.normalize("NFC", user).encode()
        assert store.pseudonym(user) == hmac.digest(key, nfc, "sha256").hex()[:32]


def test_two_handles_on_one_file_extend_one_chain(tmp_path) -> None:
    """Each write transaction takes the log's head as it is on disk when it begins, so
    entries appended through another handle (another process) are never overwritten."""
    path = tmp_path / "shop.db"
    first = shop(path=path, clock=Clock())
    second = persona.Store(path, clock=Clock())
    for i in range(5):
        first.grant(f"u{i}", "personalization", source="form")
        second.scope("personalization").history(f"u{i}")
        second.ingest([event(f"u{i}", "a")])
        first.scope("personalization").events()
    entries = first.audit.entries()
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert first.audit.verify() and second.audit.verify()
    assert first.audit.head() == second.audit.head() == (entries[-1].seq, entries[-1].hash)


def test_changes_are_synced_and_read_records_are_written_without_sync(tmp_path) -> None:
    """What the ``durability`` docs say: with "full" every change commits with
    ``synchronous = FULL``; the audit entry of a read commits with NORMAL."""

    def sync_level(store: persona.Store) -> int:
        return store._con.execute("PRAGMA synchronous").fetchone()[0]

    store = shop(path=str(tmp_path / "shop.db"), clock=Clock())
    store.grant("u1", "personalization", source="form")
    assert sync_level(store) == 2  # FULL
    store.scope("personalization").history("u1")
    assert sync_level(store) == 1  # NORMAL
    store.ingest([event("u1", "a")])
    assert sync_level(store) == 2
    store.scope("personalization").events()
    assert sync_level(store) == 1
    store.erase("u1")
    assert sync_level(store) == 2
    relaxed = persona.Store(tmp_path / "relaxed.db", durability="normal")
    relaxed.define_purpose("personalization", description="Recommend products")
    assert sync_level(relaxed) == 1


@given(
    seq=st.integers(0, 2**63 - 1),
    at=st.text(),
    action=st.text(),
    subject=st.none() | st.text(),
    detail=st.text(),
)
def test_hashed_bytes_are_json_of_the_entry(
    seq: int, at: str, action: str, subject: str | None, detail: str
) -> None:
    """The bytes an entry's hash covers are written out directly; they must stay exactly
    json.dumps of the entry (logs written before and by other tools verify against it)."""
    from persona.store._audit import _canonical

    expected = json.dumps(
        [seq, at, action, subject, detail], separators=(",", ":"), ensure_ascii=True
    ).encode()
    assert _canonical(seq, at, action, subject, detail) == expected


def test_meta_rows_are_read_again_only_after_another_handle_commits(tmp_path) -> None:
    """A transaction reuses the erasure generation, definitions' version and log head that
    this handle's last transaction left (its own changes to them included), unless another
    connection has committed since (SQLite's data_version): then it reads them again, so
    the chain stays whole. What a handle carries over always equals the file."""
    path = tmp_path / "shop.db"
    first = shop(path=path, clock=Clock())
    second = persona.Store(path, clock=Clock())
    first.grant("u1", "personalization", source="form")
    seen: list[str] = []
    first._con.set_trace_callback(seen.append)

    def meta_reads() -> int:
        n = sum("'defs_version', 'audit_head')" in s for s in seen)  # a transaction's read
        seen.clear()
        carried = first._meta_after
        if carried is not None:  # what the next transaction will trust, against the file
            on_file = dict(file_rows(
                second, "SELECT key, value FROM meta WHERE key IN "
                "('generation', 'defs_version', 'audit_head')"))
            assert carried == on_file
        return n

    view = first.scope("personalization")
    view.history("u1")
    view.history("u1")
    assert meta_reads() == 0  # nothing changed since first's own grant
    second.scope("personalization").history("u1")  # another connection appends an entry
    view.history("u1")
    assert meta_reads() == 1
    second.define_feature("clicks", purposes=["personalization"], category="clicks",
                          retention_days=7)
    second.ingest([event("u1", "b", "clicks", at="2026-11-25T10:00:00Z")])  # within 7 days
    assert "clicks" in view.history("u1").features  # new definitions seen at once
    first.define_purpose("support", description="Answer questions")  # bumps defs_version
    meta_reads()
    view.history("u1")
    assert meta_reads() == 0  # this handle's own change was carried over, not re-read
    # ... and is in force at once: the new purpose reads no feature yet, then its own
    # feature, of the people who consented to it (u1, not u3), and none of u1's other events
    support = first.scope("support")
    assert len(support.events()) == 0
    first.define_feature("tickets", purposes=["support"], category="support tickets",
                         retention_days=None)
    first.grant("u1", "support", source="form")
    first.ingest([event("u1", "faq-3", "tickets"), event("u3", "faq-4", "tickets"),
                  event("u1", "sku-9", "purchases")])
    cols = support.events()
    assert [(cols.users[u], cols.items[i], cols.features[f], v)
            for u, i, f, v in zip(cols.user, cols.item, cols.feature, cols.value, strict=True)
            ] == [("u1", "faq-3", "tickets", 1.0)]
    first.ingest([event("u2", "a")])
    first.erase("u2")  # bumps the erasure generation
    meta_reads()
    view.history("u1")
    assert meta_reads() == 0
    with pytest.raises(persona.SuppressedSubjectError):
        first.ingest([event("u2", "a")])
    assert first.audit.verify() and second.audit.verify()
    assert first.audit.head() == second.audit.head()
