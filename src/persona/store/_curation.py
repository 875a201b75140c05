"""The merchandisers' curation of each purpose, held in the store so that every worker
serving the purpose applies the same one (issue 21).

Table ``curation``: one row per purpose, the latest curation only (``body``: its pins,
block set, reason and who, as JSON) and ``version``, the count of curations set on the
purpose. Each change is written in one transaction with its ``curation`` audit entry (the
detail of the ``app.curation`` entry ``Personalizer.curate`` wrote before the store held
curation, with the ``version`` and time added; a store-owned action, which
``store.record`` cannot forge), so the log keeps every earlier curation and
``store.audit.verify()`` checks the table against it (:mod:`._serving_rows`). Nothing in
it is about a person: item ids, a reason and a member of staff.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from persona.schema import Curation, check_curation

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["curation", "set_curation"]


def set_curation(
    db: Db, purpose: str, pin: Any, block: Any, reason: Any, by: Any,
) -> Curation:
    """Check, then replace ``purpose``'s curation and record it in the audit log."""
    pins, blocked, why = check_curation(pin, block, reason, by)
    with db.lock:
        db.refresh()
        db.purpose_id(purpose)
        with db.transaction():
            row = db.con.execute(
                "SELECT version FROM curation WHERE purpose = ?", (purpose,)).fetchone()
            version = 1 if row is None else int(row[0]) + 1
            at = db.now()
            body = {"pin": pins, "block": sorted(blocked), "reason": why, "by": by}
            stamp = at.isoformat()
            db.con.execute(
                "INSERT INTO curation(purpose, version, body, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(purpose) DO UPDATE SET version = excluded.version, "
                "body = excluded.body, at = excluded.at",
                (purpose, version, json.dumps(body, sort_keys=True), stamp),
            )
            db.audit.append(
                "curation", {**body, "purpose": purpose, "version": version, "at": stamp})
    return Curation(pin=pins, block=blocked, reason=why, by=by, at=at, version=version)


def curation(db: Db, purpose: str) -> Curation:
    """``purpose``'s curation now (an empty one, of version 0, when none was set)."""
    with db.lock:
        db.refresh()
        db.purpose_id(purpose)
        row = db.con.execute(
            "SELECT version, body, at FROM curation WHERE purpose = ?", (purpose,)
        ).fetchone()
    if row is None:
        return Curation()
    body = json.loads(row[1])
    return Curation(
        pin=body["pin"], block=frozenset(body["block"]), reason=body["reason"],
        by=body["by"], at=datetime.fromisoformat(row[2]), version=int(row[0]),
    )
