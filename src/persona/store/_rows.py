"""Rows the audit log vouches for: consent, privacy ledger and budget tables checked against
the hash-chained entries that recorded every change to them.

SQL triggers keep the ledger append-only, but anyone holding the file can drop them. So
:meth:`AuditLog.verify` also recomputes these tables from the chain and compares:

``consent_events``
    one row per stored ``consent_*`` entry, in the same order (both are written in one
    transaction), minus the rows of people erased after it (the ``erase`` entry under their
    pseudonym). Each entry's detail holds every column but the internal ids: the person's
    pseudonym (the keyed hash of ``subjects.ext``), purpose, action, times, source, notice
    version and signal.
``consent_state``
    exactly the latest event per person and purpose, by time and then sequence, as
    ``Store._consent_many`` keeps it; checked against ``consent_events`` in SQL.
``privacy_ledger``
    one row per ``privacy_charge`` entry, whose detail holds the row's sequence number
    (``ledger_seq``) and a digest of the row (``row``, :func:`ledger_row_digest`).
``privacy_budget``
    per purpose, the row digested (:func:`budget_row_digest`) by the last
    ``privacy_budget`` entry for it.

Entries written before the digests existed are checked on the fields they hold (a charge's
purpose, mechanism, ε, δ, ρ, snapshot and id; a budget's ε and δ), with the k-th charge
entry standing for ledger row k.

To put another table (or new columns) under the chain: give the table a ``*_row_digest``
function over its columns here, write its digest into the detail of the entry that records
each change, and compare in a checker like :class:`PrivacyRows`.

Like the chain itself, this is evidence against edits of part of the file: someone who
rewrites the tables *and* the whole chain after them is caught only by an anchor
(:meth:`AuditLog.head` recorded elsewhere).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from persona.store._audit import _canonical, _chain
from persona.store._serving_rows import SERVING_ACTIONS, ServingRows

__all__ = [
    "BUDGET_ACTIONS",
    "CONSENT_ACTIONS",
    "LEDGER_ACTIONS",
    "PrivacyRows",
    "RowMemo",
    "TableCheck",
    "budget_row_digest",
    "ledger_row_digest",
    "privacy_row_problems",
]

CONSENT_ACTIONS = frozenset({"consent_grant", "consent_withdraw", "consent_decline"})
LEDGER_ACTIONS = frozenset({"privacy_charge", "privacy_reservation", "privacy_settlement"})
BUDGET_ACTIONS = frozenset({"privacy_budget"})
PRIVACY_ACTIONS = LEDGER_ACTIONS | BUDGET_ACTIONS
# written as literals, in the order of the partial index audit_privacy (see _sql.DDL), which
# SQLite uses only for a WHERE clause identical to its own
PRIVACY_ENTRIES_SQL = (
    "SELECT seq, at, action, subject, detail, prev, hash FROM audit WHERE action IN ("
    + ", ".join(f"'{a}'" for a in sorted(PRIVACY_ACTIONS))
    + ") ORDER BY seq"
)
_MAX_REPORTED = 5  # problems of one kind listed one by one; the rest are counted


def _digest(table: str, *values: Any) -> str:
    text = json.dumps([table, *values], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def ledger_row_digest(seq: int, at: str, purpose: str | None, charge: str) -> str:
    """Digest of one ``privacy_ledger`` row (its columns as stored).

    >>> ledger_row_digest(1, "2026-11-01T00:00:00+00:00", "ads", "{}")[:12]
    'c15c70323483'
    """
    return _digest("privacy_ledger", int(seq), at, purpose, charge)


def budget_row_digest(
    purpose: str, epsilon: float, delta: float, at: str, period_days: int | None = None
) -> str:
    """Digest of one ``privacy_budget`` row (its columns as stored; a lifetime total, with
    ``period_days`` None, has the digest of the columns before budget periods existed).

    >>> budget_row_digest("ads", 1, 1e-6, "t") == budget_row_digest("ads", 1.0, 1e-6, "t")
    True
    >>> budget_row_digest("ads", 1, 1e-6, "t") == budget_row_digest("ads", 1, 1e-6, "t", 30)
    False
    """
    if period_days is None:
        return _digest("privacy_budget", purpose, float(epsilon), float(delta), at)
    return _digest("privacy_budget", purpose, float(epsilon), float(delta), at,
                   int(period_days))


LEDGER_SQL = "SELECT seq, at, purpose, charge FROM privacy_ledger ORDER BY seq"
BUDGET_SQL = (
    "SELECT purpose, epsilon, delta, at, period_days FROM privacy_budget ORDER BY purpose"
)


class _Found:
    """Problems of one kind: the first few in words, the rest counted."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.items: list[str] = []
        self.more = 0

    def add(self, text: str) -> None:
        if len(self.items) < _MAX_REPORTED:
            self.items.append(text)
        else:
            self.more += 1

    def report(self) -> list[str]:
        out = list(self.items)
        if self.more:
            out.append(f"{self.more} more {self.what} problems")
        return out


