"""The rights of the person: feedback (corrections of what is assumed about them), export
(GDPR Art. 15 and 20), erasure (Art. 17) and the record of explanations shown to them."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from persona.errors import (
    ValidationError,
)
from persona.schema import (
    EraseReport,
    FeedbackKind,
    FeedbackRecord,
    check_id,
)
from persona.store._common import (
    DAY_US,
    from_us,
    parse_time,
    to_us,
)
from persona.store._consent import consent_history, consent_status
from persona.store._eidindex import EventIdIndex
from persona.store._profiling import exported as exported_profiling
from persona.store._reads import person_events
from persona.store._segments import drop_orphan_items, merge, purge_eids
from persona.store._shown import erase as erase_shown
from persona.store._shown import records as shown_records
from persona.store._sql import (
    bucket_of,
)
from persona.store._subjects import subject_code
from persona.store._suppression import refuse_if_erased

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = [
    "clear_feedback",
    "erase",
    "erased_at",
    "export",
    "feedback",
    "feedback_of",
    "record_explanation",
]

EXPORT_FORMAT_VERSION = 1

def feedback(
    db: Db,
    user: str,
    item: str,
    kind: FeedbackKind,
    *,
    source: str = "api",
    at: datetime | str | None = None,
) -> FeedbackRecord:
    """Record a person's correction of what the system assumes about them."""
    if kind not in ("not_interested", "dont_use"):
        raise ValidationError(
            f"field 'kind': {kind!r} is not a kind of feedback; use 'not_interested' or "
            "'dont_use'",
            errors=[{"row": None, "field": "kind", "message": "invalid"}],
        )
    user = check_id(user, "user")
    item = check_id(item, "item")
    now = db.now()
    when = now if at is None else parse_time(at, "at")
    with db.lock:
        db.refresh()
        with db.transaction():
            refuse_if_erased(db.con, db.pseudonym(user), "their feedback")
            code = subject_code(db, user, create=True)
            db.con.execute("INSERT OR IGNORE INTO items(ext) VALUES (?)", (item,))
            item_code = db.con.execute(
                "SELECT id FROM items WHERE ext = ?", (item,)
            ).fetchone()[0]
            db.con.execute(
                "INSERT OR REPLACE INTO feedback(subject_id, item_id, kind, at, source) "
                "VALUES (?, ?, ?, ?, ?)",
                (code, item_code, kind, to_us(when), source),
            )
            db.audit.append(
                f"feedback_{kind}", {"source": source}, subject=db.pseudonym(user)
            )
        db.sync_items()
    return FeedbackRecord(item=item, kind=kind, at=when, source=source)


def clear_feedback(
    db: Db, user: str, item: str | None = None, kind: FeedbackKind | None = None
) -> int:
    """Undo feedback: all of the person's, one item's, or one kind's. Returns rows removed."""
    user = check_id(user, "user")
    if item is not None:
        item = check_id(item, "item")
    if kind is not None and (not isinstance(kind, str)
                             or kind not in ("not_interested", "dont_use")):
        raise ValidationError(
            f"field 'kind': {kind!r:.80} is not a feedback kind; give 'not_interested', "
            "'dont_use' or None (every kind)",
            errors=[{"row": None, "field": "kind", "message": "invalid"}],
        )
    with db.lock:
        db.refresh()
        with db.transaction():
            code = subject_code(db, user, create=False)
            if code is None:
                return 0
            sql, args = "DELETE FROM feedback WHERE subject_id = ?", list[object]([code])
            if item is not None:
                sql += " AND item_id = (SELECT id FROM items WHERE ext = ?)"
                args.append(item)
            if kind is not None:
                sql += " AND kind = ?"
                args.append(kind)
            removed: int = db.con.execute(sql, args).rowcount
            db.audit.append(
                "feedback_cleared", {"rows": removed}, subject=db.pseudonym(user)
            )
        return removed


