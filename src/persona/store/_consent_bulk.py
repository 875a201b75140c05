"""Many consent choices in one transaction (``Store.grant_many``, ``Store.record_consents``):
every row checked first, then the whole batch written with a few statements.

What is written is what one :meth:`Store.grant` (or ``withdraw``, ``decline``) per row, in
the order given, would write: a ``consent_events`` row and an audit entry per choice (same
detail, same pseudonym), the person created at their first stored choice, the consent state
the latest choice by time and then sequence, an erased person's suppression lifted by a
grant, and an erased person's withdrawal or decline audited but not stored. Only the
statements differ: one ``executemany`` per table instead of several statements per row,
and one clock reading for the batch's audit entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from persona.errors import PersonaError, ValidationError
from persona.schema import ConsentAction, ConsentRecord, check_id
from persona.store._audit import encode_str
from persona.store._common import as_tuple, to_us
from persona.store._consent import check_notice, checked_choice, choice_time
from persona.store._subjects import create_subjects, uncached_subjects

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["Choice", "grant_many", "record_consents"]

GRANT_FIELDS = frozenset({"user", "purpose", "source", "at", "notice_version"})


class Choice(NamedTuple):
    """One checked choice, as the arguments of its write."""

    user: str
    purpose_id: int
    purpose: str
    action: ConsentAction
    source: str
    notice_version: str | None
    at: datetime


def grant_many(
    db: Db,
    rows: Any,
    *,
    source: str | None = None,
    notice_version: str | None = None,
) -> int:
    """:meth:`Store.grant_many`: check every row, then record them all; the number
    recorded."""
    rows = _as_rows(rows)
    if source is not None:
        _check_default_source(source)
    with db.lock:
        db.refresh()
        now = db.now()
        plan = _grant_rows(db, rows, now, source, notice_version)
        if not plan:
            return 0
        with db.large_write(len(plan)), db.transaction():
            write_choices(db, plan, now)
        return len(plan)


def record_consents(db: Db, choices: Iterable[Mapping[str, Any]]) -> list[ConsentRecord]:
    """:meth:`Store.record_consents`: check every choice, then record them all."""
    rows = as_tuple(choices, "choices", "[{'user': 'u1', 'purpose': 'marketing', ...}]")
    with db.lock:
        db.refresh()
        now = db.now()
        plan = []
        for k, choice in enumerate(rows):
            try:
                user, pids, src, version, when = checked_choice(db, choice, now)
            except PersonaError as exc:  # (an unknown purpose names no field)
                raise _rejected(exc, k, len(rows), "consent choice", "choice") from None
            (pid, purpose, action), = pids
            plan.append(Choice(user, pid, purpose, action, src, version, when))
        if plan:
            with db.large_write(len(plan)), db.transaction():
                write_choices(db, plan, now)
        return [
            ConsentRecord(purpose=c.purpose, action=c.action, at=c.at, recorded_at=now,
                          source=c.source, notice_version=c.notice_version)
            for c in plan
        ]


def write_choices(db: Db, plan: list[Choice], now: datetime) -> None:
    """Write checked choices, in order; inside the caller's write transaction."""
    con = db.con
    users = list(dict.fromkeys(c.user for c in plan))
    pseudonyms = dict(zip(users, db.pseudonyms(users), strict=True))
    suppressed = _suppressed(db, list(pseudonyms.values()))
    # an erased person's "no" is audited, not stored; their grant lifts the suppression
    stored: list[bool] = []
    lifted: list[str] = []
    for c in plan:
        p = pseudonyms[c.user]
        if p in suppressed:
            if c.action != "grant":
                stored.append(False)
                continue
            suppressed.discard(p)
            lifted.append(p)
        stored.append(True)
    keep = [c for c, s in zip(plan, stored, strict=True) if s]
    new, complete = uncached_subjects(db, [c.user for c in keep])
    if new:
        create_subjects(db, new, pseudonyms, complete)
    codes = db.subjects
    seq = _last_consent_seq(db)
    events = []
    # (purpose, subject) -> the state: a later choice, or one as late and so numbered later
    latest: dict[tuple[int, int], tuple[int, int, str]] = {}
    recorded = to_us(now)
    for c in keep:
        seq += 1
        code, when = codes[c.user], to_us(c.at)
        events.append((seq, code, c.purpose_id, c.action, when, recorded, c.source,
                       c.notice_version))
        key = (c.purpose_id, code)
        held = latest.get(key)
        if held is None or when >= held[0]:
            latest[key] = (when, seq, c.action)
    con.executemany(
        "INSERT INTO consent_events(seq, subject_id, purpose_id, action, at, recorded_at, "
        "source, notice_version, signal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        events,
    )
    # the latest choice replaces the state unless the state is later (by time, then
    # sequence; every new sequence number is above every held one)
    con.executemany(
        "INSERT INTO consent_state(purpose_id, subject_id, action, at, seq) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(purpose_id, subject_id) DO UPDATE SET "
        "action = excluded.action, at = excluded.at, seq = excluded.seq "
        "WHERE excluded.at >= consent_state.at",
        [(pid, code, action, when, s) for (pid, code), (when, s, action) in latest.items()],
    )
    if lifted:
        con.executemany("DELETE FROM suppressed WHERE pseudonym = ?", zip(lifted))
    db.audit.append_many(_entries(plan, stored, pseudonyms, recorded_json=_time(now)))


