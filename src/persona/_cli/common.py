"""What every ``persona`` command shares: opening the store, reading CSV or JSON lines,
flags checked by argparse, JSON output and the one-line error of a user's mistake."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona.errors import PersonaError

if TYPE_CHECKING:
    from persona.models import Recommender
    from persona.store import Store

__all__ = [
    "DELTA_FLAG",
    "EPSILON_FLAG",
    "MAX_FACTORS",
    "MAX_ITERATIONS",
    "MAX_N",
    "MODEL_NAMES",
    "STORE_FLAG",
    "UsageError",
    "float_flag",
    "int_flag",
    "model_from_flags",
    "open_store",
    "out_path",
    "print_json",
    "read_rows",
]

MAX_ITERATIONS = 1_000
MAX_FACTORS = 1_024
MAX_N = 10_000
MODEL_NAMES = ("als", "bpr", "itemknn", "popularity")

STORE_FLAG: dict[str, Any] = {
    "default": argparse.SUPPRESS, "help": "the store file (as before the command)",
}
"""``add_argument("--store", **STORE_FLAG)``: a subcommand also takes ``--store`` after its
name, without overriding the one given before it."""


class UsageError(PersonaError):
    """A command-line mistake that is not a usage error of argparse itself. HTTP 400
    (Bad Request), should a service ever pass it on."""

    code = "cli_error"
    http_status = 400


def open_store(args: argparse.Namespace, *, existing: bool = False) -> Store:
    """The store of ``--store``. With ``existing``, a file that is not there is a
    :class:`UsageError` (a command that only reads or checks never creates a new, empty
    store from a mistyped name). A store whose pseudonym key is held outside its file takes
    it from ``$PERSONA_PSEUDONYM_KEY``."""
    import persona

    if existing and args.store != ":memory:" and not Path(args.store).exists():
        raise UsageError(
            f"no store at {args.store}; give the store's file with --store PATH or "
            "$PERSONA_STORE"
        )
    key = os.environ.get("PERSONA_PSEUDONYM_KEY") or None
    return persona.Store(args.store, pseudonym_key=key)


def field_map(pairs: Sequence[str], fields: Sequence[str]) -> dict[str, str]:
    """``--map FIELD=COLUMN`` flags as ``{field: column}``; a field not in ``fields`` (or a
    pair without ``=``) is a one-line usage error naming the flag."""
    out: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or field not in fields or not column:
            raise UsageError(
                f"--map {pair!r}: write FIELD=COLUMN with FIELD one of {', '.join(fields)}"
            )
        out[field] = column
    return out


def print_json(obj: Any) -> None:
    """``obj`` as indented JSON on standard output (times and other values as text)."""
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def int_flag(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"needs a whole number from {low} to {high}, not {text!r}"
            )
        return value

    return parse


def read_rows(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """The rows of a CSV or JSON lines file (UTF-8, a byte order mark tolerated); a file
    that cannot be read is a one-line :class:`UsageError` naming it."""
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if fmt == "auto":
        fmt = "jsonl" if path.suffix in (".jsonl", ".ndjson", ".json") else "csv"
    opener = open
    if path.suffix == ".gz":
        import gzip

        opener = gzip.open  # type: ignore[assignment]
    reader: Any = None
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:
            if fmt == "csv":
                reader = csv.DictReader(f)
                yield from reader
            else:
                for k, line in enumerate(f, start=1):
                    if line.strip():
                        try:
                            row = json.loads(line)
                        except json.JSONDecodeError as exc:
                            raise UsageError(
                                f"{path}, line {k}: not JSON ({exc.msg})"
                            ) from None
                        if not isinstance(row, dict):
                            raise UsageError(
                                f"{path}, line {k}: not a JSON object; write one object per "
                                'line, e.g. {"user": "u1", "item": "sku-1", ...}'
                            )
                        yield row
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start} of a chunk); save it as UTF-8 (e.g. iconv -f latin1 -t utf-8) and "
            "try again"
        ) from None
    except csv.Error as exc:
        line = f", line {reader.line_num}" if reader is not None else ""
        raise UsageError(
            f"{path}{line}: not readable as CSV ({exc}); check the file's delimiter and "
            "quoting (a field over 128 KiB is most often an unclosed quote), or give "
            "--format jsonl for JSON lines"
        ) from None


def float_flag(rule: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse ``type`` for a finite number meeting ``ok`` (no nan, no infinity); the
    parser's one-line error names the flag."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"needs {rule}, not {text!r}")
        return value

    return parse


def out_path(text: str) -> str:
    """An argparse ``type`` for an output path: inside the current folder (no ``..``
    component, and not resolving elsewhere, also through a symbolic link)."""
    path = Path(text)
    here = Path.cwd().resolve()
    full = (here / path).resolve()
    if ".." in path.parts or (full != here and here not in full.parents):
        raise argparse.ArgumentTypeError(
            f"must be a path inside the current folder ({here}), without '..', not "
            f"{text!r}; cd to where the output should go and give a relative path"
        )
    return text


EPSILON_FLAG = float_flag("a finite number > 0", lambda v: v > 0)
DELTA_FLAG = float_flag("a finite number with 0 <= delta < 1", lambda v: 0 <= v < 1)


def model_from_flags(args: argparse.Namespace) -> Recommender:
    """The model ``--model`` names (from persona's one registry), with ``--factors`` and
    ``--iterations`` for the factor models."""
    from persona.models import model_class

    params: dict[str, Any] = {}
    if args.model in ("als", "bpr"):
        params = {"factors": args.factors, "iterations": args.iterations, "random_state": 0}
    return model_class(args.model)(**params)