# ---------------------------------------------------------------------- ledger, budget
class PrivacyRows:
    """The ledger and budget rows the chain's entries call for, fed in chain order."""

    def __init__(self) -> None:
        self.ledger: dict[int, tuple[int, dict[str, Any]]] = {}  # ledger seq -> entry, detail
        self.budget: dict[str, tuple[int, dict[str, Any]]] = {}  # purpose -> entry, detail
        self._charges = 0

    def see(self, seq: int, action: str, detail: dict[str, Any]) -> None:
        if action in LEDGER_ACTIONS:
            self._charges += 1
            key = detail.get("ledger_seq", self._charges)
            self.ledger[key if type(key) is int else -seq] = (seq, detail)
        elif action in BUDGET_ACTIONS:
            self.budget[str(detail.get("purpose"))] = (seq, detail)

    def problems(self, con: sqlite3.Connection, memo: RowMemo | None = None) -> list[str]:
        found = _Found("privacy ledger/budget")
        expected = dict(self.ledger)
        for lseq, at, purpose, charge in con.execute(LEDGER_SQL):
            entry = expected.pop(lseq, None)
            key = None if entry is None else (at, purpose, charge, entry[0])
            if entry is None:
                found.add(f"privacy ledger row {lseq} was not recorded in the audit log")
            elif memo is not None and memo.ledger.get(lseq) == key:
                continue  # the same values matched the same (unchanged) entry before
            elif not _ledger_row_matches(entry[1], lseq, at, purpose, charge):
                found.add(
                    f"privacy ledger row {lseq} differs from what audit entry {entry[0]} "
                    "recorded"
                )
            elif memo is not None and key is not None:
                memo.ledger[lseq] = key
        for lseq, (seq, _) in sorted(expected.items()):
            found.add(
                f"privacy ledger row {lseq} (audit entry {seq}) is missing: a charge was "
                "deleted"
            )
        budgets = dict(self.budget)
        for purpose, epsilon, delta, at, period in con.execute(BUDGET_SQL):
            entry = budgets.pop(purpose, None)
            if entry is None:
                found.add(f"the privacy budget of {purpose!r} was not set through persona")
            elif not _budget_row_matches(entry[1], purpose, epsilon, delta, at, period):
                found.add(
                    f"the privacy budget of {purpose!r} differs from what audit entry "
                    f"{entry[0]} set"
                )
        for purpose, (seq, _) in sorted(budgets.items()):
            found.add(f"the privacy budget of {purpose!r} (audit entry {seq}) was deleted")
        return found.report()


def _ledger_row_matches(
    detail: dict[str, Any], lseq: int, at: str, purpose: str | None, charge: str
) -> bool:
    if "row" in detail:
        return bool(detail["row"] == ledger_row_digest(lseq, at, purpose, charge))
    try:  # an entry written before row digests: the fields it holds
        c = json.loads(charge)
    except (TypeError, ValueError):
        return False
    if not isinstance(c, dict) or purpose != detail.get("purpose"):
        return False
    return all(c.get(k) == detail.get(k) for k in (
        "purpose", "mechanism", "epsilon", "delta", "rho", "snapshot", "charge_id"))


def _budget_row_matches(
    detail: dict[str, Any], purpose: str, epsilon: float, delta: float, at: str,
    period_days: int | None,
) -> bool:
    if "row" in detail:
        return bool(detail["row"] == budget_row_digest(purpose, epsilon, delta, at, period_days))
    try:  # an entry written before row digests: its ε and δ (always a lifetime total)
        return (float(detail["epsilon"]) == epsilon and float(detail["delta"]) == delta
                and period_days is None)
    except (KeyError, TypeError, ValueError):
        return False


