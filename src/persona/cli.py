"""The ``persona`` command line.

``persona demo`` walks through the consent-scoped store on a small bundled shop.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from persona.errors import PersonaError

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from persona.demo import run_store_walkthrough

    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="persona-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    run_store_walkthrough(folder, out=sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persona",
        description="persona: personalization that people can trust.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run the end-to-end walkthrough on bundled sample data",
        description="Create a store in a fresh folder and walk through consent, scoped "
        "reads, withdrawal, export, erasure and the audit log.",
    )
    demo.add_argument(
        "--folder", help="where to write the demo's files (default: a new temp folder)"
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``persona`` command. Returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except PersonaError as exc:
        print(f"persona: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
