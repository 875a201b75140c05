"""``persona catalogue``: declare the items the shop sells (the public item universe that
private models score) and list them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from persona._cli.common import STORE_FLAG, UsageError, open_store, print_json, read_rows

__all__ = ["register"]


def _catalogue_import(args: argparse.Namespace) -> int:
    store = open_store(args)
    ids: list[str] = []
    labels: dict[str, str] = {}
    for k, row in enumerate(read_rows(Path(args.file), args.format), start=1):
        item = row.get(args.item_column)
        if item in (None, ""):
            raise UsageError(
                f"{args.file}, row {k}: no item id in column {args.item_column!r}; name the "
                "column with --item-column"
            )
        ids.append(str(item))
        if args.label_column is not None and row.get(args.label_column) not in (None, ""):
            labels[str(item)] = str(row[args.label_column]).strip()
    store.define_items(ids)
    if labels:
        store.label_items(labels)
    print(f"declared {len(dict.fromkeys(ids)):,} items ({len(labels):,} with a label) in "
          f"{args.store}; the catalogue now has {len(store.catalogue()):,} items")
    return 0


def _catalogue_show(args: argparse.Namespace) -> int:
    store = open_store(args, existing=True)
    items = store.catalogue()
    labels = store.item_labels(items)
    if args.json:
        print_json([{"item": item, "label": labels.get(item)} for item in items])
        return 0
    for item in items:
        print(f"{item}\t{labels.get(item, '')}".rstrip("\t"))
    print(f"{len(items):,} declared items", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    """Add ``persona catalogue import|show`` to the command's subparsers."""
    catalogue = sub.add_parser(
        "catalogue", help="declare the items the shop sells (the public item universe)",
        description="Private models score exactly the declared items: declare the catalogue "
        "before a private 'persona train'. Example: persona catalogue import products.csv "
        "--item-column StockCode --label-column Description")
    csub = catalogue.add_subparsers(dest="action", metavar="ACTION", required=True)
    cimp = csub.add_parser("import", help="declare the items listed in a CSV or JSON lines file")
    cimp.add_argument("file")
    cimp.add_argument("--store", **STORE_FLAG)
    cimp.add_argument("--item-column", default="item", help="column with the item id")
    cimp.add_argument("--label-column", help="column with the item's title (optional)")
    cimp.add_argument("--format", choices=["auto", "csv", "jsonl"], default="auto")
    cimp.set_defaults(func=_catalogue_import)
    cshow = csub.add_parser("show", help="list the declared items and their titles",
                            description="One item a line, its id and title separated by a "
                            "tab, in the order declared; the count goes to stderr.",
                            epilog="Example: persona catalogue show --json")
    cshow.add_argument("--store", **STORE_FLAG)
    cshow.add_argument("--json", action="store_true",
                       help="a JSON list of {item, label} (label null when untitled)")
    cshow.set_defaults(func=_catalogue_show)
