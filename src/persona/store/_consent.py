"""Consent: choices through the API, Global Privacy Control, IAB TCF v2.2 and Google
Consent Mode signals, a consent platform's batch; the consent history and state read back.

Every write checks its fields first, then writes in one transaction of the handle ``db``
with an audit entry per recorded choice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from persona.errors import (
    ValidationError,
)
from persona.schema import (
    ConsentAction,
    ConsentRecord,
    check_id,
)
from persona.store._common import (
    as_tuple,
    check_utf8,
    from_us,
    is_utf8,
    parse_time,
    to_us,
)
from persona.store._definitions import purpose_specs
from persona.store._subjects import subject_code

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = [
    "apply_consent_mode",
    "apply_tcf",
    "check_notice",
    "checked_choice",
    "choice_time",
    "consent",
    "consent_checked",
    "consent_from_row",
    "consent_history",
    "consent_many",
    "consent_record",
    "consent_status",
    "consent_write",
    "consented",
    "do_not_sell",
    "has_consent",
]

CONSENT_COLUMNS = "purpose_id, action, at, recorded_at, source, notice_version, signal"
CONSENT_COLUMNS_CE = ", ".join(f"ce.{c.strip()}" for c in CONSENT_COLUMNS.split(","))
CHOICE_FIELDS = frozenset({"user", "purpose", "action", "source", "at", "notice_version"})

def consent(
    db: Db,
    user: str,
    purpose: str,
    action: ConsentAction,
    source: str,
    notice_version: str | None,
    at: datetime | str | None,
) -> ConsentRecord:
    """One person's choice made through the API (no machine signal behind it)."""
    with db.lock:
        db.refresh()
        return consent_many(
            db, user, [(purpose, action)], source, notice_version, None, at=at
        )[0]


def consent_many(
    db: Db,
    user: str,
    plan: list[tuple[str, ConsentAction]],
    source: str,
    notice_version: str | None,
    signal: str | None,
    *,
    at: datetime | str | None = None,
    only_changes: bool = False,
) -> list[ConsentRecord]:
    now = db.now()
    user, when = consent_checked(user, source, notice_version, at, now)
    pids = [(db.purpose_id(p), p, a) for p, a in plan]
    with db.transaction():
        return consent_write(
            db, user, pids, source, notice_version, signal, when, now, only_changes
        )


def do_not_sell(
    db: Db, user: str, *, source: str
) -> list[ConsentRecord]:
    """Apply a "do not sell or share" / Global Privacy Control signal: withdraw every
    purpose defined with ``sharing=True``. Returns the records written."""
    with db.lock:
        db.refresh()
        names = [n for n, (_, spec) in db.purposes.items() if spec.sharing]
        return consent_many(db, user, [(n, "withdraw") for n in names], source, None, "gpc")


def apply_tcf(
    db: Db,
    user: str,
    purposes: Iterable[int],
    *,
    source: str,
    notice_version: str | None = None,
) -> list[ConsentRecord]:
    """Apply the purposes a TCF v2.2 consent string allows (``purposes``: TCF purpose ids)."""
    ids = as_tuple(purposes, "purposes", "[1, 3, 4]")
    if any(isinstance(p, bool) or not isinstance(p, int) for p in ids):
        raise ValidationError(
            "field 'purposes': give TCF purpose ids as ints, e.g. [1, 3, 4]",
            errors=[{"row": None, "field": "purposes", "message": "not an int"}],
        )
    allowed = set(ids)
    with db.lock:
        db.refresh()
        plan: list[tuple[str, ConsentAction]] = [
            (name, "grant" if set(spec.tcf_purposes) <= allowed else "withdraw")
            for name, (_, spec) in db.purposes.items()
            if spec.tcf_purposes
        ]
        return consent_many(db, user, plan, source, notice_version, "tcf", only_changes=True)


def apply_consent_mode(
    db: Db,
    user: str,
    signals: Mapping[str, str],
    *,
    source: str,
) -> list[ConsentRecord]:
    """Apply Google Consent Mode v2 signals (``{"ad_personalization": "denied", ...}``)."""
    if not isinstance(signals, Mapping):
        raise ValidationError(
            f"field 'signals': give a dict such as {{'ad_user_data': 'granted'}}, not a "
            f"{type(signals).__name__}",
            errors=[{"row": None, "field": "signals", "message": "not a dict"}],
        )
    for key, value in signals.items():
        if value not in ("granted", "denied"):
            raise ValidationError(
                f"consent mode signal {key!r} must be 'granted' or 'denied', not {value!r}",
                errors=[{"row": None, "field": key, "message": "invalid value"}],
            )
    with db.lock:
        db.refresh()
        plan: list[tuple[str, ConsentAction]] = []
        for name, (_, spec) in db.purposes.items():
            if not spec.consent_mode:
                continue
            states = [signals.get(s) for s in spec.consent_mode]
            if "denied" in states:
                plan.append((name, "withdraw"))
            elif all(s == "granted" for s in states):
                plan.append((name, "grant"))
        return consent_many(db, user, plan, source, None, "consent_mode", only_changes=True)