class RowMemo:
    """What one store handle has already checked, keyed by the exact stored values: a row
    read again with the same values needs no new hash or parse, so a budget check reads
    every row (an edit anywhere is still seen) but recomputes only new or changed ones."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}
        self.ledger: dict[int, tuple[Any, ...]] = {}
        self.parsed: dict[int, tuple[str, Any]] = {}  # ledger seq -> (text, parsed line)


def privacy_row_problems(con: sqlite3.Connection, memo: RowMemo | None = None) -> list[str]:
    """The ledger and budget rows checked against their own audit entries only (found
    through the ``audit_privacy`` index), each entry's hash recomputed (once per handle for
    unchanged values, with ``memo``): what a budget check can afford on every fit. The whole
    chain's links are checked by ``verify()``."""
    rows = PrivacyRows()
    found: list[str] = []
    for row in con.execute(PRIVACY_ENTRIES_SQL):
        seq, at, action, subject, detail, prev, digest = row
        hit = None if memo is None else memo.entries.get(seq)
        if hit is not None and hit[0] == row:
            parsed = hit[1]
        else:
            if _chain(prev, _canonical(seq, at, action, subject, detail)) != digest:
                found.append(f"entry {seq} was changed after it was written")
                continue
            parsed = _object(detail)
            if memo is not None:
                memo.entries[seq] = (row, parsed)
        rows.see(seq, action, parsed)
    return found + rows.problems(con, memo)


# ---------------------------------------------------------------------- consent
_CONSENT_SQL = (
    "SELECT ce.seq, s.ext, p.name, ce.action, ce.at, ce.recorded_at, ce.source, "
    "ce.notice_version, ce.signal FROM consent_events ce "
    "LEFT JOIN subjects s ON s.id = ce.subject_id "
    "LEFT JOIN purposes p ON p.id = ce.purpose_id ORDER BY ce.seq"
)
_LATEST = (
    "SELECT purpose_id, subject_id, action, at, seq FROM ("
    " SELECT purpose_id, subject_id, action, at, seq, row_number() OVER ("
    "  PARTITION BY purpose_id, subject_id ORDER BY at DESC, seq DESC) AS rank"
    " FROM consent_events) WHERE rank = 1"
)
_STATE = "SELECT purpose_id, subject_id, action, at, seq FROM consent_state"
_STATE_SQL = (
    f"SELECT (SELECT count(*) FROM ({_STATE} EXCEPT {_LATEST})), "
    f"(SELECT count(*) FROM ({_LATEST} EXCEPT {_STATE}))"
)


def _us(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1_000_000)  # as Store._to_us


def consent_row(
    pseudonym: str | None, detail: dict[str, Any]
) -> tuple[Any, ...]:
    """A ``consent_events`` row as its ``consent_*`` entry records it: (pseudonym, purpose,
    action, at and recorded_at in microseconds, source, notice version, signal)."""
    return (
        pseudonym, detail.get("purpose"), detail.get("action"), _us(detail["at"]),
        _us(detail["recorded_at"]), detail.get("source"), detail.get("notice_version"),
        detail.get("signal"),
    )


class ConsentRows:
    """``consent_events`` compared, row by row in one streaming pass, with the consent
    entries fed in chain order; then ``consent_state`` against ``consent_events``."""

    def __init__(
        self, con: sqlite3.Connection, pseudonym: Callable[[str], str],
        erased: dict[str, int],
    ) -> None:
        self._con = con
        self._pseudonym = pseudonym
        self._erased = erased  # pseudonym -> its last erase entry
        self._rows: Iterator[tuple[Any, ...]] = con.execute(_CONSENT_SQL)
        self._found: list[str] = []
        self._done = False  # a mismatch stops the comparison: what follows is out of step

    def see(self, seq: int, subject: str | None, detail: dict[str, Any]) -> None:
        if self._done or detail.get("stored") is False:
            return  # (an erased person's refusal: nothing was stored)
        if subject is not None and self._erased.get(subject, 0) > seq:
            return  # erased since: the row is gone, as it should be
        row = next(self._rows, None)
        if row is None:
            self._stop(f"the consent record of audit entry {seq} is missing from the store")
            return
        ext = row[1]
        try:
            expected = consent_row(subject, detail)
        except (KeyError, TypeError, ValueError):
            expected = None
        actual = (None if ext is None else self._pseudonym(ext), *row[2:])
        if actual != expected:
            self._stop(
                f"consent record {row[0]} differs from what audit entry {seq} recorded (or "
                "a record before it was deleted or inserted)"
            )

    def _stop(self, text: str) -> None:
        self._found.append(text + "; the consent records after it were not compared")
        self._done = True

    def problems(self) -> list[str]:
        if not self._done:
            extra = sum(1 for _ in self._rows)
            if extra:
                self._found.append(
                    f"{extra} consent record(s) in the store were not recorded in the audit "
                    "log (inserted directly, or kept after their person's erasure)"
                )
        stale, lacking = self._con.execute(_STATE_SQL).fetchone()
        if stale or lacking:
            self._found.append(
                f"the current consent state disagrees with the consent records in "
                f"{stale + lacking} place(s): it was edited directly"
            )
        return self._found


