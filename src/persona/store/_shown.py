"""What people were shown, kept as evidence (GDPR Art. 15, DSA Art. 27).

A serving request (``Personalizer.recommend``) reads the person's consent and lineage in a
read transaction, then hands this module a :class:`Pending` request: the audit entry of
that read and, when recording, the items it showed with their explanations. Pending
requests are *group-committed*: written together, in order, in one write transaction,

* by a background thread at most :attr:`ShownJournal.delay` seconds after the first of
  them (0.05 s by default),
* at once when :attr:`ShownJournal.limit` of them wait (256), by the request that fills
  the batch,
* at the start of any write transaction of the same store handle (consent changes,
  erasure, export, ...), so they keep their order against this handle's other entries,
* before anything reads them back: ``store.shown``, ``store.shown_explanations``,
  ``store.export``, the audit log's ``entries``, ``head`` and ``verify``, and on
  ``store.close()`` (and at interpreter exit).

So a request costs no commit of its own. What a crash of the process can lose is bounded:
the audit entries of the serving reads and the shown records of at most the last
``delay`` seconds or ``limit`` requests (a power loss may lose the same, as the audit
entries of reads are written without a sync). Each request gets one audit entry, the
``scoped_history_read`` of its read, whose detail also holds ``shown``: a keyed digest
(HMAC-SHA256 with the store's pseudonym key) of the shown record, which is kept apart in
the ``shown`` table, erased with the person and purged after the store's shown-record
retention (:func:`retention_days`).

The shown record holds, per item: the item, its label, the explanation's ``.text`` as
rendered for the person, its rank and score, the explanation kind, and ``reasons_digest``,
a keyed digest over every reason of the explanation (:func:`reasons_digest`), with the
serving model's version and the time. The text and the digests are computed when the
request is queued, in the serving thread and outside the store's lock, from the very
list served (``persona.explain.shown_items`` renders its texts for the whole list at
once; the explanations, read later, give the same); only the SQL waits for the group
commit.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import json
import math
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from persona.errors import ValidationError
from persona.store._subjects import subject_code

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["Pending", "ShownJournal", "ShownRecord", "reasons_digest"]

DEFAULT_RETENTION_DAYS = 90
_RETENTION_KEY = "shown_retention_days"
_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ShownRecord(BaseModel):
    """One item a person was shown, as recorded then.

    ``source`` is ``"recommend"`` for what a Personalizer recorded itself, or
    ``"record_explanation"`` for what the application recorded with
    :meth:`persona.Store.record_explanation` (then ``explanation`` holds what it recorded,
    and the fields a free-form record lacks are ``None``).
    """

    model_config = ConfigDict(frozen=True)

    seq: int
    """The audit entry that recorded it (items of one request share it)."""
    at: datetime
    """When it was shown."""
    source: Literal["recommend", "record_explanation"]
    item: str | None
    label: str | None
    text: str | None
    """The explanation's text exactly as it was rendered for the person."""
    rank: int | None = None
    score: float | None = None
    kind: str | None = None
    """The explanation's kind (``decomposition``, ``non_personalised``, ``curated``, ...)."""
    reasons_digest: str | None = None
    """Keyed digest over every reason of the explanation (see ``store.reasons_digest``)."""
    model_version: str | None = None
    """The serving model's version (``Personalizer.model_version_``)."""
    purpose: str | None = None
    verified: bool
    """Whether the record still matches the digest its audit entry holds."""
    explanation: dict[str, Any] | None = None
    """For ``record_explanation`` entries: the explanation as recorded."""


# ------------------------------------------------------------------ digests
def _values(reasons: Any) -> tuple[list[str], np.ndarray]:
    """Item ids and values (contribution, else similarity, else NaN) of every reason, in
    order. Served explanations hold their decomposition as arrays (shared by the items of
    one call, with the history's ids, and each item's order once its text was rendered); it
    is read from them without building a Reason object per history item."""
    every = getattr(reasons, "every", None)
    if callable(every):  # served reasons: the full form's, from the arrays
        items, values = every()
        return list(items), np.asarray(values, dtype="<f8")
    items, out = [], []
    for r in reasons:
        item = getattr(r, "item", None)
        v = getattr(r, "contribution", None)
        if v is None:
            v = getattr(r, "similarity", None)
        if (not isinstance(item, str) or isinstance(v, bool)
                or not (v is None or isinstance(v, int | float))):
            raise ValidationError(
                f"give an explanation or its list of reasons (persona.Reason), not a list "
                f"holding a {type(r).__name__}",
                errors=[{"row": None, "field": "reasons", "message": "not a reason"}],
            )
        items.append(item)
        out.append(math.nan if v is None else float(v))
    return items, np.asarray(out, dtype="<f8")