def checked_choice(db: Db, choice: Any, now: datetime) -> tuple[Any, ...]:
    """One choice of :meth:`record_consents`, checked, as the arguments of its write;
    a bad one raises an error whose first ``errors`` entry names the field."""

    def refuse(field: str, message: str) -> ValidationError:
        return ValidationError(message, errors=[{"field": field}])

    if not isinstance(choice, Mapping):
        raise refuse("choice", f"give a mapping, not a {type(choice).__name__}")
    extra = sorted(map(str, set(choice) - CHOICE_FIELDS))
    if extra:
        raise refuse(extra[0], f"unknown field(s) {extra}; a choice has "
                               f"{sorted(CHOICE_FIELDS)}")
    action = choice.get("action")
    if action not in ("grant", "withdraw", "decline"):
        raise refuse("action", f"field 'action': {action!r} is not 'grant', 'withdraw' "
                               "or 'decline'")
    purpose = choice.get("purpose")
    if not isinstance(purpose, str):
        raise refuse("purpose", f"field 'purpose': give a purpose's name (a str), not "
                                f"{purpose!r}")
    version = choice.get("notice_version")
    user, when = consent_checked(
        choice.get("user"), choice.get("source"), version, choice.get("at"), now)
    pid = db.purpose_id(purpose)
    return user, [(pid, purpose, action)], choice["source"], version, when


def consent_checked(
    user: Any, source: Any, notice_version: Any, at: Any, now: datetime
) -> tuple[str, datetime]:
    """The person's id and the time of a choice, once its fields are checked."""
    user = check_id(user, "user")
    check_notice(source, notice_version)
    return user, choice_time(at, now)


def check_notice(source: Any, notice_version: Any) -> None:
    """Refuse a choice's ``source`` or ``notice_version`` that cannot be recorded."""
    if not isinstance(source, str) or not source.strip():
        raise ValidationError(
            "source must say where the choice was made, e.g. source='signup form v3'",
            errors=[{"row": None, "field": "source", "message": "empty"}],
        )
    check_utf8(source, "source")
    if notice_version is not None and (
        not isinstance(notice_version, str) or not notice_version.strip()
        or len(notice_version) > 200 or not is_utf8(notice_version)
    ):
        raise ValidationError(
            f"field 'notice_version': {notice_version!r} is not a version; give the "
            "privacy notice's version as a non-empty str of at most 200 characters, "
            "e.g. notice_version='2026-11', or leave it out",
            errors=[{"row": None, "field": "notice_version", "message": "not a str"}],
        )


def choice_time(at: Any, now: datetime) -> datetime:
    """When a choice was made: ``at`` (not in the future), or ``now`` when not given.

    A time whose zone offset has seconds (a local mean time before 1940, say) is given in
    UTC instead: a ``ConsentRecord`` writes offsets to the minute, and the audit entry must
    name the instant stored."""
    when = now if at is None else parse_time(at, "at")
    offset = when.utcoffset()
    if offset is not None and (offset.seconds % 60 or offset.microseconds):
        when = when.astimezone(UTC)
    if when > now:
        raise ValidationError(
            f"consent time {when.isoformat()} is in the future; record choices when they "
            "are made, or pass the past time they were made",
            errors=[{"row": None, "field": "at", "message": "in the future"}],
        )
    return when


