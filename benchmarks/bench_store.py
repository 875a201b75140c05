"""Store benchmark: persona's consent-scoped store against raw sqlite3, side by side.

1,000,000 synthetic events from 50,000 people over 20,000 items with power-law item
popularity. The raw baseline does the same inserts and selects with no consent logic, no
validation, no deduplication and no audit log: a plain table with an index on the person.

    python benchmarks/bench_store.py [--events 1000000] [--batch 100000]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import persona
from _common import alternating, machine, paired_ratio, percentile_ms, write_section


def synthetic(n_events: int, n_people: int, n_items: int, seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    people = rng.integers(0, n_people, n_events)
    ranks = np.arange(1, n_items + 1)
    weights = 1.0 / ranks**1.1
    items = rng.choice(n_items, n_events, p=weights / weights.sum())
    features = np.where(rng.random(n_events) < 0.3, "purchases", "views")
    base = datetime(2026, 11, 20, tzinfo=UTC)
    seconds = rng.integers(0, 25 * 86400, n_events)
    stamps = [(base - timedelta(seconds=int(s))).isoformat() for s in seconds]
    return {
        "user": [f"person-{p}" for p in people.tolist()],
        "item": [f"sku-{i}" for i in items.tolist()],
        "feature": features.tolist(),
        "value": rng.integers(1, 5, n_events).astype(float).tolist(),
        "at": stamps,
    }


def bench_ingest_and_read(
    tmp: str, data: dict[str, list], batch: int, consenting: list[str]
) -> tuple[dict[str, Any], dict[str, Any], sqlite3.Connection, persona.Store]:
    """The same batches into raw sqlite3 and persona, alternately; then one full read each."""
    con = sqlite3.connect(str(Path(tmp) / "raw.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.execute("CREATE TABLE events (user TEXT, item TEXT, feature TEXT, value REAL, at TEXT)")
    con.execute("CREATE INDEX events_user ON events(user)")
    rows = list(
        zip(data["user"], data["item"], data["feature"], data["value"], data["at"], strict=True)
    )
    store = persona.Store(str(Path(tmp) / "persona.db"),
                          clock=lambda: datetime(2026, 11, 26, tzinfo=UTC))
    store.define_purpose("personalization", description="Recommend products")
    store.define_feature(
        "purchases", purposes=["personalization"], category="purchase history", retention_days=730
    )
    store.define_feature(
        "views", purposes=["personalization"], category="browsing history", retention_days=30
    )
    records = [
        {"user": u, "item": i, "feature": f, "value": v, "at": a}
        for u, i, f, v, a in zip(
            data["user"], data["item"], data["feature"], data["value"], data["at"], strict=True
        )
    ]

    def raw_batch(part: list[tuple]) -> None:
        con.execute("BEGIN")
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", part)
        con.execute("COMMIT")

    starts = range(0, len(rows), batch)
    # about 3% of the views are older than their 30-day retention on the store's clock:
    # ingest counts them, does not store them and says so (RetentionWarning), batch by batch
    warnings.simplefilter("ignore", persona.errors.RetentionWarning)
    raw_t, per_t, _, _ = alternating([
        (lambda s=s: raw_batch(rows[s : s + batch]),
         lambda s=s: store.ingest(records[s : s + batch]))
        for s in starts
    ])
    t = time.perf_counter()
    for u in consenting:
        store.grant(u, "personalization", source="benchmark")
    grants = time.perf_counter() - t
    view = store.scope("personalization")

    def raw_read() -> int:
        fetched = con.execute("SELECT user, item, feature, value, at FROM events").fetchall()
        users, items, _, values, _ = zip(*fetched, strict=True)
        np.unique(np.array(users, dtype=object), return_inverse=True)
        np.unique(np.array(items, dtype=object), return_inverse=True)
        np.asarray(values)
        return len(fetched)

    raw_rows = raw_read()  # once each to warm the page caches, then timed
    per_rows = len(view.events())
    (raw_read_s,), (per_read_s,), _, _ = alternating([(raw_read, view.events)])
    raw = {"ingest_s": sum(raw_t), "read_s": raw_read_s, "read_rows": raw_rows}
    per = {"ingest_s": sum(per_t), "read_s": per_read_s, "read_rows": per_rows,
           "grants_s": grants, "grants": len(consenting),
           "segments": store.stats()["segments"], "view": view}
    return raw, per, con, store


def bench_history(con: sqlite3.Connection, view: persona.ScopedView, probe: list[str]) -> dict:
    """One person's history, raw and persona alternately (taking turns at going first),
    so that both see the same moments of this VM, whose speed changes from one second to
    the next; the probe list is long enough (several seconds) to span such changes."""
    raw, per, _, _ = alternating([
        (lambda u=u: con.execute(
            "SELECT item, feature, value, at FROM events WHERE user = ?", (u,)).fetchall(),
         lambda u=u: view.history(u))
        for u in probe
    ])
    return {"raw_p50": percentile_ms(raw, 50), "raw_p99": percentile_ms(raw, 99),
            "p50": percentile_ms(per, 50), "p99": percentile_ms(per, 99),
            "paired": paired_ratio(per, raw)[0]}


def bench_bulk_consent(tmp: str, n_grants: int, chunk: int) -> dict[str, Any]:
    """A consent platform's export of ``n_grants`` people, each granting one purpose, at
    times over the last year: ``store.grant_many`` in chunks of ``chunk`` rows into one
    growing store, against raw sqlite3 writing the same rows (person, purpose, time,
    source) into one indexed table, chunk by chunk, alternately."""
    con = sqlite3.connect(str(Path(tmp) / "raw-consent.db"), isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = FULL")
    con.execute("CREATE TABLE consent (user TEXT, purpose TEXT, at TEXT, source TEXT)")
    con.execute("CREATE INDEX consent_user ON consent(user)")
    store = persona.Store(str(Path(tmp) / "persona-consent.db"),
                          clock=lambda: datetime(2026, 11, 26, tzinfo=UTC))
    store.define_purpose("personalization", description="Recommend products")
    base = datetime(2026, 11, 20, tzinfo=UTC)
    rng = np.random.default_rng(2)
    seconds = rng.integers(0, 365 * 86400, n_grants).tolist()
    rows = [
        {"user": f"member-{k}", "purpose": "personalization",
         "at": (base - timedelta(seconds=s)).isoformat()}
        for k, s in enumerate(seconds)
    ]
    raw_rows = [(r["user"], r["purpose"], r["at"], "CMP export") for r in rows]

    def raw_chunk(part: list[tuple]) -> None:
        con.execute("BEGIN")
        con.executemany("INSERT INTO consent VALUES (?, ?, ?, ?)", part)
        con.execute("COMMIT")

    starts = range(0, n_grants, chunk)
    raw_t, per_t, _, _ = alternating([
        (lambda s=s: raw_chunk(raw_rows[s : s + chunk]),
         lambda s=s: store.grant_many(rows[s : s + chunk], source="CMP export"))
        for s in starts
    ])
    assert store.audit.verify()
    # record_consents, the general form (withdrawals and declines too), on the same store
    more = [{**r, "user": f"other-{k}", "action": "grant", "source": "CMP export"}
            for k, r in enumerate(rows[:chunk])]
    t = time.perf_counter()
    store.record_consents(more)
    record_s = time.perf_counter() - t
    # one grant per call, as before grant_many, on the same store
    t = time.perf_counter()
    for k in range(2000):
        store.grant(f"single-{k}", "personalization", source="CMP export")
    single_s = (time.perf_counter() - t) / 2000
    con.close()
    store.close()
    return {"raw_t": raw_t, "per_t": per_t, "record_s": record_s, "record_n": len(more),
            "single_s": single_s}


def bench_parquet(tmp: str, view: persona.ScopedView, repeats: int, parts: int = 16) -> dict:
    """``view.to_parquet(folder, partitions=parts)`` (read with consent, partition by a
    hash of the person, write, digest every file, one audit entry) against pyarrow
    writing the numpy columns of one ``view.events()``, already read, as ``parts`` slices
    into as many files (no consent, hashing, digests or audit), alternately."""
    import pyarrow.parquet as pq

    cols = view.events()
    raw_dir, per_dir = Path(tmp) / "raw-parquet", Path(tmp) / "persona-parquet"
    raw_dir.mkdir()

    def raw() -> None:
        table = cols.to_arrow()
        bounds = np.linspace(0, table.num_rows, parts + 1).astype(int)
        for p in range(parts):
            pq.write_table(table.slice(bounds[p], bounds[p + 1] - bounds[p]),
                           str(raw_dir / f"part-{p:05d}.parquet"))

    def per() -> None:
        view.to_parquet(per_dir, partitions=parts, overwrite=True)

    raw(), per()  # once each to warm up, then timed
    raw_t, per_t, _, _ = alternating([(raw, per)] * repeats)
    ratio, (lo, hi) = paired_ratio(per_t, raw_t)
    return {"rows": len(cols), "raw_s": float(np.median(raw_t)),
            "per_s": float(np.median(per_t)), "ratio": ratio, "ci": (lo, hi), "parts": parts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[100_000, 10_000])
    parser.add_argument("--grants", type=int, default=1_000_000,
                        help="people in the bulk consent import (0: skip it)")
    parser.add_argument("--grant-chunk", type=int, default=100_000)
    parser.add_argument("--parquet-repeats", type=int, default=7,
                        help="timed to_parquet exports against raw pyarrow (0: skip them)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    data = synthetic(args.events, args.people, args.items)
    rng = np.random.default_rng(1)
    people = sorted(set(data["user"]))
    consenting = [p for p in people if rng.random() < 0.9]
    probe = list(rng.choice(consenting, 10_000))
    lines = [
        f"Machine: {machine()}.",
        "",
        f"{args.events:,} synthetic events, {len(people):,} people, {args.items:,} items (power-law "
        "popularity); 90% of people consent. Raw baseline: plain `sqlite3` table with an index "
        "on the person, same WAL and `synchronous=FULL`, no validation, consent, dedup or audit. "
        "persona: pydantic validation, event-id deduplication, consent-scoped read, audit entry "
        "per call. Both write one transaction per batch. Raw and persona run alternately, "
        "batch by batch and read by read, taking turns at going first, so that both see the "
        "same moments of this VM (its speed changes from one second to the next).",
        "",
        "| batch | metric | raw sqlite3 | persona | ratio (persona/raw) | goal |",
        "|---|---|---|---|---|---|",
    ]
    for batch in args.batch:
        with tempfile.TemporaryDirectory() as tmp:
            raw, per, con, store = bench_ingest_and_read(tmp, data, batch, consenting)
            view = per.pop("view")
            hist = bench_history(con, view, probe)
            parquet = (bench_parquet(tmp, view, args.parquet_repeats)
                       if args.parquet_repeats else None)
            con.close()
            store.close()
        ri, pi = args.events / raw["ingest_s"], args.events / per["ingest_s"]
        rr, pr = raw["read_rows"] / raw["read_s"], per["read_rows"] / per["read_s"]
        print(f"batch {batch}: raw {raw}\n            persona {per}\n            history {hist}")
        lines += [
            f"| {batch:,} | ingest, events/s | {ri:,.0f} | {pi:,.0f} | time x{raw['ingest_s'] and per['ingest_s'] / raw['ingest_s']:.2f} | >= 250,000/s and time <= 1.5x |",
            f"| {batch:,} | read all into numpy, events/s | {rr:,.0f} (all rows, no consent) | {pr:,.0f} ({per['read_rows']:,} consented rows) | speed x{pr / rr:.2f} | >= 1,000,000/s |",
            f"| {batch:,} | one person's history p50 / p99, ms ({len(probe):,} reads each, alternating) | {hist['raw_p50']:.3f} / {hist['raw_p99']:.3f} | {hist['p50']:.3f} / {hist['p99']:.3f} | x{hist['p50'] / hist['raw_p50']:.2f} (paired x{hist['paired']:.2f}) | p50 <= 0.3 ms |",
        ]
        lines.append(
            f"| {batch:,} | consent grants (one transaction each) | | {per['grants'] / per['grants_s']:,.0f}/s | | |"
        )
        if parquet is not None:
            print(f"            parquet {parquet}")
            lo, hi = parquet["ci"]
            lines.append(
                f"| {batch:,} | `view.to_parquet(folder, partitions={parquet['parts']})`, "
                f"events/s (median of {args.parquet_repeats}, alternating; raw: pyarrow "
                f"writes the columns of one `events()`, already read, as {parquet['parts']} "
                f"slices) | {parquet['rows'] / parquet['raw_s']:,.0f} | "
                f"{parquet['rows'] / parquet['per_s']:,.0f} (read, consent, hash, digests, "
                f"audit) | time x{parquet['ratio']:.2f} (95% CI {lo:.2f}-{hi:.2f}) | |"
            )
    if args.grants:
        with tempfile.TemporaryDirectory() as tmp:
            bulk = bench_bulk_consent(tmp, args.grants, args.grant_chunk)
        print(f"bulk consent: {bulk}")
        raw_rate = args.grants / sum(bulk["raw_t"])
        per_rate = args.grants / sum(bulk["per_t"])
        first, last = (args.grant_chunk / bulk["per_t"][0],
                       args.grant_chunk / bulk["per_t"][-1])
        ratio, (lo, hi) = paired_ratio(bulk["per_t"], bulk["raw_t"])
        lines += [
            "",
            f"Bulk consent import: {args.grants:,} people each granting one purpose (times "
            f"over a year), `store.grant_many` in chunks of {args.grant_chunk:,} rows into one "
            "growing store, each grant in the person's consent history with its hash-chained "
            "audit entry, in one transaction per chunk. Raw baseline: the same rows (person, "
            "purpose, time, source) into one `sqlite3` table with an index on the person, "
            "same WAL and `synchronous=FULL`, no state, pseudonyms or audit log. Chunks "
            "alternate between raw and persona, taking turns at going first.",
            "",
            "| metric | raw sqlite3 | persona | ratio (persona/raw) | goal |",
            "|---|---|---|---|---|",
            f"| `grant_many`, grants/s over all {args.grants:,} | {raw_rate:,.0f} | "
            f"{per_rate:,.0f} | time x{ratio:.2f}"
            + (f" (95% CI {lo:.2f}-{hi:.2f})" if np.isfinite(lo) and np.isfinite(hi) else "")
            + " | "
            ">= 50,000/s |",
            f"| `grant_many`, grants/s of the first and the last chunk | | {first:,.0f} / "
            f"{last:,.0f} | | |",
            f"| `record_consents` of {bulk['record_n']:,} choices (the same writer), "
            f"choices/s | | {bulk['record_n'] / bulk['record_s']:,.0f} | | |",
            f"| `grant`, one call (one transaction) each, on the same store, grants/s | | "
            f"{1 / bulk['single_s']:,.0f} | | |",
        ]
    print("\n".join(lines))
    if not args.no_write:
        write_section("Consent-scoped store (issue 2)", "\n".join(lines))


if __name__ == "__main__":
    main()