def _entries(
    plan: list[Choice], stored: list[bool], pseudonyms: Mapping[str, str], recorded_json: str
) -> list[tuple[str, str, str]]:
    """The audit entries: a consent record's JSON per stored choice, the erased person's
    note for one not stored (the details :meth:`AuditLog.append` would encode)."""
    texts: dict[str, str] = {}  # each distinct purpose, source and version encoded once

    def text(value: str) -> str:
        out = texts.get(value)
        if out is None:
            out = texts[value] = encode_str(value)
        return out

    out: list[tuple[str, str, str]] = []
    for c, kept in zip(plan, stored, strict=True):
        if kept:
            version = "null" if c.notice_version is None else text(c.notice_version)
            detail = (
                f'{{"action":"{c.action}","at":{_time(c.at)},"notice_version":{version},'
                f'"purpose":{text(c.purpose)},"recorded_at":{recorded_json},'
                f'"signal":null,"source":{text(c.source)}}}'
            )
        else:
            detail = f'{{"purpose":{text(c.purpose)},"reason":"erased person","stored":false}}'
        out.append((f"consent_{c.action}", pseudonyms[c.user], detail))
    return out


def _time(value: datetime) -> str:
    """``value`` as a JSON string, as pydantic writes a ``ConsentRecord``'s times: ISO
    8601, UTC as ``Z`` (offsets are whole minutes: :func:`choice_time` sees to it)."""
    text = value.isoformat()
    return encode_str(text[:-6] + "Z" if text.endswith("+00:00") else text)


def _suppressed(db: Db, pseudonyms: list[str]) -> set[str]:
    """Which of ``pseudonyms`` are erased people's (refused until they grant again)."""
    con = db.con
    if not con.execute("SELECT 1 FROM suppressed LIMIT 1").fetchone():
        return set()
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _ps(p TEXT PRIMARY KEY)")
    con.execute("DELETE FROM temp._ps")
    con.executemany("INSERT OR IGNORE INTO temp._ps(p) VALUES (?)", zip(pseudonyms))
    return {
        r[0] for r in con.execute(
            "SELECT s.pseudonym FROM suppressed s JOIN temp._ps t ON t.p = s.pseudonym")
    }


def _last_consent_seq(db: Db) -> int:
    """The largest consent sequence number ever given (erased rows' included), which
    AUTOINCREMENT would count on from."""
    row = db.con.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence "
        "WHERE name = 'consent_events'), 0), coalesce((SELECT max(seq) "
        "FROM consent_events), 0))"
    ).fetchone()
    return int(row[0])


def _as_rows(rows: Any) -> tuple[Any, ...]:
    """The rows of a list of mappings or of a pandas DataFrame (missing cells: absent)."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        frame = rows.astype(object)
        frame = frame.where(frame.notna(), None)
        return tuple(
            {k: v for k, v in row.items() if v is not None}
            for row in frame.to_dict("records")
        )
    return as_tuple(rows, "rows", "[{'user': 'u1', 'purpose': 'marketing'}]")


def _check_default_source(source: Any) -> None:
    if not isinstance(source, str) or not source.strip():
        raise ValidationError(
            f"source must say where the choices were made, e.g. source='CMP export "
            f"2026-06', not {source!r}",
            errors=[{"row": None, "field": "source", "message": "not a source"}],
        )


def _grant_rows(
    db: Db, rows: tuple[Any, ...], now: datetime, source: str | None,
    notice_version: str | None,
) -> list[Choice]:
    """The rows of :func:`grant_many`, checked, as choices; the first bad one raises."""
    plan: list[Choice] = []
    texts: set[tuple[str, str | None]] = set()  # (source, notice version) pairs checked
    purpose_id = db.purpose_id
    for k, row in enumerate(rows):
        try:
            if type(row) is not dict and not isinstance(row, Mapping):
                raise ValidationError(
                    f"give each row as a mapping such as {{'user': 'u1', 'purpose': "
                    f"'marketing'}}, not a {type(row).__name__}",
                    errors=[{"field": "row"}],
                )
            if not row.keys() <= GRANT_FIELDS:
                extra = sorted(map(str, row.keys() - GRANT_FIELDS))
                raise ValidationError(
                    f"unknown field(s) {extra}; a row of grant_many has "
                    f"{sorted(GRANT_FIELDS)} (to record withdrawals or declines too, use "
                    "store.record_consents)",
                    errors=[{"field": extra[0]}],
                )
            user = check_id(row.get("user"), "user")
            src: Any = row.get("source", source)
            version: Any = row.get("notice_version", notice_version)
            if (type(src) is not str or (version is not None and type(version) is not str)
                    or (src, version) not in texts):
                check_notice(src, version)
                src, version = str(src), None if version is None else str(version)
                texts.add((src, version))
            at = row.get("at")
            when = now if at is None else choice_time(at, now)
            purpose: Any = row.get("purpose")
            pid = purpose_id(purpose)  # a str naming a defined purpose, or refused
            plan.append(Choice(user, pid, purpose, "grant", src, version, when))
        except PersonaError as exc:
            raise _rejected(exc, k, len(rows), "row", "row") from None
    return plan


def _rejected(exc: PersonaError, k: int, n: int, what: str, one: str) -> ValidationError:
    """One bad row's error as the batch's: nothing recorded, the row and field named (an
    unknown purpose's error names no field)."""
    first = (getattr(exc, "errors", None) or [{}])[0]
    field = first.get("field") or "purpose"
    return ValidationError(
        f"the {n} {what}(s) were rejected and nothing was recorded: {one} {k} (from 0): "
        f"{exc}",
        errors=[{"row": k, "field": field, "message": str(exc)}],
    )
