"""``persona curate``: merchandisers pin and block items, with a reason people read.

Curation is held in the store, per purpose, so every worker serving the purpose applies
it (``store.set_curation``, recorded in the audit log), and it is saved with a
:class:`~persona.Personalizer` too (in its folder's ``personalizer.json``, under the
folder's checksum). So the command loads the model folder that ``persona train`` wrote,
curates it (``Personalizer.curate``: the store's curation changes), and saves it back: to a
new folder beside it, which then takes the old one's place, so the folder is never left
half written. ``show`` prints the curation that applies: the store's, when one was set."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persona._cli.common import STORE_FLAG, UsageError, open_store, print_json

if TYPE_CHECKING:
    from persona.personalizer import Curation, Personalizer

__all__ = ["register"]


def _pin(text: str) -> tuple[str, int | None]:
    """``ITEM`` or ``ITEM@POSITION`` (argparse ``type``)."""
    item, sep, pos = text.rpartition("@")
    if not sep:
        return text, None
    try:
        position = int(pos)
    except ValueError:
        position = 0
    if not item or position < 1:
        raise argparse.ArgumentTypeError(
            f"needs ITEM or ITEM@POSITION with a position from 1, e.g. sku-1@3; not {text!r}"
        )
    return item, position


def _pins(given: list[tuple[str, int | None]]) -> dict[str, int]:
    """Pins at their positions; those without one take the free positions 1, 2, ... in
    the order given."""
    taken = {pos for _, pos in given if pos is not None}
    out: dict[str, int] = {}
    free = (p for p in range(1, len(given) + len(taken) + 2) if p not in taken)
    for item, pos in given:
        if item in out:
            raise UsageError(f"--pin {item!r} is given twice; pin each item once")
        out[item] = pos if pos is not None else next(free)
    return out


def _load(args: argparse.Namespace) -> Personalizer:
    import persona

    if not (Path(args.model) / "personalizer.json").exists():
        raise UsageError(
            f"no saved model at {args.model}; train one with 'persona train --out DIR'"
        )
    store = open_store(args, existing=True)
    try:
        return persona.Personalizer.load(args.model, store)
    except BaseException:
        store.close()
        raise


def _save_in_place(p: Personalizer, folder: Path) -> None:
    """Save ``p`` to a new folder beside ``folder`` and swap it in."""
    parent = folder.resolve().parent
    new = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=parent))
    old = parent / f".{folder.name}.old-{new.name.rsplit('-', 1)[-1]}"
    try:
        p.save(new)
        os.replace(folder, old)
        os.replace(new, folder)
    except BaseException:
        if old.exists() and not folder.exists():
            os.replace(old, folder)
        shutil.rmtree(new, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _describe(curation: Curation) -> list[str]:
    lines = [f"  pinned:  {item} at position {pos}"
             for item, pos in sorted(curation.pin.items(), key=lambda kv: kv[1])]
    lines += [f"  blocked: {item}" for item in sorted(curation.block)]
    if curation.reason:
        by = f" (by {curation.by})" if curation.by else ""
        when = f", {curation.at:%Y-%m-%d %H:%M} UTC" if curation.at else ""
        lines.append(f"  reason:  {curation.reason}{by}{when}")
    return lines or ["  nothing pinned or blocked"]


def _set(args: argparse.Namespace, pin: dict[str, int], block: list[str]) -> int:
    p = _load(args)
    with p.store:
        curation = p.curate(pin=pin, block=block, reason=args.reason, by=args.by)
        _save_in_place(p, Path(args.model))
    n_pin, n_block = len(curation.pin), len(curation.block)
    print(f"pinned {n_pin} item{'s' * (n_pin != 1)} and blocked {n_block} "
          f"item{'s' * (n_block != 1)} in {args.model} (replacing the earlier curation); "
          "recorded in the audit log")
    for line in _describe(curation):
        print(line)
    return 0


def _curate_set(args: argparse.Namespace) -> int:
    if not args.pin and not args.block:
        raise UsageError("give --pin ITEM or --block ITEM (to undo curation, use "
                         "'persona curate clear')")
    return _set(args, _pins(args.pin or []), list(dict.fromkeys(args.block or [])))


def _curate_clear(args: argparse.Namespace) -> int:
    return _set(args, {}, [])


def _curate_show(args: argparse.Namespace) -> int:
    p = _load(args)
    p.store.close()
    curation = p.curation
    if args.json:
        print_json(curation.model_dump(mode="json") | {"block": sorted(curation.block)})
        return 0
    print(f"curation of {args.model}:")
    for line in _describe(curation):
        print(line)
    return 0


def register(sub: Any) -> None:
    """Add ``persona curate set|clear|show`` to ``sub``."""
    curate = sub.add_parser(
        "curate", help="pin or block items in a saved model, with a reason people read",
        description="People, not the model, choose some items: pinned items take their "
        "positions in everyone's list and say they were 'chosen by our team: <reason>'; "
        "blocked items never appear. The curation is held in the store (every worker serving "
        "the purpose applies it; recorded in its audit log) and saved in the model folder "
        "written by 'persona train'. Each 'set' replaces the earlier curation.")
    csub = curate.add_subparsers(dest="action", metavar="ACTION", required=True)
    cset = csub.add_parser(
        "set", help="pin and block items (replaces the earlier curation)",
        epilog="Example: persona curate set --model model --pin sku-1 --pin sku-7@3 "
        "--block sku-9 --reason 'Winter sale' --by merchandising")
    cset.add_argument("--store", **STORE_FLAG)
    cset.add_argument("--model", required=True, help="folder written by 'persona train'")
    cset.add_argument("--pin", action="append", type=_pin, metavar="ITEM[@POSITION]",
                      help="pin an item (at a position from 1; default the next free one); "
                      "repeat as needed")
    cset.add_argument("--block", action="append", metavar="ITEM",
                      help="never show an item; repeat as needed")
    cset.add_argument("--reason", required=True,
                      help="why, in plain words shown to people, e.g. 'Winter sale'")
    cset.add_argument("--by", help="who curated (kept in the audit log)")
    cset.set_defaults(func=_curate_set)
    clear = csub.add_parser(
        "clear", help="remove every pin and block",
        epilog="Example: persona curate clear --model model --reason 'Winter sale ended'")
    clear.add_argument("--store", **STORE_FLAG)
    clear.add_argument("--model", required=True, help="folder written by 'persona train'")
    clear.add_argument("--reason", required=True, help="why (kept in the audit log)")
    clear.add_argument("--by", help="who (kept in the audit log)")
    clear.set_defaults(func=_curate_clear)
    show = csub.add_parser("show", help="the model folder's pins, blocks and reason",
                           epilog="Example: persona curate show --model model --json")
    show.add_argument("--store", **STORE_FLAG)
    show.add_argument("--model", required=True, help="folder written by 'persona train'")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_curate_show)
