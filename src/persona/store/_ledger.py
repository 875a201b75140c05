"""The store's privacy ledger and budgets: ledger lines and budget policies kept in the store
file, under the store's audit log.

Every line is appended in the store's ``BEGIN IMMEDIATE`` write transaction together with the
ledger's check (:meth:`StoreChargeStorage.append_entries`), so a reservation made by one
process is seen by every other before it can reserve: checking and recording are one step.
SQL triggers refuse to update or delete ledger rows. The :class:`~persona.Store` methods
``set_privacy_budget``, ``privacy_budget``, ``privacy_budget_policy``, ``privacy_ledger`` and
``privacy_charges`` are implemented here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from persona.errors import AuditError, PrivacyBudgetExceeded, StoreError, ValidationError
from persona.schema import (
    BudgetLedger,
    LedgerCheck,
    LedgerEntry,
    PrivacyBudgetPolicy,
    PrivacyCharge,
    PrivacyReservation,
    PrivacySettlement,
    ledger_entry_from_json,
    ledger_lines,
)
from persona.store._rows import budget_row_digest, ledger_row_digest, privacy_row_problems

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["StoreChargeStorage"]


class StoreChargeStorage:
    """Privacy ledger lines kept in the store file (see :meth:`Store.charge_storage`).

    Implements the ``ChargeStorage`` protocol of :mod:`persona.privacy`. Appends run in one
    ``BEGIN IMMEDIATE`` transaction with the ledger's check, so they are atomic across every
    process that opens the file; each line is also written to the audit log.
    """

    def __init__(self, db: Db) -> None:
        self._db = db

    def _rows(self) -> list[LedgerEntry]:
        rows = self._db.con.execute(
            "SELECT seq, charge FROM privacy_ledger ORDER BY seq"
        ).fetchall()
        out = []
        parsed = self._db.privacy_memo.parsed
        for seq, text in rows:
            hit = parsed.get(seq)
            if hit is not None and hit[0] == text:  # the same stored text, parsed before
                out.append(hit[1])
                continue
            try:
                entry = ledger_entry_from_json(text)
                parsed[seq] = (text, entry)
                out.append(entry)
            except ValueError as exc:
                raise StoreError(
                    f"privacy ledger row {seq} of {self._db.path!r} is damaged ({exc}); "
                    "restore the store from a backup: spending cannot be verified without it"
                ) from None
        return out

    def load_entries(self) -> list[LedgerEntry]:
        db = self._db
        with db.lock:
            db.check_open()
            check_privacy_rows(db)
            return self._rows()

    def append_entries(
        self, entries: Sequence[LedgerEntry], *, check: LedgerCheck | None = None
    ) -> None:
        db = self._db
        with db.lock:
            db.check_open()
            with db.transaction():
                if check is not None:
                    check_privacy_rows(db)  # no budget check on tampered rows
                    check(self._rows())
                for e in entries:
                    row = (e.created_at.isoformat(), e.purpose, e.model_dump_json())
                    cur = db.con.execute(
                        "INSERT INTO privacy_ledger(at, purpose, charge) VALUES (?, ?, ?)", row
                    )
                    lseq = int(cur.lastrowid or 0)
                    action, detail = _audit_entry(e)
                    # the row itself under the hash chain: verify() finds edits and deletions
                    detail["ledger_seq"] = lseq
                    detail["row"] = ledger_row_digest(lseq, *row)
                    db.audit.append(action, detail)

    def load_charges(self) -> list[PrivacyCharge]:
        return [e for e in self.load_entries() if isinstance(e, PrivacyCharge)]

    def append_charge(self, charge: PrivacyCharge) -> None:
        self.append_entries([charge])


def _audit_entry(e: LedgerEntry) -> tuple[str, dict[str, Any]]:
    if isinstance(e, PrivacyReservation):
        return "privacy_reservation", {
            "purpose": e.purpose, "reservation_id": e.reservation_id, "epsilon": e.epsilon,
            "delta": e.delta, "planned": [p.mechanism for p in e.planned],
            "snapshot": e.snapshot,
        }
    if isinstance(e, PrivacySettlement):
        return "privacy_settlement", {
            "purpose": e.purpose, "reservation_id": e.reservation_id,
            "charge_ids": list(e.charge_ids),
        }
    return "privacy_charge", {
        "purpose": e.purpose, "mechanism": e.mechanism, "epsilon": e.epsilon,
        "delta": e.delta, "rho": e.rho, "snapshot": e.snapshot, "charge_id": e.charge_id,
        "reservation_id": e.reservation_id,
    }


# ---------------------------------------------------------------------- budgets
def _number(value: Any, field: str, rule: str, ok: Any) -> float:
    number = math.nan
    if not isinstance(value, bool) and isinstance(value, int | float):
        number = float(value) if abs(value) < 1e308 else math.inf  # an int too big for a float
    if not math.isfinite(number) or not ok(number):
        raise ValidationError(
            f"field {field!r}: a privacy budget needs {rule}, not {value!r:.80}",
            errors=[{"row": None, "field": field, "message": "out of range"}],
        )
    return number


def validated_policy(
    epsilon: Any, delta: Any, period_days: Any
) -> tuple[float, float, int | None]:
    """``(epsilon, delta, period_days)`` checked, or :class:`~persona.ValidationError`."""
    eps = _number(epsilon, "epsilon", "a finite epsilon > 0", lambda v: v > 0)
    dlt = _number(delta, "delta", "a finite delta with 0 <= delta < 1", lambda v: 0 <= v < 1)
    if period_days is not None and (
        isinstance(period_days, bool) or not isinstance(period_days, int)
        or not 1 <= period_days <= 36_500
    ):
        raise ValidationError(
            f"field 'period_days': give None (a lifetime total) or a whole number of days "
            f"from 1 to 36500, not {period_days!r}",
            errors=[{"row": None, "field": "period_days", "message": "out of range"}],
        )
    return eps, dlt, period_days


def set_budget(
    db: Db, purpose: str, epsilon: Any, delta: Any, period_days: Any, *,
    only_if_absent: bool = False, reason: str | None = None,
) -> PrivacyBudgetPolicy:
    """Write ``purpose``'s budget policy (or keep the existing one when ``only_if_absent``)
    and return the policy now in force; recorded in the audit log when written."""
    eps, dlt, period = validated_policy(epsilon, delta, period_days)
    with db.lock:
        db.refresh()
        db.purpose_id(purpose)
        with db.transaction():
            verb = "INSERT OR IGNORE" if only_if_absent else "INSERT OR REPLACE"
            at = db.now().isoformat()
            cur = db.con.execute(
                f"{verb} INTO privacy_budget(purpose, epsilon, delta, at, period_days) "
                "VALUES (?, ?, ?, ?, ?)",
                (purpose, eps, dlt, at, period),
            )
            if cur.rowcount:
                detail: dict[str, Any] = {
                    "purpose": purpose, "epsilon": eps, "delta": dlt, "period_days": period,
                    "row": budget_row_digest(purpose, eps, dlt, at, period),
                }
                if reason is not None:
                    detail["reason"] = reason
                db.audit.append("privacy_budget", detail)
            policy = _read_policy(db, purpose)
    assert policy is not None
    return policy


def _read_policy(db: Db, purpose: str) -> PrivacyBudgetPolicy | None:
    row = db.con.execute(
        "SELECT epsilon, delta, period_days, at FROM privacy_budget WHERE purpose = ?",
        (purpose,),
    ).fetchone()
    if row is None:
        return None
    return PrivacyBudgetPolicy(
        purpose=purpose, epsilon=float(row[0]), delta=float(row[1]),
        period_days=None if row[2] is None else int(row[2]), set_at=row[3],
    )


def budget_policy(db: Db, purpose: str) -> PrivacyBudgetPolicy | None:
    """``purpose``'s budget policy, or ``None`` if none was set. Raises
    :class:`~persona.AuditError` when the ledger or budget rows differ from their audit
    entries (edited with the triggers dropped)."""
    if not isinstance(purpose, str) or not purpose.encode("utf-8", "replace").decode() == purpose:
        raise ValidationError(
            f"field 'purpose': give a purpose's name (a str of valid Unicode), not "
            f"{purpose!r:.80}",
            errors=[{"row": None, "field": "purpose", "message": "not a name"}],
        )
    with db.lock:
        db.check_open()
        check_privacy_rows(db)
        return _read_policy(db, purpose)


def privacy_ledger(
    db: Db, purpose: str, default: tuple[float, float] | None
) -> BudgetLedger:
    """A :class:`~persona.schema.BudgetLedger` on the store's ledger with ``purpose``'s
    policy; with no policy set, ``default`` becomes it (or the call is refused)."""
    with db.lock:
        db.refresh()
        db.purpose_id(purpose)
        policy = _read_policy(db, purpose)
    if policy is None:
        if default is None:
            raise PrivacyBudgetExceeded(
                f"purpose {purpose!r} has no privacy budget, so no private computation may "
                f"read its data; set one with store.set_privacy_budget({purpose!r}, "
                "epsilon=..., delta=...) or 'persona budget set'",
                purpose=purpose,
            )
        if not isinstance(default, tuple | list) or len(default) != 2:
            raise ValidationError(
                f"default must be an (epsilon, delta) pair, not {default!r}",
                errors=[{"row": None, "field": "default", "message": "invalid"}],
            )
        policy = set_budget(
            db, purpose, default[0], default[1], None, only_if_absent=True,
            reason="no budget was set: the first private fit's (epsilon, delta) became the "
                   "lifetime total",
        )
    return BudgetLedger(
        StoreChargeStorage(db), epsilon_budget=policy.epsilon, delta_budget=policy.delta,
        period_days=policy.period_days, clock=db.now,
    )


def privacy_charges(db: Db, purpose: str | None) -> list[PrivacyCharge]:
    """The ledger's charges (and open reservations, ``status="reserved"``), oldest first."""
    if purpose is not None:
        with db.lock:
            db.refresh()
            db.purpose_id(purpose)
    return ledger_lines(StoreChargeStorage(db).load_entries(), purpose)


def check_privacy_rows(db: Db) -> None:
    """Refuse to act on ledger or budget rows that differ from their audit entries
    (edited with the triggers dropped): budget checks read them on every fit."""
    with db.lock, db.audit._snapshot():
        found = privacy_row_problems(db.con, db.privacy_memo)
    if found:
        raise AuditError(
            "the privacy ledger or budget does not match the audit log: "
            + "; ".join(found)
            + ". persona refuses to check budgets against it. Restore the store file "
            "from a backup and investigate who had write access to it.",
            problems=found,
        )
