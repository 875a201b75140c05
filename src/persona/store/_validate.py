"""Validation of event batches at the edge.

A batch is validated column by column with pydantic (its Rust core checks a million values
per second), then the store's own rules (defined features, no future times) are checked with
numpy. Every problem is reported with its row and field; nothing is written unless the whole
batch passes (or, with ``on_invalid="skip"``, the bad rows are left out and counted).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from operator import itemgetter
from typing import Any

import numpy as np
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from persona._times import numbers_error
from persona.errors import ValidationError
from persona.schema import (
    EVENT_FIELDS,
    EVENT_FIXES,
    MAX_EVENT_VALUE,
    MAX_FUTURE_US,
    REQUIRED_EVENT_FIELDS,
    EventBatch,
    EventBatchWithId,
    TimedEventBatch,
    TimedEventBatchWithId,
    check_id,
    check_ids,
)
from persona.store._event_times import (
    _MISSING,
    _as_float,
    _in_zone,
    _is_int,
    _is_number,
    _numbers_us,
    _problem,
    _refuse_numeric_text,
    _times_us,
    _utc_strings_us,
)

FIELDS, REQUIRED, FIX = EVENT_FIELDS, REQUIRED_EVENT_FIELDS, EVENT_FIXES
MAX_VALUE = MAX_EVENT_VALUE

# (has an id column, times still to validate) -> adapter; times that are plain UTC strings
# are validated and converted by _utc_strings_us instead of pydantic
_ADAPTERS: dict[tuple[bool, bool], TypeAdapter[Any]] = {
    (False, True): TypeAdapter(TimedEventBatch),
    (True, True): TypeAdapter(TimedEventBatchWithId),
    (False, False): TypeAdapter(EventBatch),
    (True, False): TypeAdapter(EventBatchWithId),
}


@dataclass
class Batch:
    """The valid rows of a batch, as columns. ``rows`` are their positions in the input."""

    user: list[str]
    item: list[str]
    feature: list[str]
    value: np.ndarray
    at_us: np.ndarray
    event_id: list[str | None] | None
    rows: np.ndarray
    n: int


def _columns_from_records(
    records: Iterable[Mapping[str, Any]], problems: list[dict[str, Any]]
) -> dict[str, Any]:
    rows = records if isinstance(records, list | tuple) else list(records)
    allowed = set(FIELDS)
    if rows and set(map(type, rows)) == {dict}:
        # fastest path: every row has exactly the keys of the first (same count, and each
        # of the first row's keys found in every row), all of them known fields
        first = rows[0]
        if set(map(len, rows)) == {len(first)} and allowed.issuperset(first):
            try:
                cols = {name: list(map(itemgetter(name), rows)) for name in FIELDS if name in first}
            except KeyError:
                pass
            else:
                for name in REQUIRED:
                    cols.setdefault(name, [_MISSING] * len(rows))
                cols.setdefault("value", [1.0] * len(rows))
                return cols
    if set(map(type, rows)) == {dict}:
        keysets = set(map(frozenset, rows))
        if all(k <= allowed for k in keysets):
            # fast path: plain dicts with known fields, columns pulled out in C
            everywhere = frozenset.intersection(*keysets) if keysets else frozenset()
            cols = {}
            for name in FIELDS:
                if name in everywhere:
                    cols[name] = list(map(itemgetter(name), rows))
                elif any(name in k for k in keysets):
                    cols[name] = [r.get(name, _MISSING) for r in rows]
                elif name == "value":
                    cols[name] = [1.0] * len(rows)
                elif name != "id":
                    cols[name] = [_MISSING] * len(rows)
            if "value" in cols and "value" not in everywhere:
                cols["value"] = [1.0 if v is _MISSING else v for v in cols["value"]]
            return cols
    good: list[Mapping[str, Any]] = []
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            problems.append(
                _problem(i, "*", f"each event must be a dict, got {type(r).__name__}", r)
            )
            good.append({})
        elif not allowed.issuperset(r):
            extra = sorted(map(str, set(r) - allowed))
            problems.append(
                _problem(i, extra[0], f"unknown field(s) {extra}; allowed: {list(FIELDS)}")
            )
            good.append({})
        else:
            good.append(r)
    cols = {name: [r.get(name, _MISSING) for r in good] for name in FIELDS}
    if all(v is _MISSING for v in cols["id"]):
        del cols["id"]
    cols["value"] = [1.0 if v is _MISSING else v for v in cols["value"]]
    return cols


def _columns_from_frame(df: Any, problems: list[dict[str, Any]],
                        tz: tzinfo | None = None) -> dict[str, Any]:
    names = [str(c) for c in df.columns]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise ValidationError(
            f"column(s) {twice} appear more than once; keep one of each "
            "(df.loc[:, ~df.columns.duplicated()]) and ingest again; nothing was stored.",
            errors=[_problem(None, twice[0], "duplicated column")],
        )
    extra = [str(c) for c in df.columns if c not in FIELDS]
    if extra:
        raise ValidationError(
            f"unknown column(s) {extra}; allowed: {list(FIELDS)}. Rename or drop them "
            "(df.rename(columns={...})) and ingest again; nothing was stored.",
            errors=[_problem(None, extra[0], "unknown column")],
        )
    n = len(df)
    cols: dict[str, Any] = {}
    for name in FIELDS:
        if name not in df.columns:
            if name == "value":
                cols[name] = [1.0] * n
            elif name in REQUIRED:
                cols[name] = [_MISSING] * n
            continue
        series = df[name]
        dtype = str(series.dtype)
        if name == "at" and dtype.startswith("datetime64["):
            if "UTC" not in dtype and "," not in dtype and tz is not None:
                try:
                    series = series.dt.tz_localize(tz, ambiguous="raise",
                                                   nonexistent="raise")
                except (ValueError, TypeError) as exc:  # a wall time a DST change skips
                    raise ValidationError(
                        f"some naive times name no single instant in {tz} ({exc}); give "
                        "them with an offset, or convert them yourself (pandas: "
                        ".dt.tz_localize(tz, ambiguous=..., nonexistent=...)); nothing was "
                        "stored.", errors=[_problem(None, "at", "ambiguous time")],
                    ) from None
                cols[name] = series
            elif "UTC" not in dtype and "," not in dtype:
                problems.extend(_problem(i, "at", "time has no time zone") for i in range(n))
                cols[name] = [_MISSING] * n
            else:
                cols[name] = series  # timezone-aware: converted without Python objects
            continue
        if name in ("user", "item", "id") and getattr(series.dtype, "kind", "O") in "iu":
            series = series.astype(str)  # integer ids are their decimal strings, in C
        values = series.tolist()
        if name != "value":
            values = [_MISSING if _is_null(v) else v for v in values]
        cols[name] = values
    return cols


def _is_null(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v) in ("NaT", "<NA>")


def validate_batch(
    events: Any,
    *,
    now_us: int,
    features: Mapping[str, int],
    max_values: Mapping[str, float] | None = None,
    at_unit: str | None = None,
    tz: tzinfo | None = None,
) -> tuple[Batch, list[dict[str, Any]]]:
    """Validate ``events`` (a list of dicts, or a pandas DataFrame).

    ``max_values`` are the features' own bounds on values, where lower than
    :data:`MAX_VALUE`. ``at_unit`` (checked by the caller) reads numeric times, ``tz``
    naive ones, by persona's time rule (:mod:`persona._times`).

    Returns the valid rows as a :class:`Batch` and every problem found, each naming its row
    and field. The caller decides whether problems reject the whole batch.
    """
    problems: list[dict[str, Any]] = []
    if hasattr(events, "columns") and hasattr(events, "dtypes"):
        cols = _columns_from_frame(events, problems, tz)
    elif isinstance(events, Mapping | str | bytes) or not isinstance(events, Iterable):
        raise ValidationError(
            "ingest takes a list of events (dicts) or a pandas DataFrame, not a single "
            f"{type(events).__name__}; wrap one event in a list: store.ingest([event])",
            errors=[_problem(None, "*", "not a list of events")],
        )
    else:
        cols = _columns_from_records(events, problems)
    n = len(cols["value"])
    bad = np.zeros(n, dtype=bool)
    for p in problems:
        bad[p["row"]] = True
    for name in REQUIRED:
        col = cols[name]
        if isinstance(col, list) and _MISSING in col:
            for i, v in enumerate(col):
                if v is _MISSING and not bad[i]:
                    problems.append(_problem(i, name, f"'{name}' is missing"))
                    bad[i] = True

    at_series = None if isinstance(cols["at"], list) else cols["at"]
    if at_series is not None and at_unit is not None:
        raise ValidationError(
            f"at_unit={at_unit!r} is for numeric times, but the 'at' column holds "
            f"{at_series.dtype}; leave at_unit out (datetimes name their instant)",
            errors=[_problem(None, "at_unit", "not numeric times")],
        )
    fast_at = None
    if at_series is None and at_unit is not None:
        fast_at = _numbers_us(cols["at"], at_unit, bad, problems)
    elif at_series is None:
        if tz is not None:
            cols["at"] = _in_zone(cols["at"], tz, bad, problems)
        if not set(map(type, cols["at"])) <= {str, datetime, type(_MISSING)}:
            numbers = [_as_float(v) for v in cols["at"] if _is_number(v)]
            for i, v in enumerate(cols["at"]):
                if not bad[i] and not isinstance(v, str | datetime):
                    message = (
                        numbers_error("the time", np.array(numbers), v)
                        if _is_number(v)
                        else f"expected a time, got {type(v).__name__}"
                    )
                    problems.append(_problem(i, "at", message, v))
                    bad[i] = True
    if at_series is not None:
        null = at_series.isna().to_numpy()
        for i in np.flatnonzero(null & ~bad).tolist():
            problems.append(_problem(i, "at", "'at' is missing"))
        bad |= null
    if fast_at is None and at_series is None:
        fast_at = _utc_strings_us(cols["at"])
        if fast_at is None:  # pydantic reads these; it would take text like "1780000000"
            _refuse_numeric_text(cols["at"], bad, problems)  # as a time in a guessed unit
    names = [k for k in cols if k != "at" or (at_series is None and fast_at is None)]
    if "id" in names:  # an int event id is its decimal string (the id rule), a bool is not
        cols["id"] = [None if v is _MISSING else str(v) if _is_int(v) else v
                      for v in cols["id"]]
    adapter = _ADAPTERS["id" in names, "at" in names]

    parsed: dict[str, Any] | None = None
    while parsed is None:
        idx = np.flatnonzero(~bad)
        if idx.size == n:
            payload = {k: cols[k] for k in names}
        else:
            payload = {k: [cols[k][i] for i in idx.tolist()] for k in names}
        try:
            parsed = adapter.validate_python(payload)
        except PydanticValidationError as exc:
            before = bad.copy()
            for err in exc.errors(include_url=False):
                loc = err["loc"]
                if len(loc) < 2:  # pragma: no cover - the payload shape is ours
                    raise
                row = int(idx[int(loc[1])])
                if not before[row]:
                    problems.append(_problem(row, str(loc[0]), err["msg"], err.get("input")))
                    bad[row] = True

    if fast_at is not None:
        at_us = fast_at if idx.size == n else fast_at[idx]
    elif at_series is None:
        raw_at = cols["at"] if idx.size == n else [cols["at"][i] for i in idx.tolist()]
        at_us = _times_us(parsed["at"], raw_at)
    else:
        at_us = _times_us(at_series)[idx]
    post_bad = np.zeros(idx.size, dtype=bool)
    for j in np.flatnonzero(at_us > now_us + MAX_FUTURE_US).tolist():
        problems.append(_problem(int(idx[j]), "at", "time is in the future"))
        post_bad[j] = True
    unknown_features = set(parsed["feature"]).difference(features)
    for j, f in enumerate(parsed["feature"] if unknown_features else ()):
        if f in unknown_features:
            problems.append(_problem(int(idx[j]), "feature", f"unknown feature {f!r}", f))
            post_bad[j] = True
    bounded = {f: b for f, b in (max_values or {}).items() if b < MAX_VALUE}
    if bounded:
        value = np.asarray(parsed["value"], dtype=np.float64)
        for f, bound in bounded.items():
            over = (value > bound) & ~post_bad  # rare: the features are compared only then
            if over.any():
                over &= np.asarray(parsed["feature"], dtype=object) == f
            for j in np.flatnonzero(over).tolist():
                problems.append(_problem(
                    int(idx[j]), "value",
                    f"above the largest value {bound:g} of feature {f!r} (its max_value)",
                    float(value[j]),
                ))
                post_bad[j] = True
    for name in ("user", "item"):
        parsed[name] = _checked_ids(parsed[name], name, idx, problems, post_bad)
    keep = np.flatnonzero(~post_bad)
    if keep.size != idx.size:
        kl = keep.tolist()
        for k in ("user", "item", "feature", "value", "id"):
            if k in parsed:
                parsed[k] = [parsed[k][j] for j in kl]
        at_us = at_us[keep]
        idx = idx[keep]
    problems.sort(key=lambda p: -1 if p["row"] is None else p["row"])
    batch = Batch(
        user=parsed["user"],
        item=parsed["item"],
        feature=parsed["feature"],
        value=np.asarray(parsed["value"], dtype=np.float64),
        at_us=at_us,
        event_id=parsed.get("id"),
        rows=idx,
        n=n,
    )
    return batch, problems



def _checked_ids(
    values: list[str], field: str, idx: np.ndarray, problems: list[dict[str, Any]],
    bad: np.ndarray,
) -> list[str]:
    """``values`` by persona's id rule (:func:`persona.schema.check_id`): in NFC, and each
    id the rule refuses reported as a problem of its row (and marked in ``bad``)."""
    try:
        return check_ids(values, field)
    except ValidationError:
        pass
    out = list(values)
    for j, v in enumerate(values):
        try:
            out[j] = check_id(v, field)
        except ValidationError as exc:
            if not bad[j]:
                problems.append(_problem(int(idx[j]), field, exc.errors[0]["message"], v))
                bad[j] = True
    return out


def raise_for(problems: list[dict[str, Any]], n: int) -> None:
    """Raise one :class:`~persona.ValidationError` describing ``problems``."""
    first = problems[:5]
    parts = []
    for p in first:
        where = f"row {p['row']}" if p["row"] is not None else "the batch"
        fix = FIX.get(p["field"], "")
        parts.append(
            f"{where}, field '{p['field']}': {p['message']}" + (f" ({fix})" if fix else "")
        )
    more = (
        f" … and {len(problems) - len(first)} more problem(s)" if len(problems) > len(first) else ""
    )
    raise ValidationError(
        f"the batch of {n} event(s) was rejected and nothing was stored: "
        + "; ".join(parts)
        + more
        + ". Fix these rows, or pass on_invalid='skip' to store the valid rows and count the rest.",
        errors=problems,
    )


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash of 64-bit integers."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * _M1
        x = x ^ (x >> np.uint64(27))
        x = x * _M2
        out: np.ndarray = x ^ (x >> np.uint64(31))
        return out


def event_ids(
    subject: np.ndarray,
    item: np.ndarray,
    feature: np.ndarray,
    value: np.ndarray,
    at_us: np.ndarray,
    explicit: list[str | None] | None,
) -> np.ndarray:
    """64-bit event ids, scoped to the person: an explicit ``id`` if given, else the content.

    Re-sending the same event (same explicit id, or same person, item, feature, value and
    time) gives the same id, so it is stored once.
    """
    with np.errstate(over="ignore"):
        h = _mix(subject.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15))
        content = _mix(h ^ item.astype(np.uint64))
        content = _mix(content ^ feature.astype(np.uint64))
        content = _mix(content ^ value.view(np.uint64))
        content = _mix(content ^ at_us.view(np.uint64))
        if explicit is not None and any(e is not None for e in explicit):
            given = np.array(
                [
                    0
                    if e is None
                    else int.from_bytes(
                        hashlib.blake2b(e.encode(), digest_size=8).digest(), "little"
                    )
                    for e in explicit
                ],
                dtype=np.uint64,
            )
            has = np.array([e is not None for e in explicit])
            content = np.where(has, _mix(h ^ given ^ np.uint64(0x5DEECE66D)), content)
    return content
