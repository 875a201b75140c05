"""The end-to-end demo behind ``persona demo`` (and ``make demo``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import persona

__all__ = ["run_store_walkthrough"]

# (person, item, feature, value, days ago)
_EVENTS = [
    ("ana", "hiking-boots", "purchases", 1.0, 55),
    ("ana", "rain-jacket", "purchases", 1.0, 37),
    ("ana", "trail-socks", "views", 3.0, 6),
    ("ben", "espresso-maker", "purchases", 1.0, 76),
    ("ben", "coffee-beans", "purchases", 2.0, 25),
    ("ben", "milk-frother", "views", 1.0, 5),
    ("cleo", "yoga-mat", "purchases", 1.0, 88),
    ("cleo", "water-bottle", "views", 2.0, 4),
    ("dev-42", "hiking-boots", "purchases", 1.0, 21),
    ("dev-42", "tent", "views", 1.0, 3),
]


def run_store_walkthrough(folder: Path, out: TextIO) -> Path:
    """Walk through the consent-scoped store; returns the path of the store file."""

    def say(text: str = "") -> None:
        print(text, file=out)

    path = folder / "shop.db"
    if path.exists():
        path.unlink()
    store = persona.Store(path)
    say(f"persona {persona.__version__}: consent-scoped feature store walkthrough")
    say(f"Store file: {path}")
    say()
    store.define_purpose(
        "personalization", description="Recommend products from what you view and buy"
    )
    store.define_purpose("analytics", description="Count visits to improve the shop")
    store.define_feature(
        "purchases",
        purposes=["personalization", "analytics"],
        category="purchase history",
        retention_days=730,
    )
    store.define_feature(
        "views", purposes=["personalization"], category="browsing history", retention_days=30
    )
    say("Purposes: " + ", ".join(store.purposes))
    for name, spec in store.features.items():
        say(
            f"  feature {name!r} ({spec.category}) may serve: {', '.join(spec.purposes)}; "
            f"kept {spec.retention_days} days"
        )

    store.grant("ana", "personalization", source="signup form v3", notice_version="2026-10")
    store.grant("ben", "personalization", source="cookie banner", notice_version="2026-10")
    store.grant("dev-42", "personalization", source="app settings")
    store.decline("cleo", "personalization", source="cookie banner")
    now = datetime.now(UTC).replace(microsecond=0)
    events = [
        {"user": u, "item": i, "feature": f, "value": v, "at": now - timedelta(days=d, hours=2)}
        for u, i, f, v, d in _EVENTS
    ]
    report = store.ingest(events)
    say()
    say(f"Ingested {report.inserted} events ({report.duplicates} duplicates).")
    again = store.ingest(events)
    say(f"Sent the same batch again: {again.inserted} stored, {again.duplicates} duplicates.")
    try:
        store.ingest(
            [
                {
                    "user": "ana",
                    "item": "tent",
                    "feature": "purchases",
                    "value": float("nan"),
                    "at": now.replace(tzinfo=None),
                }
            ]
        )
    except persona.ValidationError as exc:
        say(f"A bad batch is refused whole: {exc}")

    view = store.scope("personalization")
    cols = view.events()
    say()
    say(
        f"Read for 'personalization': {len(cols)} events from {len(cols.users)} people "
        f"({', '.join(sorted(cols.users))}); cleo declined, so her data is not read."
    )
    lineage = view.lineage
    say(
        f"  lineage: purpose {lineage.purpose!r}, read at {lineage.read_at:%Y-%m-%d %H:%M} UTC, "
        f"consent granted by {lineage.consent.granted}, declined by {lineage.consent.declined}; "
        f"audit entry #{lineage.audit_seq}"
    )

    store.withdraw("ben", "personalization", source="privacy settings")
    cols = view.events()
    people = ", ".join(sorted(cols.users))
    say(f"ben withdrew consent. The next read sees {len(cols.users)} people: {people}.")

    export_path = folder / "export-ana.json"
    export_path.write_text(json.dumps(store.export("ana"), indent=2))
    say(f"ana's data export (GDPR Art. 15/20): {export_path}")

    erased = store.erase("dev-42")
    say(
        f"dev-42 asked to be erased: {erased.events} events and {erased.consent_events} consent "
        f"records removed; the audit log keeps only the pseudonym {erased.subject[:12]}..."
    )
    raw = b"".join(p.read_bytes() for p in folder.glob("shop.db*"))
    say(f"  the store file still contains 'dev-42': {b'dev-42' in raw}")
    try:
        store.ingest([{"user": "dev-42", "item": "tent", "feature": "views", "at": now}])
    except persona.SuppressedSubjectError:
        say("  new events for dev-42 are refused until they grant consent again.")

    say()
    say(f"Audit log: {len(store.audit)} entries, hash chain intact: {store.audit.verify()}")
    for entry in store.audit.entries()[-5:]:
        say(f"  #{entry.seq} {entry.action} {json.dumps(entry.detail)[:70]}")
    store.close()
    say()
    say(f"Files are in {folder}")
    return path