_BASES: dict[bytes, Any] = {}  # per key: an HMAC that has absorbed the key and the label


def reasons_digest(key: bytes, reasons: Any) -> str:
    """The keyed digest of a list of reasons: HMAC-SHA256 (the store's pseudonym key)
    over ``persona.reasons.v1``, a NUL, the reasons' item ids joined with U+001F, a NUL
    and their values (the contribution, else the similarity, else NaN) as little-endian
    float64, in the order given. Equal reasons give equal digests however they are held."""
    items, values = _values(reasons)
    base = _BASES.get(key)
    if base is None:
        base = _BASES[key] = hmac.new(key, b"persona.reasons.v1\x00", hashlib.sha256)
    mac = base.copy()
    mac.update("\x1f".join(items).encode("utf-8", "surrogatepass"))
    mac.update(b"\x00")
    mac.update(values.tobytes())
    return mac.hexdigest()


def _digest(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------ pending requests
@dataclass
class Pending:
    """One serving request: the audit entry of its read, and what it showed."""

    pseudonym: str
    code: int | None
    """The person's subject code at the read (``None``: the store holds nothing of them,
    so nothing is recorded for them)."""
    detail: dict[str, Any]
    at: datetime
    purpose: str
    recs: Sequence[Any] | None = None
    """What was shown: recommendations, or the rows ``persona.explain.shown_items`` made
    of them (dicts with ``item``, ``label``, ``text``, ``rank``, ``score``, ``kind`` and
    ``reasons``)."""
    model_version: str | None = None
    body: str | None = field(default=None, repr=False)
    prepared: bool = False

    def prepare(self, key: bytes, *, pause: bool = False) -> None:
        """Render what was shown as the JSON row (once): each item's text and the keyed
        digest of its reasons. ``pause``: let other threads run between items (the
        background writer, so that a serving thread waiting for the interpreter lock gets
        it after one item, not after the interpreter's switch interval)."""
        recs = self.recs  # (two threads may render it at once: they get the same row)
        if self.prepared:
            return
        if recs is not None and self.code is not None:
            items = []
            for r in recs:
                if isinstance(r, dict):  # what persona.explain.shown_items keeps of it
                    reasons = r["reasons"]
                    items.append({
                        "item": r["item"], "label": r["label"], "text": r["text"],
                        "rank": r["rank"], "score": r["score"], "kind": r["kind"],
                        "reasons_digest": (None if reasons is None
                                           else reasons_digest(key, reasons)),
                    })
                    continue
                e = r.explanation
                items.append({
                    "item": r.item,
                    "label": r.item if e is None else e.label,
                    "text": None if e is None else e.text,
                    "rank": r.rank,
                    "score": r.score,
                    "kind": None if e is None else e.kind,
                    "reasons_digest": None if e is None else reasons_digest(key, e.reasons),
                })
                if pause:
                    time.sleep(0)
            body = json.dumps({
                "purpose": self.purpose, "model_version": self.model_version,
                "at": self.at.isoformat(), "items": items,
            }, separators=(",", ":"), ensure_ascii=False)
            self.body = body
        self.prepared = True
        self.recs = None  # the explanations are not kept past this


class ShownJournal:
    """The requests of one store handle waiting to be committed together (see the module
    docstring for when they are)."""

    def __init__(self, db: Db, *, delay: float = 0.05, limit: int = 256) -> None:
        self._db = weakref.ref(db)
        self.delay = delay
        self.limit = limit
        self._pending: list[Pending] = []
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._stopped = False
        # held by the background writer from taking a batch until it is committed (on its
        # own connection), so that a flush waits for that batch too
        self.writing = threading.Lock()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, pending: Pending) -> None:
        """Queue a request. Its row (text, digests) is rendered now, in the caller's
        thread and outside the store's lock; only the SQL waits for the group commit.
        (Rendering it later, in the background writer, was measured too, on 2 busy cores:
        p50 1.3 ms instead of 4.9 ms on Online Retail, but p99 97 ms instead of 7.6 ms on
        the 100,000-person synthetic set; the cause of that tail was not found, so the
        predictable variant is kept.) A served
        summary keeps the text rendered here, so the caller's ``.text`` is not rendered
        twice."""
        db = self._db()
        if db is not None:
            pending.prepare(db.key)
        with self._cond:
            if not self._pending and db is not None:
                _HELD[id(self)] = db  # kept until written, even if the caller drops it
            self._pending.append(pending)
            full = self._stopped or len(self._pending) >= self.limit
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(
                    target=_run, args=(weakref.ref(self),), daemon=True,
                    name="persona-shown-journal",
                )
                self._thread.start()
            self._cond.notify()
        if full and db is not None:  # (a closed store refuses it with a StoreError)
            db.flush()

    def take(self) -> list[Pending]:
        with self._cond:
            batch, self._pending = self._pending, []
            _HELD.pop(id(self), None)
        return batch

    def requeue(self, batch: list[Pending]) -> None:
        """Put back a batch whose transaction did not commit, before anything newer."""
        if not batch:
            return
        db = self._db()
        with self._cond:
            self._pending[:0] = batch
            if db is not None:
                _HELD[id(self)] = db

    def write(self, db: Db) -> list[Pending]:
        """Append every waiting request to the audit log and the shown table, inside the
        store's current write transaction. Returns the batch (to requeue it if the
        transaction does not commit)."""
        if not self._pending:
            return []
        batch = self.take()
        con = db.con
        for p in batch:
            p.prepare(db.key)
        codes = sorted({p.code for p in batch if p.code is not None and p.body is not None})
        alive: set[int] = set()
        for start in range(0, len(codes), 500):  # erased meanwhile by another process?
            part = codes[start:start + 500]
            alive.update(r[0] for r in con.execute(
                f"SELECT id FROM subjects WHERE id IN ({','.join('?' * len(part))})", part))
        rows = []
        for p in batch:
            detail = p.detail
            if p.body is not None and p.code in alive:
                detail = {**detail, "shown": _digest(db.key, p.body)}
            seq = db.audit.append("scoped_history_read", detail, subject=p.pseudonym)
            if "shown" in detail:
                rows.append((seq, p.code, _to_us(p.at), p.body))
        if rows:
            con.executemany(
                "INSERT INTO shown(seq, subject_id, at, body) VALUES (?, ?, ?, ?)", rows
            )
        return batch

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            _HELD.pop(id(self), None)
            self._cond.notify()


