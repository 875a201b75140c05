"""Lineage: what a read used of the data and what it left out, and why (consent, purpose,
retention, "don't use" feedback); the consent snapshot of a purpose."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from persona.schema import (
    ConsentSnapshot,
    FeatureNotUsed,
    FeatureUsed,
    NotUsedReason,
)
from persona.store._common import (
    DAY_US,
    from_us,
    to_us,
)
from persona.store._consent import consent_from_row, consent_record

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["consent_snapshot", "person_lineage_fields"]

REASON: dict[str, NotUsedReason] = {"withdraw": "withdrawn", "decline": "declined"}

def consent_snapshot(db: Db, purpose: str) -> ConsentSnapshot:
    pid = db.purpose_id(purpose)
    counts = dict(
        db.con.execute(
            "SELECT action, count(*) FROM consent_state WHERE purpose_id = ? GROUP BY action",
            (pid,),
        ).fetchall()
    )
    return ConsentSnapshot(
        purpose=purpose,
        granted=counts.get("grant", 0),
        withdrawn=counts.get("withdraw", 0),
        declined=counts.get("decline", 0),
    )


def person_lineage_fields(
    db: Db,
    purpose: str,
    code: int | None,
    state: tuple[Any, ...] | None,
    rec: np.ndarray,
    now: datetime,
    excluded: np.ndarray | None = None,
) -> dict[str, Any]:
    """The fields of the person's :class:`PersonLineage` (all but its audit entry).
    ``state`` is the consent state row followed by its consent event's columns."""
    consent = None if state is None else consent_from_row(db, state[2:])
    active = consent is not None and consent.action == "grant"
    others: dict[int, tuple[str, int]] | None = None

    def other() -> dict[int, tuple[str, int]]:  # read only when a feature needs it
        nonlocal others
        if others is None:
            others = {}
            if code is not None:
                others = {
                    p: (a, q)
                    for p, a, q in db.con.execute(
                        "SELECT purpose_id, action, seq FROM consent_state "
                        "WHERE subject_id = ?",
                        (code,),
                    )
                }
        return others
    now_us = to_us(now)
    used: list[FeatureUsed] = []
    not_used: list[FeatureNotUsed] = []
    for name, (fid, spec) in sorted(db.features.items()):
        mine = rec[rec["feature"] == fid]
        if mine.size == 0:
            continue
        if not active:
            reason = "no_consent" if consent is None else REASON[consent.action]
            not_used.append(
                FeatureNotUsed(
                    feature=name,
                    category=spec.category,
                    reason=reason,
                    events=int(mine.size),
                    purpose=purpose,
                    since=None if consent is None else consent.at,
                )
            )
            continue
        if purpose not in spec.purposes:
            # the most telling consent choice about what this feature *may* serve
            choice = None
            for p in spec.purposes:
                entry = other().get(db.purposes[p][0])
                if entry is not None and entry[0] != "grant":
                    choice = consent_record(db, entry[1])
            not_used.append(
                FeatureNotUsed(
                    feature=name,
                    category=spec.category,
                    reason="not_allowed_for_purpose",
                    events=int(mine.size),
                    purpose=purpose,
                    choice=choice,
                )
            )
            continue
        if excluded is not None and code is not None:
            dropped = np.isin((np.int64(code) << 32) | mine["item"].astype(np.int64), excluded)
            if dropped.any():
                not_used.append(
                    FeatureNotUsed(
                        feature=name,
                        category=spec.category,
                        reason="excluded_by_person",
                        events=int(dropped.sum()),
                        purpose=purpose,
                    )
                )
                mine = mine[~dropped]
        days = spec.retention_days
        inside = mine if days is None else mine[mine["at"] >= now_us - days * DAY_US]
        if inside.size:
            used.append(
                FeatureUsed(
                    feature=name,
                    category=spec.category,
                    events=int(inside.size),
                    first_at=from_us(int(inside["at"].min())),
                    last_at=from_us(int(inside["at"].max())),
                )
            )
        if inside.size < mine.size:
            not_used.append(
                FeatureNotUsed(
                    feature=name,
                    category=spec.category,
                    reason="outside_retention",
                    events=int(mine.size - inside.size),
                    purpose=purpose,
                    retention_days=days,
                )
            )
    return {
        "store_id": db.store_id,
        "purpose": purpose,
        "purpose_description": db.purposes[purpose][1].description,
        "read_at": now,
        "consent": consent,
        "active": active,
        "used": tuple(used),
        "not_used": tuple(not_used),
        "rows": sum(u.events for u in used),
    }