def feedback_of(db: Db, user: str) -> list[FeedbackRecord]:
    """Every piece of feedback held for ``user``, oldest first."""
    user = check_id(user, "user")
    with db.lock:
        db.refresh()
        code = subject_code(db, user, create=False)
        if code is None:
            return []
        rows = db.con.execute(
            "SELECT i.ext, f.kind, f.at, f.source FROM feedback f "
            "JOIN items i ON i.id = f.item_id WHERE f.subject_id = ? ORDER BY f.at",
            (code,),
        ).fetchall()
    return [
        FeedbackRecord(item=i, kind=k, at=from_us(at), source=src) for i, k, at, src in rows
    ]


def export(db: Db, user: str) -> dict[str, Any]:
    """Everything held about ``user``, as a JSON-serialisable dict (GDPR Art. 15 and 20)."""
    with db.lock:
        db.refresh()
        user = check_id(user, "user")
        now = db.now()
        now_us = to_us(now)
        code = subject_code(db, user, create=False)
        pseudonym = db.pseudonym(user)
        erased = code is None and db.con.execute(
            "SELECT 1 FROM suppressed WHERE pseudonym = ?", (pseudonym,)
        ).fetchone() is not None
        history = consent_history(db, user)
        events: list[dict[str, Any]] = []
        if code is not None:
            rec = person_events(db, code)
            db.sync_items()
            by_code = {fid: (name, spec) for name, (fid, spec) in db.features.items()}
            for r in rec.tolist():
                item_code, fcode, _, value, at, _ = r
                name, spec = by_code[fcode]
                inside = (
                    spec.retention_days is None or at >= now_us - spec.retention_days * DAY_US
                )
                events.append(
                    {
                        "item": db.item_ext[item_code],
                        "feature": name,
                        "category": spec.category,
                        "value": value,
                        "at": from_us(at).isoformat(),
                        "purposes": list(spec.purposes),
                        "within_retention": inside,
                    }
                )
        current = (
            {
                p: (None if r is None else r.model_dump(mode="json"))
                for p, r in consent_status(db, user).items()
            }
            if code is not None
            else dict.fromkeys(db.purposes)
        )
        with db.transaction():
            # an erased person's export names no one: nothing new is linked to them
            seq = db.audit.append(
                "export", {"events": len(events)}, subject=None if erased else pseudonym
            )
        profiling = exported_profiling(db.con, code, from_us)
        shown = [r.model_dump(mode="json") for r in shown_records(db, user)] if code else []
        audit = [] if erased else [
            e.model_dump(mode="json")
            for e in db.audit.entries(subject=pseudonym, since=erased_at(db, pseudonym))
        ]
        ledger = [
            {"seq": s, "at": at, "purpose": p, "charge": json.loads(c)}
            for s, at, p, c in db.con.execute(
                "SELECT seq, at, purpose, charge FROM privacy_ledger ORDER BY seq"
            )
        ]
    return {
        "format": "persona.export",
        "format_version": EXPORT_FORMAT_VERSION,
        "store_id": db.store_id,
        "exported_at": now.isoformat(),
        "held": code is not None,
        "erased": erased,
        "subject": {"id": user, "pseudonym": None if erased else pseudonym},
        "consent": {
            "current": current,
            "history": [r.model_dump(mode="json") for r in history],
        },
        "events": events,
        "feedback": [f.model_dump(mode="json") for f in feedback_of(db, user)],
        "profiling": profiling,
        "shown": shown,
        "purposes": {n: s.model_dump(mode="json") for n, (_, s) in db.purposes.items()},
        "features": {n: s.model_dump(mode="json") for n, (_, s) in db.features.items()},
        "audit": audit,
        "audit_seq": seq,
        "privacy_ledger": ledger,
    }


