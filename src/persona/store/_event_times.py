"""Event times at ingest: numbers in a declared unit, naive times in a declared zone, ISO
strings in UTC by a vectorised fast path, all as microseconds since the epoch (UTC); and
the problem rows they report (used by :mod:`persona.store._validate`)."""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from operator import itemgetter
from typing import Any

import numpy as np

from persona._times import numbers_error, numbers_to_us, zone_problem

_MISSING = object()  # a field that is absent (or null) in a row


def _problem(row: int | None, field: str, message: str, value: Any = None) -> dict[str, Any]:
    return {"row": row, "field": field, "message": message, "input": repr(value)[:80]}


def _numeric_text(v: Any) -> bool:
    """Whether ``v`` is a number written as text (``"1780000000"``, ``"-1.5e9"``)."""
    if type(v) is not str:
        return False
    try:
        float(v)
    except ValueError:
        return False
    return v.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity")


def _refuse_numeric_text(values: list[Any], bad: np.ndarray,
                         problems: list[dict[str, Any]]) -> None:
    """Numbers written as text are numbers: without ``at_unit`` they are refused, with the
    unit their size suggests, as numbers are (never read in a guessed unit)."""
    rows = [i for i, v in enumerate(values) if not bad[i] and _numeric_text(v)]
    if not rows:
        return
    numbers = np.array([_as_float(values[i]) for i in rows])
    for i in rows:
        problems.append(_problem(
            i, "at", numbers_error("the time", numbers, values[i]) + " (numbers written as "
            "text are numbers)", values[i]))
        bad[i] = True