PROFILING_ACTIONS = frozenset({"prefer_non_profiling", "allow_profiling"})


class ProfilingRows:
    """The ``profiling`` table (who asked for suggestions not based on them) against the
    latest ``prefer_non_profiling`` / ``allow_profiling`` entry of each person, erasures
    after it removing the row."""

    def __init__(self, erased: dict[str, int]) -> None:
        self._erased = erased
        self._latest: dict[str, tuple[int, str]] = {}  # pseudonym -> (seq, action)

    def see(self, seq: int, action: str, subject: str | None) -> None:
        if subject is not None:
            self._latest[subject] = (seq, action)

    def problems(self, con: sqlite3.Connection, pseudonym: Callable[[str], str]) -> list[str]:
        held = {pseudonym(str(ext)) for (ext,) in con.execute(
            "SELECT s.ext FROM profiling pr JOIN subjects s ON s.id = pr.subject_id")}
        orphans = con.execute(
            "SELECT count(*) FROM profiling pr LEFT JOIN subjects s ON s.id = pr.subject_id "
            "WHERE s.id IS NULL").fetchone()[0]
        chosen = {
            subject for subject, (seq, action) in self._latest.items()
            if action == "prefer_non_profiling" and self._erased.get(subject, 0) < seq
        }
        found = []
        if held - chosen or orphans:
            found.append(
                f"{len(held - chosen) + orphans} non-profiling choice(s) in the store were not "
                "recorded in the audit log (inserted directly, or kept after an undo or an "
                "erasure)"
            )
        if chosen - held:
            found.append(
                f"{len(chosen - held)} non-profiling choice(s) recorded in the audit log are "
                "missing from the store (deleted directly)"
            )
        return found


# ---------------------------------------------------------------------- both
class TableCheck:
    """Fed every audit entry in chain order by :meth:`AuditLog.problems`; then lists where
    the consent, ledger, budget, non-profiling and shared serving tables (curation, model
    registry: :mod:`._serving_rows`) differ from what the entries recorded.

    Must be made, fed and asked inside one read transaction, so that it sees the same
    snapshot of the tables as the chain."""

    def __init__(self, con: sqlite3.Connection, pseudonym: Callable[[str], str]) -> None:
        erased = {
            str(subject): int(seq)
            for subject, seq in con.execute(
                "SELECT subject, max(seq) FROM audit WHERE action = 'erase' "
                "AND subject IS NOT NULL GROUP BY subject"
            )
        }
        self._con = con
        self._consent = ConsentRows(con, pseudonym, erased)
        self._privacy = PrivacyRows()
        self._profiling = ProfilingRows(erased)
        self._serving = ServingRows()
        self._pseudonym = pseudonym

    def entry(self, seq: int, action: str, subject: str | None, detail: str) -> None:
        if action in CONSENT_ACTIONS:
            self._consent.see(seq, subject, _object(detail))
        elif action in PRIVACY_ACTIONS:
            self._privacy.see(seq, action, _object(detail))
        elif action in PROFILING_ACTIONS:
            self._profiling.see(seq, action, subject)
        elif action in SERVING_ACTIONS:
            self._serving.see(seq, action, _object(detail))

    def problems(self) -> list[str]:
        return (self._consent.problems() + self._privacy.problems(self._con)
                + self._profiling.problems(self._con, self._pseudonym)
                + self._serving.problems(self._con))


def _object(detail: str) -> dict[str, Any]:
    try:
        value = json.loads(detail)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
