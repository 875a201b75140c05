"""Decoding raw event records into :class:`~persona.store.EventColumns`: for many people
or one person's many records with numpy, for one person's few records as Python tuples."""

from __future__ import annotations

import operator
import struct
from typing import TYPE_CHECKING

import numpy as np

from persona._columns import EventColumns
from persona.store._sql import (
    EVENT_DTYPE,
)
from persona.store._subjects import user_ids

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["decode", "no_events", "person_columns", "time_ordered", "time_ordered_tuples"]

_RECORD = struct.Struct("<ihhdqQ")  # EVENT_DTYPE's fields, as tuples
_RecordTuple = tuple[int, int, int, float, int, int]  # item, feature, member, value, at, eid
_AT = operator.itemgetter(4)  # a record tuple's time

def person_columns(
    db: Db,
    records: list[_RecordTuple],
    cutoff: np.ndarray,
    local: np.ndarray,
    features: tuple[str, ...],
    user: str,
    excluded: np.ndarray | None,
) -> EventColumns:
    """What :func:`decode` gives for one person's records (tuples as
    :func:`time_ordered_tuples` gives them), through Python lists: for a few dozen events
    that costs less than the twenty-odd numpy calls of the bulk decoder, each with its
    own set-up (they took about a quarter of a history read *(one-off)*)."""
    cut, loc = cutoff.tolist(), local.tolist()
    known = len(cut)
    skip = set() if excluded is None else {k & 0xFFFFFFFF for k in excluded.tolist()}
    keep = [r for r in records if r[1] < known and r[4] >= cut[r[1]] and r[0] not in skip]
    if not keep:
        return no_events(features)
    codes = sorted({r[0] for r in keep})
    if codes[-1] >= db.item_table.size:
        db.sync_items()
    where = {c: i for i, c in enumerate(codes)}
    return EventColumns(
        users=np.array([user], dtype=object),
        items=db.item_table[codes],
        features=features,
        user=np.zeros(len(keep), dtype=np.int32),
        item=np.array([where[r[0]] for r in keep], dtype=np.int32),
        feature=np.array([loc[r[1]] for r in keep], dtype=np.int16),
        value=np.array([r[3] for r in keep], dtype=np.float64),
        at=np.array([r[4] for r in keep], dtype=np.int64).view("datetime64[us]"),
    )


def decode(
    db: Db,
    rec: np.ndarray,
    subj: np.ndarray,
    cutoff: np.ndarray,
    local: np.ndarray,
    features: tuple[str, ...],
    user: str | None = None,
    excluded: np.ndarray | None = None,
) -> EventColumns:
    if rec.size:
        fcode = rec["feature"].astype(np.intp)
        in_range = fcode < cutoff.size
        fcode_safe = np.where(in_range, fcode, 0)
        mask = in_range & (rec["at"] >= cutoff[fcode_safe])
        if excluded is not None:
            keys = (subj << 32) | rec["item"].astype(np.int64)
            mask &= ~np.isin(keys, excluded)
        if not mask.all():
            rec, subj, fcode_safe = rec[mask], subj[mask], fcode_safe[mask]
    else:
        fcode_safe = np.zeros(0, dtype=np.intp)
    item_codes, item_idx = np.unique(rec["item"], return_inverse=True)
    if user is not None:  # one person's many records: no need to sort their codes
        user_idx = np.zeros(rec.size, dtype=np.intp)
        users = np.array([user] if rec.size else [], dtype=object)
    else:
        user_codes, user_idx = np.unique(subj, return_inverse=True)
        users = user_ids(db, user_codes)
    if item_codes.size and int(item_codes[-1]) >= db.item_table.size:
        db.sync_items()
    items = db.item_table[item_codes]
    return EventColumns(
        users=users,
        items=items,
        features=features,
        user=user_idx.astype(np.int32),
        item=item_idx.astype(np.int32),
        feature=local[fcode_safe].astype(np.int16),
        value=rec["value"].copy(),
        at=rec["at"].astype("datetime64[us]"),
    )


def time_ordered(blob: bytes, parts: int) -> np.ndarray:
    """Records from :func:`persona.store._reads.person_blob`, oldest first (a stable sort
    by time)."""
    rec = np.frombuffer(blob, dtype=EVENT_DTYPE)
    return rec[np.argsort(rec["at"], kind="stable")] if parts > 1 else rec


def time_ordered_tuples(blob: bytes, parts: int) -> list[_RecordTuple]:
    """:func:`time_ordered` as tuples of :data:`EVENT_DTYPE`'s fields."""
    records = list(_RECORD.iter_unpack(blob))
    if parts > 1:
        records.sort(key=_AT)
    return records


def no_events(features: tuple[str, ...]) -> EventColumns:
    """Empty event columns for ``features``."""
    return EventColumns(
        users=np.array([], dtype=object),
        items=np.array([], dtype=object),
        features=features,
        user=np.zeros(0, dtype=np.int32),
        item=np.zeros(0, dtype=np.int32),
        feature=np.zeros(0, dtype=np.int16),
        value=np.zeros(0),
        at=np.zeros(0, dtype="datetime64[us]"),
    )