def _as_float(v: Any) -> float:
    """``float(v)``, or an infinity for an int too large for a float (its size says only
    that it fits no unit)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_)


def _numbers_us(values: list[Any], unit: str, bad: np.ndarray,
                problems: list[dict[str, Any]]) -> np.ndarray:
    """Numeric times counting ``unit`` since 1970-01-01 UTC, as microseconds; any other
    value is a problem of its row (0 there)."""
    out = np.zeros(len(values), dtype=np.int64)
    rows = []
    for i, v in enumerate(values):
        if bad[i] or v is _MISSING:
            continue
        if _numeric_text(v):  # numbers written as text (a CSV's) are numbers
            v = values[i] = int(v) if v.strip().lstrip("+-").isdigit() else float(v)
        if not _is_number(v):
            problems.append(_problem(
                i, "at", f"at_unit={unit!r} was given, so the time must be a number "
                f"counting {unit} since 1970-01-01 UTC, not a {type(v).__name__}", v))
            bad[i] = True
        else:
            rows.append(i)
    try:  # one conversion for the whole column
        out[rows] = numbers_to_us(np.array([values[i] for i in rows]), unit)
    except (ValueError, OverflowError):  # find the rows that do not fit
        for i in rows:
            try:
                out[i] = numbers_to_us(np.array([values[i]]), unit)[0]
            except (ValueError, OverflowError) as exc:
                problems.append(_problem(i, "at", f"{exc}; check the unit", values[i]))
                bad[i] = True
    return out


def _in_zone(values: list[Any], tz: tzinfo, bad: np.ndarray,
             problems: list[dict[str, Any]]) -> list[Any]:
    """Naive times (ISO strings without an offset, naive datetimes) read in ``tz``."""
    out = list(values)
    for i, v in enumerate(values):
        parsed = v
        if type(v) is str:
            try:
                parsed = datetime.fromisoformat(v)
            except ValueError:
                continue  # pydantic names the row
        if isinstance(parsed, datetime) and parsed.tzinfo is None:
            why = zone_problem(parsed, tz)
            if why is not None and not bad[i]:
                problems.append(_problem(i, "at", why, v))
                bad[i] = True
            out[i] = parsed.replace(tzinfo=tz)
    return out


def _times_us(at: Any, raw: list[Any] | None = None) -> np.ndarray:
    """Microseconds since the epoch (UTC) of validated times.

    ``at`` is a timezone-aware pandas Series, or the datetimes pydantic parsed; ``raw`` the
    original values, which the standard library converts faster when they are ISO strings.
    """
    if not isinstance(at, list):  # a timezone-aware pandas Series
        values = at.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        us: np.ndarray = values.astype("datetime64[us]").astype(np.int64)
        return us
    if raw is None or len(raw) != len(at):
        raw = at

    def seconds(value: Any, parsed: datetime) -> float:
        if type(value) is str:
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                return parsed.timestamp()
        return float(value.timestamp())

    try:  # all ISO strings the standard library reads: conversion stays in C
        stamps = np.array(
            list(map(datetime.timestamp, map(datetime.fromisoformat, raw))), dtype=np.float64
        )
    except (TypeError, ValueError):
        stamps = np.array(list(map(seconds, raw, at)), dtype=np.float64)
    return np.rint(stamps * 1e6).astype(np.int64)


_UTC_TAILS = frozenset({"Z", "+00:00"})
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]  # of YYYY-MM-DDTHH:MM:SS
_PLACE = np.array([1000, 100, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1, 10, 1], dtype=np.int32)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int32)


def _utc_strings_us(raw: list[Any]) -> np.ndarray | None:
    """Validate and convert times that are all ``YYYY-MM-DDTHH:MM:SS`` (``T``, ``t`` or a
    space between date and time) ending in ``Z`` or ``+00:00``, the common case, in
    microseconds since the epoch.

    The strings are checked and converted as one byte table, column by column, with integer
    arithmetic (the proleptic Gregorian calendar; days from the civil date as in H.
    Hinnant's ``days_from_civil``), with no Python object per row. Returns None if any
    string has another form or an impossible date or time (year 0, 29 February of a common
    year, hour 24, second 60, ...): the caller then validates every time with pydantic,
    which names the bad rows, and converts with the standard library. Whatever this
    accepts, pydantic accepts as the same instant (a test checks this)."""
    if not raw or not isinstance(raw, list):
        return None
    try:  # anything but strings fails to join (TypeError)
        lengths = set(map(len, raw))
        if lengths == {20} or lengths == {25}:  # all "...Z" or all "...+00:00": one buffer
            width = lengths.pop()
            buf = "".join(raw).encode("ascii")
            tail = b"Z" if width == 20 else b"+00:00"
        elif lengths and _UTC_TAILS.issuperset(map(itemgetter(slice(19, None)), raw)):
            width, tail = 19, b""
            buf = "".join(map(itemgetter(slice(None, 19)), raw)).encode("ascii")
        else:
            return None
    except (TypeError, UnicodeEncodeError):  # not strings; not ASCII
        return None
    # one row per character position: every check below is one pass over a long column
    t = np.ascontiguousarray(np.frombuffer(buf, dtype=np.uint8).reshape(len(raw), width).T)
    for k, ch in enumerate(tail, start=19):
        if not (t[k] == ch).all():
            return None
    sep = t[10]
    if not (
        (t[[4, 7]] == ord("-")).all()
        and (t[[13, 16]] == ord(":")).all()
        and ((sep == ord("T")) | (sep == ord("t")) | (sep == ord(" "))).all()
    ):
        return None
    d = t[_DIGITS] - np.uint8(ord("0"))  # a non-digit wraps around to above 9
    if (d > 9).any():
        return None
    v = d.astype(np.int32) * _PLACE[:, None]
    year = v[0] + v[1] + v[2] + v[3]
    month, day = v[4] + v[5], v[6] + v[7]
    hour, minute, second = v[8] + v[9], v[10] + v[11], v[12] + v[13]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    days_in_month = _DAYS_IN_MONTH.take(month, mode="clip") + (leap & (month == 2))
    if not (
        (year >= 1).all()
        and ((month >= 1) & (month <= 12)).all()
        and ((day >= 1) & (day <= days_in_month)).all()
        and (hour < 24).all()
        and (minute < 60).all()
        and (second < 60).all()
    ):
        return None
    y = (year - (month <= 2)).astype(np.int64)  # years from March, so leap days come last
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    out: np.ndarray = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000
    return out
