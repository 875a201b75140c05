"""persona's one rule for event times, shared by the store (``Store.ingest``) and
``persona.data`` (``Interactions.from_pandas``). numpy only (pandas where a frame is given),
so both sides can import it.

A time is an instant, kept as microseconds since 1970-01-01 UTC:

- a timezone-aware datetime, or an ISO 8601 string with an offset (``...Z``, ``...+02:00``),
  is taken as the instant it names;
- a number counts from 1970-01-01 UTC in the unit given by ``at_unit`` (``"s"``, ``"ms"``,
  ``"us"`` or ``"ns"``); without a unit it is refused, because the same number is a time in
  2000 read as seconds and in January 1970 read as nanoseconds (the message says which unit
  its magnitude suggests);
- a naive time (no offset) is read in the zone given by ``tz`` (``"UTC"``,
  ``"Europe/London"``, ...); without a zone it is refused, because its instant depends on
  where it was written. A wall time that a daylight-saving change skips or repeats in that
  zone is refused too.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from persona.errors import ValidationError

__all__ = ["NAIVE_FIX", "TIME_UNITS", "check_unit", "check_zone", "numbers_error",
           "numbers_to_us", "pandas_times_us", "suggested_unit", "zone_problem"]

TIME_UNITS = ("s", "ms", "us", "ns")
_PER_US = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}  # ns: 1000 per microsecond
_FLOAT_SCALE = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}
NAIVE_FIX = (
    "a time without a time zone is ambiguous: say which zone the times were written in "
    "with tz='UTC' (or e.g. tz='Europe/London'), or give them with an offset, e.g. "
    "'2026-11-01T10:00:00Z'"
)
# an offset after a time of day: '...10:00Z', '...10:00:00.5+02:00', '... 10:00 -0500'
_OFFSET = r"\d\d:\d\d(?::\d\d(?:\.\d+)?)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d)?)$"


def check_unit(unit: Any) -> str:
    """``unit`` if it is one of :data:`TIME_UNITS`, else a ValidationError."""
    if isinstance(unit, str) and unit in TIME_UNITS:
        return unit
    raise ValidationError(
        f"at_unit must be 's', 'ms', 'us' or 'ns' (what the numbers count since "
        f"1970-01-01 UTC), not {unit!r}",
        errors=[{"row": None, "field": "at_unit", "message": "unknown unit",
                 "input": repr(unit)[:80]}],
    )


def check_zone(tz: Any) -> tzinfo:
    """``tz`` (an IANA zone name such as ``"Europe/London"``, or a ``tzinfo``) as a tzinfo."""
    if isinstance(tz, tzinfo):
        return tz
    if isinstance(tz, str):
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise ValidationError(
        f"tz must be a time zone name such as 'UTC' or 'Europe/London' (or a tzinfo), "
        f"not {tz!r}",
        errors=[{"row": None, "field": "tz", "message": "unknown time zone",
                 "input": repr(tz)[:80]}],
    )


def suggested_unit(values: np.ndarray) -> str | None:
    """The unit in which the median of ``values`` is a time from 1971 to 2200, if any."""
    finite = np.abs(values[np.isfinite(values)]) if values.size else values
    if not finite.size:
        return None
    typical = float(np.median(finite))
    for unit, scale in (("s", 1), ("ms", 1e3), ("us", 1e6), ("ns", 1e9)):
        if 3.1e7 * scale <= typical <= 7.3e9 * scale:
            return unit
    return None


def numbers_error(where: str, values: np.ndarray, example: Any) -> str:
    """The message refusing numeric times given without a unit."""
    unit = suggested_unit(np.asarray(values, dtype=np.float64))
    hint = (f"; their size suggests at_unit='{unit}'" if unit is not None
            else "; check what they count, their size fits no unit from 1971 to 2200")
    return (f"{where} holds numbers (e.g. {example!r}), which are not times without a unit: "
            "say what they count since 1970-01-01 UTC with at_unit='s' (seconds, unix time), "
            f"'ms', 'us' or 'ns'{hint}")


def numbers_to_us(values: np.ndarray, unit: str) -> np.ndarray:
    """Numbers counting ``unit`` since 1970-01-01 UTC as int64 microseconds (rounded to
    the nearest microsecond). Raises ValueError naming the first value that is not finite
    or does not fit."""
    values = np.asarray(values)
    limit = 2**62  # about year 148,000: far beyond any event, far from int64 overflow
    if values.dtype.kind in "iu":
        per = _PER_US[unit]
        v = values.astype(np.int64) if values.dtype.kind == "i" or values.size == 0 or \
            values.max() < 2**63 else None
        if v is None or (per and np.any(np.abs(v) > limit // per)):
            raise ValueError(f"{values[np.argmax(np.abs(values))]} is too large a time")
        if per:
            return v * per
        return (v + 500) // 1000  # nanoseconds to the nearest microsecond
    f = values.astype(np.float64) * _FLOAT_SCALE[unit]
    bad = ~np.isfinite(f) | (np.abs(f) > limit)
    if bad.any():
        raise ValueError(f"{values[int(np.argmax(bad))]!r} is not a time in {unit}")
    return np.rint(f).astype(np.int64)


def zone_problem(value: datetime, zone: tzinfo) -> str | None:
    """Why the naive ``value`` names no single instant in ``zone``, or ``None``."""
    early, late = value.replace(tzinfo=zone, fold=0), value.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return None
    # (through UTC: astimezone to the datetime's own zone would change nothing)
    back = early.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != value:
        return f"{value} does not exist in {zone} (a daylight-saving change skips it)"
    return f"{value} happens twice in {zone} (a daylight-saving change repeats it)"


def _zone_error(column: str, exc: Exception, zone: tzinfo) -> ValidationError:
    return ValidationError(
        f"column {column!r}: some naive times name no single instant in {zone} ({exc}); a "
        "daylight-saving change skips or repeats them. Give those times with an offset, "
        "or convert them yourself (pandas: .dt.tz_localize(tz, ambiguous=..., "
        "nonexistent=...))",
        errors=[{"row": None, "field": column, "message": "ambiguous or nonexistent time",
                 "input": None}],
    )


def pandas_times_us(series: Any, column: str, at_unit: str | None,
                    tz: tzinfo | None) -> np.ndarray:
    """A pandas column of event times as ``datetime64[us]`` in UTC, by the rule above."""
    import pandas as pd

    def refuse(message: str) -> ValidationError:
        return ValidationError(message, errors=[{"row": None, "field": column,
                                                 "message": message, "input": None}])

    missing = series.isna().to_numpy()
    if missing.any():
        row = series.index[int(np.argmax(missing))]
        raise refuse(f"{int(missing.sum())} event(s) have no time in column {column!r} "
                     f"(e.g. row {row!r}); drop them first, e.g. "
                     f"df.dropna(subset=[{column!r}])")
    kind = getattr(series.dtype, "kind", "O")
    if kind == "O" and len(series):
        types = set(map(type, series.tolist()))
        if bool in types or np.bool_ in types:
            kind = "b"
        elif all(issubclass(t, int | float | np.integer | np.floating) for t in types):
            series = pd.to_numeric(series)
            kind = series.dtype.kind
        elif any(issubclass(t, int | float | np.integer | np.floating) for t in types):
            raise refuse(f"column {column!r} mixes numbers and times; give every time the "
                         "same way (all ISO strings, or all numbers with at_unit=...)")
    if kind not in "iufbM" and len(series):  # text: numbers written as text are numbers
        numeric = pd.to_numeric(series.astype(str).str.strip(), errors="coerce")
        if numeric.notna().all() and np.isfinite(numeric.to_numpy(np.float64)).all():
            series, kind = numeric, numeric.dtype.kind
    if kind == "b":
        raise refuse(f"column {column!r} holds bools, which are not times")
    if kind in "iuf":
        if at_unit is None:
            raise refuse(numbers_error(f"column {column!r}", series.to_numpy(np.float64),
                                       series.iloc[0]))
        try:
            return numbers_to_us(series.to_numpy(), at_unit).view("datetime64[us]")
        except ValueError as exc:
            raise refuse(f"column {column!r}: {exc}; check the unit (at_unit="
                         f"{at_unit!r})") from None
    if at_unit is not None:
        raise refuse(f"at_unit={at_unit!r} is for numeric times, but column {column!r} "
                     f"holds {series.dtype}; leave at_unit out (datetimes and ISO strings "
                     "name their instant)")
    if kind == "M":
        naive = np.full(len(series), series.dt.tz is None)
    else:
        naive = ~series.astype(str).str.contains(_OFFSET, regex=True).to_numpy(dtype=bool)
    if naive.any() and tz is None:
        example = series[naive].iloc[0]
        raise refuse(f"column {column!r} holds times without a time zone (e.g. "
                     f"{str(example)!r}): {NAIVE_FIX}")
    try:
        if kind == "M":
            if series.dt.tz is None:
                series = series.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
            return _utc_us(series.dt.tz_convert("UTC")).view("datetime64[us]")
        out = np.empty(len(series), dtype=np.int64)
        if (~naive).any():
            out[~naive] = _utc_us(pd.to_datetime(series[~naive], utc=True, format="ISO8601"))
        if naive.any():
            local = pd.to_datetime(series[naive], format="ISO8601")
            local = local.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
            out[naive] = _utc_us(local.dt.tz_convert("UTC"))
        return out.view("datetime64[us]")
    except (ValueError, TypeError) as exc:
        if "ambiguous" in str(exc).lower() or "nonexistent" in str(exc).lower() or \
                type(exc).__name__ in ("AmbiguousTimeError", "NonExistentTimeError"):
            raise _zone_error(column, exc, tz) from None  # type: ignore[arg-type]
        raise refuse(f"column {column!r} is not a time: {exc}") from None


def _utc_us(series: Any) -> np.ndarray:
    """A UTC-aware pandas Series as int64 microseconds."""
    us: np.ndarray = series.dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    return us.view(np.int64)
