"""``persona consent import FILE``: many people's consent choices from CSV or JSON lines,
recorded all or none."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from persona._cli.common import STORE_FLAG, UsageError, field_map, open_store, read_rows
from persona.errors import ValidationError

__all__ = ["PROG", "register", "split_argv"]

PROG = "consent import"
FIELDS = ("user", "purpose", "action", "at", "source", "notice_version")
REQUIRED = ("user", "purpose", "action")
_ACTIONS = ("grant", "withdraw", "decline")


def split_argv(argv: list[str]) -> list[str]:
    """``argv`` with ``consent import FILE ...`` as the one subcommand ``"consent import"``.

    ``persona consent import marketing grant --source S`` stays a single choice of the
    person called ``import`` (three positionals, the last an action)."""
    k = 0
    while k < len(argv) and argv[k].startswith("-"):  # the options before the command
        k += 1 if "=" in argv[k] or argv[k] in ("-h", "--help") else 2
    if argv[k:k + 2] != ["consent", "import"]:
        return argv
    rest = argv[k + 2:]
    if len(rest) >= 2 and rest[1] in _ACTIONS and not rest[0].startswith("-"):
        return argv
    return [*argv[:k], PROG, *rest]


def _choice(row: dict[str, Any], mapping: dict[str, str], source: str | None) -> dict[str, Any]:
    choice: dict[str, Any] = {}
    for field in FIELDS:
        value = row.get(mapping.get(field, field))
        if isinstance(value, str):
            value = value.strip()
        # ids go to record_consents as read: it applies the one id rule (an int is its
        # decimal string, a float is refused with the fix), as ingest does
        if value not in (None, ""):
            choice[field] = value
    if "source" not in choice and source is not None:
        choice["source"] = source
    if isinstance(choice.get("action"), str):
        choice["action"] = choice["action"].lower()
    return choice


def _import(args: argparse.Namespace) -> int:
    mapping = field_map(args.map or [], FIELDS)
    path = Path(args.file)
    rows = list(read_rows(path, args.format))
    if not rows:
        raise UsageError(f"{path} holds no consent choices (no rows after the header)")
    columns = set(rows[0]) if args.format != "jsonl" and path.suffix not in (
        ".jsonl", ".ndjson", ".json") else set().union(*rows)
    missing = [f for f in REQUIRED if mapping.get(f, f) not in columns]
    if missing:
        raise UsageError(
            f"{path} has no column for {', '.join(missing)}; name the columns with "
            + " ".join(f"--map {f}=COLUMN" for f in missing)
            + f" (columns found: {', '.join(sorted(map(str, columns)))})"
        )
    choices = [_choice(row, mapping, args.source) for row in rows]
    store = open_store(args)
    with store:
        try:
            records = store.record_consents(choices)
        except ValidationError as exc:
            first = exc.errors[0] if exc.errors else {}
            row = first.get("row")
            where = "" if row is None else f", row {int(row) + 1}"
            message = str(first.get("message") or exc)
            if first.get("field") == "source":
                message += "; give a source column, or --source TEXT for rows without one"
            raise UsageError(
                f"{path}{where}: {message}. Nothing was recorded: fix the row and import the "
                "file again"
            ) from None
    people = len({c["user"] for c in choices})
    counts = {a: sum(r.action == a for r in records) for a in _ACTIONS}
    print(f"recorded {len(records):,} consent choices of {people:,} people from {path} "
          f"({counts['grant']:,} grant, {counts['withdraw']:,} withdraw, "
          f"{counts['decline']:,} decline) in {args.store}")
    return 0


def register(sub: Any) -> None:
    """Add ``persona consent import`` (reached through :func:`split_argv`) to ``sub``."""
    imp = sub.add_parser(
        PROG, prog="persona consent import",
        description="Record many consent choices from a CSV or JSON lines file, one choice "
        "per row: user, purpose, action (grant, withdraw or decline), and optionally at (an "
        "ISO 8601 time with a zone; default now), source and notice_version. Every row is "
        "checked first: one bad row rejects the file, naming the row, and nothing is "
        "recorded.",
        epilog="Example: persona consent import cmp-export.csv --source 'CMP export "
        "2026-01' --map user=customer_id")
    imp.add_argument("file")
    imp.add_argument("--store", **STORE_FLAG)
    imp.add_argument("--source", help="where the choices were made, for rows without a "
                     "source column or cell")
    imp.add_argument("--map", action="append", metavar="FIELD=COLUMN",
                     help=f"column for a field ({', '.join(FIELDS)}); repeat as needed")
    imp.add_argument("--format", choices=["auto", "csv", "jsonl"], default="auto")
    imp.set_defaults(func=_import)
