"""``persona audit``: check the store's hash-chained audit log, and print its head to keep
elsewhere."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from persona._cli.common import STORE_FLAG, open_store, print_json
from persona.errors import AuditError

__all__ = ["register"]

_HEAD = re.compile(r"(\d+):([0-9a-f]{64})")


def _anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as printed by ``persona audit head`` (argparse ``type``)."""
    match = _HEAD.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"needs the head printed by 'persona audit head', SEQ:HASH with a 64-digit hex "
            f"hash, e.g. 42:9f86d0...; not {text!r}"
        )
    return int(match[1]), match[2]


def _verify(args: argparse.Namespace) -> int:
    store = open_store(args, existing=True)
    with store:
        problems = store.audit.problems(args.anchor, tables=not args.chain_only)
        seq, digest = store.audit.head()
    if args.json:
        print_json({"intact": not problems, "entries": seq, "head": f"{seq}:{digest}",
                    "problems": problems})
        return 1 if problems else 0
    if problems:  # a finding, not the caller's mistake: exit 1, on one line
        print(f"persona: error [{AuditError.code}]: the audit log of {args.store} failed "
              "verification: " + "; ".join(" ".join(p.split()) for p in problems)
              + ". Restore the store file from a backup and investigate who had write "
              "access to it.", file=sys.stderr)
        return 1
    checked = "the hash chain" if args.chain_only else (
        "the hash chain and the consent, privacy ledger and budget tables it vouches for")
    anchored = "" if args.anchor is None else f", and entry {args.anchor[0]} matches the anchor"
    print(f"audit log of {args.store} intact: {seq} entries, head {seq}:{digest}; checked "
          f"{checked}{anchored}")
    return 0


def _head(args: argparse.Namespace) -> int:
    store = open_store(args, existing=True)
    with store:
        seq, digest = store.audit.head()
    print(f"{seq}:{digest}")
    return 0


def register(sub: Any) -> None:
    """Add ``persona audit verify`` and ``persona audit head`` to the subcommands ``sub``."""
    audit = sub.add_parser(
        "audit", help="verify the audit log (hash chain and the tables it records)",
        description="Every consent change, ingest, read, budget change, export and erasure "
        "is an entry of an append-only, hash-chained audit log in the store.")
    asub = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = asub.add_parser(
        "verify", help="check the audit log; exit 0 when intact, 1 with the reason when not",
        description="Recompute the hash chain and compare the consent, privacy ledger and "
        "budget tables with what it recorded. Exit 0 when intact; otherwise print one line "
        "saying what is wrong and exit 1. Example: persona audit verify --anchor "
        "\"$(cat audit-head.txt)\"",
        epilog="Example: persona --store shop.db audit verify")
    verify.add_argument("--store", **STORE_FLAG)
    verify.add_argument("--anchor", type=_anchor, metavar="SEQ:HASH",
                        help="a head recorded earlier with 'persona audit head': the entry "
                        "must still have that hash (finds a rewritten file)")
    verify.add_argument("--chain-only", action="store_true",
                        help="check the hash chain alone, not the tables it records")
    verify.add_argument("--json", action="store_true",
                        help="print {intact, entries, head, problems}; exit 1 when not intact")
    verify.set_defaults(func=_verify)
    head = asub.add_parser(
        "head", help="print the log's head (SEQ:HASH) to record somewhere else",
        description="Print the last entry's number and hash. Keep it outside the store (a "
        "ticket, another system) and pass it to 'persona audit verify --anchor' later: a "
        "rewrite of the whole file is then found too.",
        epilog="Example: persona --store shop.db audit head > audit-head.txt")
    head.add_argument("--store", **STORE_FLAG)
    head.set_defaults(func=_head)
