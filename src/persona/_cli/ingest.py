"""``persona ingest``: events from a CSV or JSON lines file into the store, in batches,
with the command line's own words for a refused batch (its flags, the file row)."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import warnings
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from persona._cli.common import UsageError, field_map, open_store, read_rows
from persona.errors import RetentionWarning, ValidationError

__all__ = ["register"]

_FIELDS = ("user", "item", "feature", "value", "at", "id")
_BATCH = 100_000


def _convert(row: dict[str, Any], mapping: dict[str, str], feature: str | None,
             at_unit: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {}
    for field in _FIELDS:
        column = mapping.get(field, field)
        if column in row and row[column] not in (None, ""):
            event[field] = row[column]
    if feature is not None:
        event["feature"] = feature
    value = event.get("value")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # else left as text: validation names the row
            event["value"] = float(value)
    # ids and times go to store.ingest as read: it applies persona's one id rule (an int is
    # its decimal string; a float such as 170.0 is refused with the fix) and its time rule
    # (numbers need --at-unit, times without a zone --tz); with --at-unit, a CSV's numbers
    # are numbers
    at = event.get("at")
    if at_unit is not None and isinstance(at, str):
        with contextlib.suppress(ValueError):  # else left as text: validation names the row
            event["at"] = int(at) if at.strip().lstrip("+-").isdigit() else float(at)
    return event


def _ingest(args: argparse.Namespace) -> int:
    store = open_store(args)
    mapping = field_map(args.map or [], _FIELDS)
    if args.tz:  # checked here too, to name the flag
        try:
            ZoneInfo(args.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(
                f"--tz {args.tz!r} is not a time zone (try Europe/London)") from None
    totals = {"received": 0, "inserted": 0, "duplicates": 0, "rejected": 0}
    outside: dict[str, int] = {}
    batch: list[dict[str, Any]] = []
    base = 0

    def flush() -> None:
        nonlocal base
        if not batch:
            return
        try:
            with warnings.catch_warnings():  # summed up below, in the command's words
                warnings.simplefilter("ignore", RetentionWarning)
                report = store.ingest(batch, on_invalid=args.on_invalid, dedupe=args.dedupe,
                                      at_unit=args.at_unit, tz=args.tz or None)
        except ValidationError as exc:
            raise UsageError(_ingest_message(exc, base)) from None
        for key in totals:
            totals[key] += getattr(report, key)
        for name, n in report.outside_retention.items():
            outside[name] = outside.get(name, 0) + n
        base += len(batch)
        batch.clear()

    for row in read_rows(Path(args.file), args.format):
        event = _convert(row, mapping, args.feature, args.at_unit)
        # a batch is full at _BATCH rows, but a run of one person's rows at one time is
        # never split: identical rows are then counted as in one batch (see --dedupe)
        if len(batch) >= _BATCH and _run(event) != _run(batch[-1]):
            flush()
        batch.append(event)
    flush()
    late = sum(outside.values())
    print(
        f"ingested {totals['inserted']:,} of {totals['received']:,} events "
        f"({totals['duplicates']:,} duplicates, {totals['rejected']:,} rejected"
        f"{f', {late:,} outside retention' if late else ''}) into {args.store}"
    )
    if late:
        kept = {name: spec.retention_days for name, spec in store.features.items()}
        which = "; ".join(f"{name!r} keeps {kept.get(name)} days: {n:,}"
                          for name, n in outside.items())
        print(
            f"note: {late:,} events were not stored: they are already older than their "
            f"feature's retention ({which}). To use them, raise it (persona feature add NAME "
            "... --retention-days N|none) and ingest the file again.",
            file=sys.stderr,
        )
    return 0


def _run(event: dict[str, Any]) -> tuple[Any, Any]:
    return event.get("user"), event.get("at")


def _ingest_message(exc: ValidationError, base: int) -> str:
    """A refused batch's message in the command line's words: its flags, not the API's
    arguments, and the file row of the first problem."""
    first = exc.errors[0] if exc.errors else {}
    row = first.get("row")
    where = "" if row is None else f" (file row {base + int(row) + 1})"
    text = str(exc).replace(
        "pass on_invalid='skip' to store the valid rows and count the rest",
        "run again with --on-invalid skip to store the valid rows and count the rest",
    )
    # the time rule's advice, in the flags' words
    text = re.sub(r"ingest\(\.\.\., at_unit='(\w+)'\)", r"--at-unit \1", text)
    text = re.sub(r"at_unit='(\w+)'", r"--at-unit \1", text)
    text = re.sub(r"ingest\(\.\.\., tz='([^']+)'\)", r"--tz \1", text)
    text = re.sub(r"\btz='([^']+)'", r"--tz \1", text)
    return f"{text}{where}"


def register(sub: Any) -> None:
    """Add ``persona ingest`` to the command's subparsers."""
    ingest = sub.add_parser("ingest", help="load events from CSV or JSON lines",
                            description="Each row becomes one event. Use --map to name the "
                            "columns holding each field, e.g. --map user=CustomerID.")
    ingest.add_argument("file")
    ingest.add_argument("--map", action="append", metavar="FIELD=COLUMN",
                        help=f"column for a field ({', '.join(_FIELDS)}); repeat as needed")
    ingest.add_argument("--feature", help="the feature of every row (instead of a column)")
    ingest.add_argument("--tz", help="time zone of times written without one, e.g. Europe/London")
    ingest.add_argument("--at-unit", choices=("s", "ms", "us", "ns"),
                        help="what numeric times count since 1970-01-01 UTC: s (unix time), "
                             "ms, us or ns; numbers without it are refused")
    ingest.add_argument("--format", choices=["auto", "csv", "jsonl"], default="auto")
    ingest.add_argument("--on-invalid", choices=["raise", "skip"], default="raise",
                        help="reject a batch with a bad row (default) or skip bad rows")
    ingest.add_argument("--dedupe", choices=["none", "exact"], default="none",
                        help="rows without an id: keep identical ones as repeat purchases "
                        "(none, default; the same file sent again adds nothing) or store "
                        "them once (exact)")
    ingest.set_defaults(func=_ingest)