def erased_at(db: Db, pseudonym: str) -> int:
    """The audit entry of the person's last erasure (0 if never erased)."""
    row = db.con.execute(
        "SELECT max(seq) FROM audit WHERE action = 'erase' AND subject = ?", (pseudonym,)
    ).fetchone()
    return int(row[0] or 0)


def erase(db: Db, user: str) -> EraseReport:
    """Erase everything held about ``user``: events, consent history, feedback, the id
    itself and the items only they had (unless declared with ``Store.define_items``),
    also from the file's free pages and write-ahead log."""
    with db.lock:
        db.refresh()
        user = check_id(user, "user")
        pseudonym = db.pseudonym(user)
        try:
            with db.transaction():
                code = subject_code(db, user, create=False)
                events = consents = 0
                items: set[int] = set()
                if code is not None:
                    rec = person_events(db, code)
                    events = int(rec.size)
                    items = set(np.unique(rec["item"]).tolist())
                    items.update(
                        r[0] for r in db.con.execute(
                            "SELECT item_id FROM feedback WHERE subject_id = ?", (code,)
                        )
                    )
                    purge_eids(db, np.sort(rec["eid"]))
                    merge(
                        db, [
                            r[0]
                            for r in db.con.execute(
                                "SELECT id FROM segments WHERE bucket = ?", (bucket_of(code),)
                            )
                        ],
                        lambda _, subj: subj != code,
                    )
                    consents = db.con.execute(
                        "DELETE FROM consent_events WHERE subject_id = ?", (code,)
                    ).rowcount
                    db.con.execute("DELETE FROM consent_state WHERE subject_id = ?", (code,))
                    db.con.execute("DELETE FROM feedback WHERE subject_id = ?", (code,))
                    erase_shown(db.con, code)  # shown records, profiling choice
                    db.con.execute("DELETE FROM subjects WHERE id = ?", (code,))
                    drop_orphan_items(db, items)
                db.con.execute(
                    "INSERT OR REPLACE INTO suppressed(pseudonym, at) VALUES (?, ?)",
                    (pseudonym, to_us(db.now())),
                )
                db.bump("generation")
                seq = db.audit.append(
                    "erase",
                    {"events": events, "consent_events": consents, "held": code is not None},
                    subject=pseudonym,
                )
        finally:
            db.clear_subjects()
            db.eids = EventIdIndex()
        db.checkpoint()
        db.refresh()
        return EraseReport(
            subject=pseudonym,
            events=events,
            consent_events=consents,
            held=code is not None,
            audit_seq=seq,
        )


def record_explanation(db: Db, user: str, explanation: Any) -> int:
    """Record that ``user`` was shown ``explanation`` (GDPR Art. 15 transparency)."""
    user = check_id(user, "user")
    dump = getattr(explanation, "model_dump", None)
    if not callable(dump) and not isinstance(explanation, Mapping):
        raise ValidationError(
            f"field 'explanation': give an Explanation or a dict, not a "
            f"{type(explanation).__name__}",
            errors=[{"row": None, "field": "explanation", "message": "not a dict"}],
        )
    try:
        doc = dump(mode="json") if callable(dump) else dict(explanation)
        body = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
        digest = hmac.new(db.key, body.encode(), hashlib.sha256).hexdigest()
    except (TypeError, ValueError) as exc:  # mixed keys, a lone surrogate, a cycle
        raise ValidationError(
            f"field 'explanation' cannot be stored as JSON: {exc}",
            errors=[{"row": None, "field": "explanation", "message": "not JSON"}],
        ) from None
    with db.lock:
        db.refresh()
        with db.transaction():
            pseudonym = db.pseudonym(user)
            refuse_if_erased(db.con, pseudonym, "what they were shown")
            code = subject_code(db, user, create=True)
            seq = db.audit.append("explanation_shown", {"digest": digest},
                                    subject=pseudonym)
            db.con.execute(
                "INSERT INTO shown_explanations(seq, subject_id, body) VALUES (?, ?, ?)",
                (seq, code, body),
            )
        return seq
