"""The builders of :class:`~persona.data.Interactions` (the bodies of ``from_pandas`` and
``from_view``): events as codes, weighted, decayed, summed per person and item into a
canonical CSR matrix with the latest time per pair, then rescaled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from persona._columns import EventColumns
from persona._times import check_unit, check_zone, pandas_times_us
from persona.data._convert import as_time, factorize, id_codes, id_list, unique_ids
from persona.data._scaling import Scaling, check_scaling
from persona.errors import ValidationError

if TYPE_CHECKING:
    from persona.data._interactions import Interactions

__all__ = ["from_codes", "from_frame", "from_view"]


def from_frame(
    cls: type[Interactions],
    df: Any,
    *,
    user: str,
    item: str,
    value: str | None,
    at: str | None,
    feature: str | None,
    weights: Mapping[str, float] | None,
    scaling: Scaling,
    half_life: timedelta | None,
    now: datetime | np.datetime64 | None,
    lineage: Any,
    items: Sequence[str] | None,
    at_unit: Literal["s", "ms", "us", "ns"] | None,
    tz: str | tzinfo | None,
) -> Interactions:
    """:meth:`Interactions.from_pandas <persona.data.Interactions.from_pandas>`."""
    unit = None if at_unit is None else check_unit(at_unit)
    zone = None if tz is None else check_zone(tz)
    if at is None and (unit is not None or zone is not None):
        raise ValidationError(
            f"{'at_unit' if unit is not None else 'tz'} says how to read event times, but "
            "no time column is given; pass at=<the column of times>"
        )
    missing = [c for c in (user, item, value, at, feature) if c is not None and c not in df]
    if missing:
        raise ValidationError(
            f"column(s) {missing} not in the frame; it has {list(df.columns)}"
        )
    if df[user].isna().any() or df[item].isna().any():
        raise ValidationError(
            "some events have no person or item id (e.g. guest checkouts); "
            "drop those rows first, e.g. df.dropna(subset=[user, item])"
        )
    u_codes, users = id_codes(df[user], user)
    i_codes, seen = id_codes(df[item], item)
    catalogue = None
    if items is not None:
        catalogue = unique_ids(id_list(items, "items"), "items")
        col = {name: k for k, name in enumerate(catalogue.tolist())}
        used = seen[np.unique(i_codes)].tolist()  # (a categorical's unused are no events)
        missing_items = [i for i in used if i not in col]
        if missing_items:
            raise ValidationError(
                f"{len(missing_items)} item(s) of the events are not in 'items' (e.g. "
                f"{missing_items[0]!r}); add them to the catalogue or drop their events"
            )
        i_codes = np.fromiter((col.get(i, -1) for i in seen.tolist()), np.int64,
                              len(seen))[i_codes]
        seen = catalogue
    n = len(df)
    vals = (
        np.ones(n) if value is None else np.asarray(df[value].to_numpy(), dtype=np.float64)
    )
    times = None if at is None else pandas_times_us(df[at], at, unit, zone)
    if feature is not None:
        f_codes, features = factorize(df[feature].astype(str).to_numpy())
    else:
        f_codes, features = np.zeros(n, dtype=np.int64), np.array(["event"], dtype=object)
        if weights is not None:
            raise ValidationError("'weights' needs a 'feature' column to apply to")
    return from_codes(
        cls, u_codes, i_codes, f_codes, vals, times, users, seen, tuple(features),
        weights=weights, scaling=scaling, half_life=half_life, now=now, lineage=lineage,
        catalogue=catalogue,
    )


def from_view(
    cls: type[Interactions],
    view: Any,
    weights: Mapping[str, float] | None,
    *,
    scaling: Scaling,
    half_life: timedelta | None,
    now: datetime | np.datetime64 | None,
) -> Interactions:
    """:meth:`Interactions.from_view <persona.data.Interactions.from_view>`."""
    declared = getattr(view, "catalogue", None)
    catalogue = None if declared is None else list(declared())
    cols = view.events()
    if not isinstance(cols, EventColumns):
        raise ValidationError(
            f"view.events() returned {type(cols).__name__}, expected EventColumns"
        )
    item_codes = np.asarray(cols.item, dtype=np.int64)
    items = np.asarray(cols.items, dtype=object)
    if catalogue:
        col = {name: k for k, name in enumerate(catalogue)}
        extra = [i for i in items.tolist() if i not in col]
        for name in extra:
            col[name] = len(col)
        remap = np.fromiter(map(col.__getitem__, items.tolist()), np.int64, len(items))
        item_codes = remap[item_codes]
        items = np.asarray(catalogue + extra, dtype=object)
    return from_codes(
        cls,
        np.asarray(cols.user, dtype=np.int64),
        item_codes,
        np.asarray(cols.feature, dtype=np.int64),
        np.asarray(cols.value, dtype=np.float64),
        np.asarray(cols.at, dtype="datetime64[us]"),
        np.asarray(cols.users, dtype=object),
        items,
        tuple(cols.features),
        weights=weights, scaling=scaling, half_life=half_life, now=now,
        lineage=getattr(view, "lineage", None),
        catalogue=catalogue or None,
        ledger=getattr(view, "privacy_ledger", None),
    )


def from_codes(
    cls: type[Interactions],
    u: np.ndarray,
    i: np.ndarray,
    f: np.ndarray,
    value: np.ndarray,
    at: np.ndarray | None,
    users: np.ndarray,
    items: np.ndarray,
    features: tuple[str, ...],
    *,
    weights: Mapping[str, float] | None,
    scaling: Scaling,
    half_life: timedelta | None,
    now: datetime | np.datetime64 | None,
    lineage: Any,
    catalogue: Sequence[str] | np.ndarray | None = None,
    ledger: Any = None,
) -> Interactions:
    """An :class:`~persona.data.Interactions` from events as codes (``u``, ``i``, ``f`` index
    ``users``, ``items``, ``features``): weighted, decayed, summed per pair, rescaled."""
    check_scaling(scaling)
    if not np.all(np.isfinite(value)):
        bad = int(np.flatnonzero(~np.isfinite(value))[0])
        raise ValidationError(
            f"event {bad} has a non-finite value; drop it or give it a number",
            errors=[{"row": bad, "field": "value", "message": "not finite",
                     "input": float(value[bad])}],
        )
    if value.size and value.min() < 0:
        bad = int(np.flatnonzero(value < 0)[0])
        raise ValidationError(
            f"event {bad} has a negative value ({value[bad]}); confidences must be >= 0 "
            "(model returns and cancellations by removing the original events)",
            errors=[{"row": bad, "field": "value", "message": "negative",
                     "input": float(value[bad])}],
        )
    # feature weights
    if weights is None:
        w = np.ones(len(features))
        used = features
    else:
        for name, wt in weights.items():
            if not np.isfinite(wt) or wt < 0:
                raise ValidationError(f"weight of {name!r} must be finite and >= 0, not {wt}")
        w = np.array([float(weights.get(name, 0.0)) for name in features])
        used = tuple(name for name in features if weights.get(name, 0.0) > 0)
    conf = value * w[f] if len(features) else value
    preprocessing: dict[str, Any] = {"scaling": scaling}
    if half_life is not None:
        if not isinstance(half_life, timedelta):
            raise ValidationError(
                f"half_life must be a datetime.timedelta, not {type(half_life).__name__}"
            )
        if at is None:
            raise ValidationError("half_life needs event times; pass 'at'")
        seconds = half_life.total_seconds()
        if seconds <= 0:
            raise ValidationError("half_life must be positive")
        preprocessing["half_life_s"] = seconds
        preprocessing["now"] = "latest event" if now is None else "given"
        ref = at.max() if now is None else as_time(now)
        age = (ref - at).astype("timedelta64[us]").astype(np.float64) / 1e6
        conf = conf * np.power(0.5, np.maximum(age, 0.0) / seconds)
    keep = conf > 0
    u, i, conf = u[keep], i[keep], conf[keep]
    if at is not None:
        at = at[keep]
    # canonical CSR with duplicates summed and the latest time per pair
    order = np.lexsort((i, u))
    u, i, conf = u[order], i[order], conf[order]
    n_users, n_items = len(users), len(items)
    if u.size:
        key = u * n_items + i
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        data = np.add.reduceat(conf, starts)
        cols = i[starts]
        rows = u[starts]
        last = None if at is None else np.maximum.reduceat(at[order].view(np.int64), starts)
    else:
        data, cols, rows, last = conf, i, u, (None if at is None else at.view(np.int64))
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    m = sp.csr_matrix((data, cols.astype(np.int32), indptr), shape=(n_users, n_items))
    m.has_canonical_format = True
    X = cls(
        m, users, items,
        at=None if last is None else last.view("datetime64[us]"),
        lineage=lineage, features=used, catalogue=catalogue,
        preprocessing=preprocessing, ledger=ledger,
    )
    return X._rescaled(scaling)