def consent_write(
    db: Db,
    user: str,
    pids: list[tuple[int, str, ConsentAction]],
    source: str,
    notice_version: str | None,
    signal: str | None,
    when: datetime,
    now: datetime,
    only_changes: bool,
) -> list[ConsentRecord]:
    """Write checked choices of one person; inside the caller's write transaction."""
    records: list[ConsentRecord] = []
    pseudonym = db.pseudonym(user)

    def make(purpose: str, action: ConsentAction) -> ConsentRecord:
        return ConsentRecord(
            purpose=purpose, action=action, at=when, recorded_at=now, source=source,
            notice_version=notice_version, signal=signal,
        )

    suppressed = db.con.execute(
        "SELECT 1 FROM suppressed WHERE pseudonym = ?", (pseudonym,)
    ).fetchone()
    if suppressed and all(a != "grant" for _, _, a in pids):
        # an erased person saying no: nothing is held, and nothing is stored now
        for _, name, action in pids:
            record = make(name, action)
            db.audit.append(
                f"consent_{action}",
                {"purpose": name, "stored": False, "reason": "erased person"},
                subject=pseudonym,
            )
            records.append(record)
        return records
    code = subject_code(db, user, create=True)
    for pid, name, action in pids:
        state = db.con.execute(
            "SELECT action, at, seq FROM consent_state "
            "WHERE purpose_id = ? AND subject_id = ?",
            (pid, code),
        ).fetchone()
        # a signal records only changes; never asked counts as withdrawn
        if only_changes and (state[0] if state else "withdraw") == action:
            continue
        cur = db.con.execute(
            "INSERT INTO consent_events(subject_id, purpose_id, action, at, recorded_at, "
            "source, notice_version, signal) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (code, pid, action, to_us(when), to_us(now), source, notice_version, signal),
        )
        seq = int(cur.lastrowid or 0)
        if state is None or (to_us(when), seq) >= (state[1], state[2]):
            db.con.execute(
                "INSERT OR REPLACE INTO consent_state"
                "(purpose_id, subject_id, action, at, seq) VALUES (?, ?, ?, ?, ?)",
                (pid, code, action, to_us(when), seq),
            )
        if action == "grant":
            db.con.execute("DELETE FROM suppressed WHERE pseudonym = ?", (pseudonym,))
        record = make(name, action)
        db.audit.append(
            f"consent_{action}", record.model_dump(mode="json"), subject=pseudonym
        )
        records.append(record)
    return records


def consent_history(db: Db, user: str) -> list[ConsentRecord]:
    """Every consent event recorded for ``user``, oldest first (empty if none)."""
    user = check_id(user, "user")
    with db.lock:
        db.refresh()
        code = subject_code(db, user, create=False)
        if code is None:
            return []
        rows = db.con.execute(
            f"SELECT {CONSENT_COLUMNS} FROM consent_events "
            "WHERE subject_id = ? ORDER BY at, seq",
            (code,),
        ).fetchall()
        return [consent_from_row(db, row) for row in rows]


def consent_status(db: Db, user: str) -> dict[str, ConsentRecord | None]:
    """The latest consent event for each defined purpose (``None``: never asked)."""
    latest: dict[str, ConsentRecord | None] = dict.fromkeys(purpose_specs(db))
    for record in consent_history(db, user):
        latest[record.purpose] = record
    return latest


def consented(db: Db, purpose: str) -> set[str]:
    """Everyone whose latest consent event for ``purpose`` is a grant, now."""
    with db.lock:
        db.refresh()
        pid = db.purpose_id(purpose)
        return {
            r[0]
            for r in db.con.execute(
                "SELECT s.ext FROM consent_state c JOIN subjects s ON s.id = c.subject_id "
                "WHERE c.purpose_id = ? AND c.action = 'grant'",
                (pid,),
            )
        }


def has_consent(db: Db, user: str, purpose: str) -> bool:
    """True when the latest consent event of ``user`` for ``purpose`` is a grant, now."""
    user = check_id(user, "user")
    with db.lock:
        db.refresh()
        pid = db.purpose_id(purpose)
        code = subject_code(db, user, create=False)
        if code is None:
            return False
        row = db.con.execute(
            "SELECT action FROM consent_state WHERE purpose_id = ? AND subject_id = ?",
            (pid, code),
        ).fetchone()
        return row is not None and row[0] == "grant"


def consent_record(db: Db, seq: int) -> ConsentRecord:
    row = db.con.execute(
        f"SELECT {CONSENT_COLUMNS} FROM consent_events WHERE seq = ?", (seq,)
    ).fetchone()
    return consent_from_row(db, row)


def consent_from_row(db: Db, row: tuple[Any, ...]) -> ConsentRecord:
    pid, action, at, rec, source, notice, signal = row
    name = next(n for n, (i, _) in db.purposes.items() if i == pid)
    return ConsentRecord(
        purpose=name, action=action, at=from_us(at), recorded_at=from_us(rec),
        source=source, notice_version=notice, signal=signal,
    )
