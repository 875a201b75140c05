"""The model registry: every published version of a purpose's model, which one is live,
and the cheap check by which serving workers notice a change (issue 21).

Table ``model_versions``: one row per published version (the folder a Personalizer saved,
the checksum of its ``personalizer.json``, the model class, when), never changed
afterwards. Table ``live_model``: per purpose, the version every worker serves and
``changes``, the count of changes of the live version (a publish, a rollback, a roll
forward). Each change is written in one transaction with its audit entry
(``model_publish``, ``model_live``), against which ``store.audit.verify()`` checks the
tables (:mod:`._serving_rows`). No person's data is in either table.

:func:`serving_versions` reads the curation's version and ``changes`` in one small
``SELECT``, without a transaction of its own or an audit entry: what a worker runs every
``refresh_every`` seconds. (SQLite's ``PRAGMA data_version`` would not do: every served
request commits audit entries, so it changes all the time.)
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from persona.errors import ValidationError
from persona.schema import ModelVersion, check_version
from persona.store._common import check_utf8

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["live_model", "model_versions", "publish", "serving_versions", "set_live"]

_ROWS = (
    "SELECT v.version, v.folder, v.sha256, v.model_class, v.at, l.version IS NOT NULL "
    "FROM model_versions v LEFT JOIN live_model l "
    "ON l.purpose = v.purpose AND l.version = v.version WHERE v.purpose = ?"
)
_VERSIONS = (
    "SELECT (SELECT version FROM curation WHERE purpose = ?), "
    "(SELECT changes FROM live_model WHERE purpose = ?)"
)


def _row(purpose: str, row: tuple[Any, ...]) -> ModelVersion:
    return ModelVersion(
        purpose=purpose, version=row[0], folder=row[1], sha256=row[2], model_class=row[3],
        published_at=datetime.fromisoformat(row[4]), live=bool(row[5]),
    )


def _check_text(value: Any, field: str, example: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"field {field!r}: give a non-empty str, not {value!r}; e.g. {field}={example}",
            errors=[{"row": None, "field": field, "message": "not a str"}],
        )
    return value


def publish(
    db: Db, purpose: str, version: Any, folder: Any, sha256: Any, model_class: Any,
) -> ModelVersion:
    """Register a saved folder as ``purpose``'s new version and make it live."""
    version = check_version(version)
    name = os.fspath(folder) if isinstance(folder, str | os.PathLike) else None
    if not isinstance(name, str) or not name:
        raise ValidationError(
            f"field 'folder': give the saved folder's path (a str), not {folder!r}",
            errors=[{"row": None, "field": "folder", "message": "not a path"}],
        )
    path = os.path.abspath(name)
    sha256 = _check_text(sha256, "sha256", "manifest['sha256']")
    model_class = _check_text(model_class, "model_class", "'ALS'")
    for field, text in (("version", version), ("folder", path), ("sha256", sha256),
                        ("model_class", model_class)):
        check_utf8(text, field)
    with db.lock:
        db.refresh()
        db.purpose_id(purpose)
        with db.transaction():
            con = db.con
            known = con.execute(
                "SELECT folder FROM model_versions WHERE purpose = ? AND version = ?",
                (purpose, version),
            ).fetchone()
            if known is not None:
                raise ValidationError(
                    f"version {version} of {purpose!r} is already published (in "
                    f"{known[0]}); make it live again with store.set_live_model("
                    f"{purpose!r}, {version!r}), or fit anew to publish a new version",
                    errors=[{"row": None, "field": "version", "message": "published"}],
                )
            at = db.now().isoformat()
            con.execute(
                "INSERT INTO model_versions(purpose, version, folder, sha256, model_class, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (purpose, version, path, sha256, model_class, at),
            )
            db.audit.append("model_publish", {
                "purpose": purpose, "version": version, "folder": path, "sha256": sha256,
                "model_class": model_class, "at": at,
            })
            _make_live(db, purpose, version, at)
            row = con.execute(_ROWS + " AND v.version = ?", (purpose, version)).fetchone()
    return _row(purpose, row)


def _make_live(db: Db, purpose: str, version: str, at: str) -> None:
    """Make ``version`` live, in the caller's transaction, with its audit entry."""
    row = db.con.execute(
        "SELECT changes FROM live_model WHERE purpose = ?", (purpose,)).fetchone()
    changes = 1 if row is None else int(row[0]) + 1
    db.con.execute(
        "INSERT INTO live_model(purpose, version, changes, at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(purpose) DO UPDATE SET version = excluded.version, "
        "changes = excluded.changes, at = excluded.at",
        (purpose, version, changes, at),
    )
    db.audit.append("model_live", {"purpose": purpose, "version": version,
                                   "changes": changes})


def set_live(db: Db, purpose: str, version: Any) -> ModelVersion:
    """Make a published version of ``purpose`` live (a rollback or a roll forward)."""
    with db.lock:
        db.refresh()
        db.purpose_id(purpose)
        version = check_version(version)
        check_utf8(version, "version")
        with db.transaction():
            row = db.con.execute(_ROWS + " AND v.version = ?", (purpose, version)).fetchone()
            if row is None:
                known = [r[0] for r in db.con.execute(
                    "SELECT version FROM model_versions WHERE purpose = ? ORDER BY seq DESC "
                    "LIMIT 5", (purpose,))]
                raise ValidationError(
                    f"version {version!r} of {purpose!r} was never published (the latest: "
                    f"{', '.join(known) or 'none yet'}); choose one of "
                    f"store.model_versions({purpose!r}), or publish one with "
                    "p.publish(folder)",
                    errors=[{"row": None, "field": "version", "message": "unknown version"}],
                )
            _make_live(db, purpose, version, db.now().isoformat())
            row = db.con.execute(_ROWS + " AND v.version = ?", (purpose, version)).fetchone()
    return _row(purpose, row)


def model_versions(db: Db, purpose: str) -> list[ModelVersion]:
    """Every published version of ``purpose``'s model, oldest first."""
    with db.lock:
        db.refresh()
        db.purpose_id(purpose)
        rows = db.con.execute(_ROWS + " ORDER BY v.seq", (purpose,)).fetchall()
    return [_row(purpose, r) for r in rows]


def live_model(db: Db, purpose: str) -> ModelVersion | None:
    """The live version of ``purpose``'s model, or ``None`` when none was published."""
    with db.lock:
        db.refresh()
        db.purpose_id(purpose)
        row = db.con.execute(_ROWS + " AND l.version IS NOT NULL", (purpose,)).fetchone()
    return None if row is None else _row(purpose, row)


def serving_versions(db: Db, purpose: str) -> tuple[int, int]:
    """``(curation version, live-model changes)`` of ``purpose``, 0 for none yet: one
    small read, no write (see the module docstring)."""
    with db.lock:
        db.check_open()
        if purpose not in db.purposes:  # (defined meanwhile by another process?)
            db.refresh()
            db.purpose_id(purpose)
        row = db.con.execute(_VERSIONS, (purpose, purpose)).fetchone()
    return int(row[0] or 0), int(row[1] or 0)
