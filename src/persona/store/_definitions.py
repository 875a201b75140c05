"""Definitions: purposes and features (with their retention), and what reads take from
them per feature code (:func:`feature_plan`), kept until the definitions change."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from persona.errors import (
    ValidationError,
)
from persona.schema import (
    FeatureSpec,
    FeatureUse,
    PurposeSpec,
)
from persona.store._common import (
    DAY_US,
    as_tuple,
    validated,
)

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = [
    "cutoffs",
    "define",
    "define_feature",
    "define_purpose",
    "feature_plan",
    "feature_specs",
    "feature_uses",
    "purpose_specs",
]

_INT64_MAX = np.iinfo(np.int64).max

def purpose_specs(db: Db) -> dict[str, PurposeSpec]:
    """Defined purposes by name (``Store.purposes``)."""
    with db.lock:
        db.refresh()
        return {name: spec for name, (_, spec) in db.purposes.items()}


def feature_specs(db: Db) -> dict[str, FeatureSpec]:
    """Defined features by name (``Store.features``)."""
    with db.lock:
        db.refresh()
        return db.feature_specs()


def define_purpose(
    db: Db,
    name: str,
    *,
    description: str,
    sharing: bool = False,
    tcf_purposes: Iterable[int] = (),
    consent_mode: Iterable[str] = (),
) -> None:
    """Define (or update) a purpose people can consent to."""
    spec = validated(
        PurposeSpec,
        name=name,
        description=description,
        sharing=sharing,
        tcf_purposes=as_tuple(tcf_purposes, "tcf_purposes", "[1, 3]"),
        consent_mode=as_tuple(consent_mode, "consent_mode", "['ad_user_data']"),
    )
    define(db, "purposes", "purpose", spec)


def define_feature(
    db: Db,
    name: str,
    *,
    purposes: Iterable[str],
    category: str,
    retention_days: int | None,
    description: str = "",
    max_value: float | None = None,
) -> None:
    """Define (or update) a feature and the purposes it may serve."""
    if isinstance(purposes, str | bytes) or not isinstance(purposes, Iterable):
        raise ValidationError(
            f"field 'purposes': give a list of purpose names, not a "
            f"{type(purposes).__name__}; e.g. purposes=['personalization']",
            errors=[{"row": None, "field": "purposes", "message": "not a list"}],
        )
    spec = validated(
        FeatureSpec,
        name=name,
        purposes=tuple(purposes),
        category=category,
        retention_days=retention_days,
        description=description,
        max_value=max_value,
    )
    with db.lock:
        db.refresh()
        for p in spec.purposes:
            db.purpose_id(p)
        define(db, "features", "feature", spec)


def define(db: Db, table: str, kind: str, spec: PurposeSpec | FeatureSpec) -> None:
    with db.lock:
        db.check_open()
        with db.transaction():
            row = db.con.execute(
                f"SELECT spec FROM {table} WHERE name = ?", (spec.name,)
            ).fetchone()
            if row is not None:
                old = type(spec).model_validate_json(row[0])
                if old.model_copy(update={"created_at": None}) == spec:
                    return
                spec = spec.model_copy(update={"created_at": old.created_at})
                db.con.execute(
                    f"UPDATE {table} SET spec = ? WHERE name = ?",
                    (spec.model_dump_json(), spec.name),
                )
                action = f"redefine_{kind}"
            else:
                spec = spec.model_copy(update={"created_at": db.now()})
                db.con.execute(
                    f"INSERT INTO {table}(name, spec) VALUES (?, ?)",
                    (spec.name, spec.model_dump_json()),
                )
                action = f"define_{kind}"
            db.bump("defs_version")
            db.audit.append(action, spec.model_dump(mode="json"))
        db.refresh()


def feature_plan(
    db: Db, purpose: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]:
    """What reads for ``purpose`` (None: every purpose) take from the definitions, per
    feature code: its column in the result (-1: not allowed), whether it is kept for a
    time, the offset from now of its oldest readable time if so, its fixed bound
    otherwise; and the allowed features' names. Kept until the definitions change."""
    plan = db.plans.get(purpose)
    if plan is None:
        size = max((fid for fid, _ in db.features.values()), default=0) + 1
        allowed = tuple(
            name
            for name, (_, spec) in sorted(db.features.items())
            if purpose is None or purpose in spec.purposes
        )
        local = np.full(size, -1, dtype=np.int16)
        timed = np.zeros(size, dtype=bool)
        offset = np.zeros(size, dtype=np.int64)
        fixed = np.full(size, _INT64_MAX, dtype=np.int64)  # not allowed: never readable
        for i, name in enumerate(allowed):
            fid, spec = db.features[name]
            local[fid] = i
            if spec.retention_days is None:
                fixed[fid] = np.iinfo(np.int64).min
            else:
                timed[fid] = True
                offset[fid] = -spec.retention_days * DAY_US
        for arr in (local, timed, offset, fixed):
            arr.setflags(write=False)
        plan = db.plans[purpose] = (local, timed, offset, fixed, allowed)
    return plan


def cutoffs(db: Db, purpose: str | None, now_us: int) -> np.ndarray:
    """Per feature code: the oldest time readable (INT64_MAX where not allowed)."""
    _, timed, offset, fixed, _ = feature_plan(db, purpose)
    return np.where(timed, offset + now_us, fixed)


def feature_uses(db: Db, purpose: str) -> tuple[FeatureUse, ...]:
    uses = []
    for name, (_, spec) in sorted(db.features.items()):
        allowed = purpose in spec.purposes
        reason = (
            f"allowed for {purpose}"
            if allowed
            else f"not allowed for {purpose} (allowed for {', '.join(spec.purposes)})"
        )
        if allowed and spec.retention_days is not None:
            reason += f"; only the last {spec.retention_days} days"
        uses.append(
            FeatureUse(
                feature=name,
                category=spec.category,
                used=allowed,
                reason=reason,
                retention_days=spec.retention_days,
            )
        )
    return tuple(uses)