def _run(ref: weakref.ReferenceType[ShownJournal]) -> None:
    """The background writer: waits for a request, lets the batch gather for ``delay``
    seconds, then commits it."""
    while True:
        journal = ref()
        if journal is None:
            return
        with journal._cond:
            while not journal._pending and not journal._stopped:
                journal._cond.wait(1.0)
                if ref() is None:  # pragma: no cover - the store was dropped
                    return
            if journal._stopped:
                return
        delay = journal.delay
        del journal
        time.sleep(delay)
        journal = ref()
        if journal is None:
            return
        db = journal._db()
        if db is None:
            return
        with journal._cond:
            waiting = list(journal._pending)
        for p in waiting:  # rendered outside the store's lock: serving reads go on
            p.prepare(db.key, pause=True)
        try:
            db.flush_background()
        except Exception:  # kept waiting (a busy file, a closed store): retried later
            time.sleep(delay)
        del journal, db


# stores with requests waiting: held (strongly) until they are written, and written at
# interpreter exit at the latest
_HELD: dict[int, Any] = {}


@atexit.register
def _flush_all() -> None:  # pragma: no cover - at interpreter exit
    for db in list(_HELD.values()):
        with contextlib.suppress(Exception):
            db.flush()


# ------------------------------------------------------------------ retention
def retention_days(con: Any) -> int | None:
    """How many days shown records are kept (``None``: until the person is erased)."""
    row = con.execute("SELECT value FROM meta WHERE key = ?", (_RETENTION_KEY,)).fetchone()
    if row is None:
        return DEFAULT_RETENTION_DAYS
    return None if row[0] == "none" else int(row[0])


def check_retention(days: Any) -> int | None:
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                             or not 1 <= days <= 36_500):
        raise ValidationError(
            f"days must be a whole number of days from 1 to 36500, or None (kept until the "
            f"person is erased), not {days!r}; e.g. store.set_shown_retention(90)",
            errors=[{"row": None, "field": "days", "message": "invalid"}],
        )
    return days


def set_retention(db: Db, days: int | None) -> None:
    """Set the retention of shown records (in the caller's write transaction)."""
    db.con.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (_RETENTION_KEY, "none" if days is None else str(days)),
    )
    db.audit.append("shown_retention", {"days": days})


def _cutoff_us(con: Any, now: datetime) -> int | None:
    days = retention_days(con)
    return None if days is None else _to_us(now - timedelta(days=days))


def purge(db: Db, now: datetime) -> int:
    """Delete shown records past retention (in the caller's write transaction): the
    Personalizer's and those of ``record_explanation``. Returns the rows deleted."""
    con = db.con
    cutoff = _cutoff_us(con, now)
    if cutoff is None:
        return 0
    deleted: int = con.execute("DELETE FROM shown WHERE at < ?", (cutoff,)).rowcount
    old = [
        seq for seq, at in con.execute(
            "SELECT s.seq, a.at FROM shown_explanations s JOIN audit a ON a.seq = s.seq"
        ) if _to_us(datetime.fromisoformat(at)) < cutoff
    ]
    for start in range(0, len(old), 500):
        part = old[start:start + 500]
        deleted += con.execute(
            f"DELETE FROM shown_explanations WHERE seq IN ({','.join('?' * len(part))})", part
        ).rowcount
    return deleted


