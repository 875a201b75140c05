"""Helpers of the shared-serving tests (issue 21): a shop on a file, and a serving worker
run in a second process."""

from __future__ import annotations

from typing import Any

import numpy as np

import persona
from store_helpers import Clock, shop

ITEMS = [f"sku-{i}" for i in range(24)]


def shop_file(path: str, clock: Clock | None = None) -> persona.Store:
    """40 people in 4 taste groups of 6 items each, in the file ``path``; all but p39
    consent (p39 is served the non-profiling list)."""
    store = shop(path, clock=clock)
    rng = np.random.default_rng(7)
    events = []
    for u in range(40):
        liked = rng.choice(6, size=4, replace=False) + 6 * (u % 4)
        events += [{"user": f"p{u}", "item": ITEMS[i], "feature": "purchases",
                    "at": "2026-11-01T10:00:00Z"} for i in liked]
        if u != 39:
            store.grant(f"p{u}", "personalization", source="signup form v3")
    store.ingest(events)
    store.label_items({i: f"Product {i[4:]}" for i in ITEMS})
    return store


class FakeTime:
    """A monotonic clock (seconds) the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def serving_worker(path: str, changed: Any, out: Any) -> None:
    """Run in a spawned process: serve the store's live model, report, wait until the
    parent has changed the shared state, serve again and report."""
    store = persona.Store(path, timeout=60)
    try:
        p = persona.Personalizer.live(store, refresh_every=0)
        out.put((p.model_version_, [r.item for r in p.recommend("p0", n=6)],
                 [r.item for r in p.recommend("p39", n=6)]))
        if not changed.wait(60):
            out.put(("timeout", [], []))
            return
        recs = [r.item for r in p.recommend("p0", n=6)]  # picks the change up first
        out.put((p.model_version_, recs, [r.item for r in p.recommend("p39", n=6)]))
    finally:
        store.close()
