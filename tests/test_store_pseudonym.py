"""Issue 17 point 13: after erasure, export reveals nothing about the person, and the
pseudonym key can be held outside the store file, so the file alone links nobody."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import persona
from store_helpers import Clock, event, file_bytes, shop

SOURCE, NOTICE = "signup form v3 at the till", "notice-2026-10-b"


def _person_then_erased(store: persona.Store, clock: Clock) -> list[str]:
    """Grant, ingest, record, export and erase "u1"; returns the times that were used."""
    times = []
    for step in range(4):
        clock.advance(days=3)
        times.append(clock.now.isoformat()[:10])
        if step == 0:
            store.grant("u1", "personalization", source=SOURCE, notice_version=NOTICE)
        elif step == 1:
            store.ingest([event("u1", "sku-9", at=clock.now.isoformat())])
            store.record("app.curation", {"why": "test"}, user="u1")
        elif step == 2:
            store.export("u1")
            store.withdraw("u1", "personalization", source=SOURCE)
        else:
            store.erase("u1")
    clock.advance(days=3)
    return times


def test_export_of_an_erased_person_returns_nothing_about_them() -> None:
    clock = Clock()
    store = shop(clock=clock)
    store.grant("u2", "personalization", source="other form")
    times = _person_then_erased(store, clock)
    out = store.export("u1")
    assert out["held"] is False and out["erased"] is True
    assert out["audit"] == [] and out["consent"]["history"] == [] and out["events"] == []
    assert out["subject"] == {"id": "u1", "pseudonym": None}
    text = json.dumps(out)
    assert SOURCE not in text and NOTICE not in text and "other form" not in text
    for day in times:  # no time of the person's grant, events, export or erasure
        assert day not in text
    # the export entry just written names no one: its seq does not lead to the pseudonym
    entry = store.audit.entries(since=out["audit_seq"] - 1)[0]
    assert entry.action == "export" and entry.subject is None
    assert store.pseudonym("u1") not in text
    assert store.audit.verify()
    # someone never seen is neither held nor erased
    stranger = store.export("never-seen")
    assert stranger["held"] is False and stranger["erased"] is False


def test_export_after_coming_back_shows_only_what_followed_the_erasure() -> None:
    clock = Clock()
    store = shop(clock=clock)
    _person_then_erased(store, clock)
    store.grant("u1", "personalization", source="came back")
    out = store.export("u1")
    assert out["held"] is True and out["erased"] is False
    assert [e["action"] for e in out["audit"]] == ["consent_grant", "export"]
    text = json.dumps(out)
    assert SOURCE not in text and NOTICE not in text


def test_transparency_report_of_an_erased_person_is_empty() -> None:
    from persona import reports

    clock = Clock()
    store = shop(clock=clock)
    _person_then_erased(store, clock)
    report = reports.transparency(store, "u1")
    assert report.audit == [] and report.consents == [] and not report.held
    assert SOURCE not in report.to_markdown()


# ---------------------------------------------------------------------- the key outside
def _setup(store: persona.Store) -> None:
    store.define_purpose("personalization", description="Recommend products")
    store.define_feature("purchases", purposes=["personalization"], category="purchases",
                         retention_days=None)


def _cells(path: Path) -> list[Any]:
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [v for t in tables for row in con.execute(f'SELECT * FROM "{t}"') for v in row]
    finally:
        con.close()


def _candidate_keys(value: Any) -> list[bytes]:
    if isinstance(value, bytes):
        return [value]
    if not isinstance(value, str):
        return []
    out = [value.encode()]
    with contextlib.suppress(ValueError):
        out.append(bytes.fromhex(value))
    return out


def test_key_held_outside_is_nowhere_in_the_file(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    path = tmp_path / "shop.db"
    store = persona.Store(path, pseudonym_key=key)
    _setup(store)
    store.grant("u1", "personalization", source="form")
    store.grant("u2", "personalization", source="form")
    store.ingest([{"user": "u1", "item": "a", "feature": "purchases", "value": 1.0,
                   "at": "2026-11-01T00:00:00Z"}])
    store.record_explanation("u1", {"item": "a", "text": "because"})
    store.erase("u2")
    target = store.pseudonym("u2")
    assert target == hmac.new(key, b"u2", hashlib.sha256).hexdigest()[:32]
    assert store.audit.verify()
    store.close()

    raw = file_bytes(path)
    assert key not in raw
    assert key.hex().encode() not in raw and key.hex().upper().encode() not in raw
    # nothing in any table works as the key: the pseudonym of "u2" (still in the audit
    # log) cannot be recomputed from the file alone
    for cell in _cells(path):
        for candidate in _candidate_keys(cell):
            assert hmac.new(candidate, b"u2", hashlib.sha256).hexdigest()[:32] != target

    with persona.Store(path, pseudonym_key=key.hex()) as again:  # hex works too
        assert again.pseudonym("u2") == target and again.audit.verify()
        again.grant("u3", "personalization", source="form")
        again.erase("u1")
        assert again.audit.verify() and again.export("u1")["erased"] is True


def test_opening_without_or_with_the_wrong_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    key = secrets.token_bytes(40)
    with persona.Store(path, pseudonym_key=key) as store:
        _setup(store)
    with pytest.raises(persona.StoreError, match="pseudonym_key"):
        persona.Store(path)
    with pytest.raises(persona.StoreError, match="does not match"):
        persona.Store(path, pseudonym_key=secrets.token_bytes(32))
    with persona.Store(path, pseudonym_key=key) as store:
        assert "personalization" in store.purposes


@pytest.mark.parametrize(
    "bad", [b"short", "zz" * 32, "ab" * 16, 12345, ["k"], True, ""],
)
def test_a_bad_key_is_a_validation_error(bad: Any) -> None:
    with pytest.raises(persona.ValidationError, match="pseudonym_key"):
        persona.Store(":memory:", pseudonym_key=bad)


def test_without_the_argument_the_key_stays_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shop.db"
    with persona.Store(path) as store:
        _setup(store)
        key = store._key
    con = sqlite3.connect(path)
    stored = con.execute("SELECT value FROM meta WHERE key = 'pseudonym_key'").fetchone()
    con.close()
    assert stored is not None and bytes.fromhex(stored[0]) == key
    with persona.Store(path, pseudonym_key=key) as store:  # the same key: accepted
        assert store.audit.verify()
    with pytest.raises(persona.StoreError, match="does not match"):
        persona.Store(path, pseudonym_key=secrets.token_bytes(32))