def erase(con: Any, code: int) -> None:
    """Delete a person's shown records and choices (in the erasure's transaction)."""
    con.execute("DELETE FROM shown WHERE subject_id = ?", (code,))
    con.execute("DELETE FROM shown_explanations WHERE subject_id = ?", (code,))
    con.execute("DELETE FROM profiling WHERE subject_id = ?", (code,))


# ------------------------------------------------------------------ reading back
def records(db: Db, user: str, *, newest_first: bool = False) -> list[ShownRecord]:
    """Everything ``user`` was shown and is still held (inside retention), oldest first."""
    db.flush()
    pseudonym = db.pseudonym(user)
    key = db.key
    with db.lock:
        db.refresh()
        code = subject_code(db, user, create=False)
        if code is None:
            return []
        con = db.con
        con.execute("BEGIN")
        try:
            cutoff = _cutoff_us(con, db.now())
            auto = con.execute(
                "SELECT seq, at, body FROM shown WHERE subject_id = ? AND at >= ? ORDER BY seq",
                (code, -(2**63) if cutoff is None else cutoff),
            ).fetchall()
            manual = con.execute(
                "SELECT seq, body FROM shown_explanations WHERE subject_id = ? ORDER BY seq",
                (code,),
            ).fetchall()
            seqs = [r[0] for r in auto] + [r[0] for r in manual]
            entries: dict[int, tuple[str, str]] = {}
            for start in range(0, len(seqs), 500):
                part = seqs[start:start + 500]
                entries.update(
                    (s, (at, d)) for s, at, d in con.execute(
                        "SELECT seq, at, detail FROM audit WHERE subject = ? AND seq IN "
                        f"({','.join('?' * len(part))})", [pseudonym, *part])
                )
        finally:
            con.execute("COMMIT")
    out: list[ShownRecord] = []
    for seq, at, body in auto:
        entry = entries.get(seq)
        verified = entry is not None and json.loads(entry[1]).get("shown") == _digest(key, body)
        doc = json.loads(body)
        for it in doc["items"]:
            out.append(ShownRecord(
                seq=seq, at=_from_us(at), source="recommend", item=it["item"],
                label=it["label"], text=it["text"], rank=it["rank"], score=it["score"],
                kind=it["kind"], reasons_digest=it["reasons_digest"],
                model_version=doc.get("model_version"), purpose=doc.get("purpose"),
                verified=verified,
            ))
    for seq, body in manual:
        entry = entries.get(seq)
        if entry is None:
            continue  # its audit entry names another subject: not theirs to show
        when = datetime.fromisoformat(entry[0])
        if cutoff is not None and _to_us(when) < cutoff:
            continue
        doc = json.loads(body)
        verified = json.loads(entry[1]).get("digest") == _digest(key, body)
        doc_map = doc if isinstance(doc, dict) else {}
        out.append(ShownRecord(
            seq=seq, at=when, source="record_explanation",
            item=_str_or_none(doc_map.get("item")), label=_str_or_none(doc_map.get("label")),
            text=_str_or_none(doc_map.get("text")), rank=_int_or_none(doc_map.get("rank")),
            score=_float_or_none(doc_map.get("score")), kind=_str_or_none(doc_map.get("kind")),
            verified=verified, explanation=doc_map,
        ))
    out.sort(key=lambda r: (r.at, r.seq, r.rank or 0), reverse=newest_first)
    return out


def as_explanations(shown: Iterable[ShownRecord]) -> list[dict[str, Any]]:
    """``shown`` in the shape of :meth:`persona.Store.shown_explanations`."""
    out = []
    for r in shown:
        if r.source == "record_explanation":
            explanation = r.explanation or {}
        else:
            explanation = {
                "item": r.item, "label": r.label, "text": r.text, "rank": r.rank,
                "score": r.score, "kind": r.kind, "reasons_digest": r.reasons_digest,
                "model_version": r.model_version, "purpose": r.purpose,
                "source": "recommend",
            }
        out.append({"seq": r.seq, "at": r.at.isoformat(), "explanation": explanation,
                    "verified": r.verified})
    return out


def last_shown(
    db: Db, user: str, item: str, at: datetime, purpose: str | None
) -> ShownRecord | None:
    """The latest record of ``item`` shown to ``user`` at or before ``at``."""
    best = None
    for r in records(db, user):
        if r.item == item and r.at <= at and (purpose is None or r.purpose in (None, purpose)):
            best = r
    return best


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _int_or_none(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _float_or_none(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)


def _to_us(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)
