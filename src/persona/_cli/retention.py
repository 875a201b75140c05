"""``persona retention``: how long each feature's events are kept, and the retention pass
that deletes what is past it."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from persona._cli.common import STORE_FLAG, open_store, print_json

if TYPE_CHECKING:
    from persona.store import Store

__all__ = ["register"]


def _policy(store: Store) -> dict[str, Any]:
    now = datetime.now(UTC)
    features = []
    for name, spec in sorted(store.features.items()):
        days = spec.retention_days
        features.append({
            "feature": name,
            "category": spec.category,
            "purposes": list(spec.purposes),
            "retention_days": days,
            "cutoff": None if days is None else (now - timedelta(days=days)).isoformat(),
        })
    shown = store.shown_retention_days
    return {
        "features": features,
        "shown": {
            "retention_days": shown,
            "cutoff": None if shown is None else (now - timedelta(days=shown)).isoformat(),
        },
    }


def _kept(days: int | None, cutoff: str | None, what: str = "events") -> str:
    return "kept until erasure" if days is None or cutoff is None else (
        f"{days} days ({what} before {cutoff[:19].replace('T', ' ')} UTC are past it)")


def _show(args: argparse.Namespace) -> int:
    with open_store(args, existing=True) as store:
        policy = _policy(store)
    if args.json:
        print_json(policy)
        return 0
    if not policy["features"]:
        print(f"no features are defined in {args.store}")
    width = max((len(f["feature"]) for f in policy["features"]), default=0)
    for f in policy["features"]:
        print(f"{f['feature']:<{width}}  {_kept(f['retention_days'], f['cutoff'])}")
    shown = policy["shown"]
    print(f"shown records: {_kept(shown['retention_days'], shown['cutoff'], 'records')}")
    print("reads already leave out what is past retention; 'persona retention apply' "
          "deletes it from the file")
    return 0


def _apply(args: argparse.Namespace) -> int:
    with open_store(args, existing=True) as store:
        head, _ = store.audit.head()
        store.apply_retention()
        # the pass's own audit entry (the one after the head) says what it deleted
        detail = store.audit.entries(action="apply_retention", since=head)[-1].detail
    removed = {"events_deleted": int(detail["events_deleted"]),
               "shown_deleted": int(detail["shown_deleted"])}
    if args.json:
        print_json(removed)
        return 0
    print(f"removed {removed['events_deleted']:,} events and {removed['shown_deleted']:,} "
          f"shown records past their retention from {args.store}")
    return 0


def register(sub: Any) -> None:
    """Add ``persona retention show`` and ``persona retention apply`` to ``sub``."""
    retention = sub.add_parser(
        "retention", help="show retention per feature; delete what is past it",
        description="Each feature keeps its events for its retention_days (set with "
        "'persona feature add ... --retention-days N'). Reads leave out older events at "
        "once; the retention pass deletes them from the file.")
    rsub = retention.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = rsub.add_parser(
        "show", help="each feature's retention and the time before which events are past it",
        epilog="Example: persona --store shop.db retention show --json")
    show.add_argument("--store", **STORE_FLAG)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)
    apply = rsub.add_parser(
        "apply", help="run the retention pass now and print what it deleted",
        description="Delete the events past their feature's retention and the shown records "
        "past theirs (recorded in the audit log). Run it on a schedule, e.g. daily.",
        epilog="Example (cron, daily at 03:00): 0 3 * * * persona --store /srv/shop.db "
        "retention apply")
    apply.add_argument("--store", **STORE_FLAG)
    apply.add_argument("--json", action="store_true",
                       help="print {events_deleted, shown_deleted}")
    apply.set_defaults(func=_apply)
