"""Personalizer benchmark: recommend with live consent check and explanations, beside raw
implicit's ``recommend`` on the same factors, in one process.

    python benchmarks/bench_personalizer.py [--synthetic] [--calls 2000]

Data: UCI Online Retail (cleaned as in ../shared/data/README.md) in a persona store, every
customer consenting; optionally a synthetic 100,000 x 20,000 store with 5,000,000 events.
The raw baseline is ``implicit``'s ALS ``recommend(userid, user_items[userid], N=10)`` with
the served user vectors and item factors copied from persona's model (no consent check, no
filtering of blocked items, no explanations). BLAS runs on one thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
import persona
from _common import machine, percentile_ms, write_section
from _datasets import SHARED


def retail_events() -> pd.DataFrame:
    df = pd.read_csv(
        SHARED / "online-retail" / "online_retail.csv.gz",
        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "Int64"},
    )
    df = df[df["CustomerID"].notna() & (df["Quantity"] > 0)]
    df = df[~df["InvoiceNo"].str.startswith("C")].reset_index(drop=True)
    return pd.DataFrame(
        {
            "id": "line-" + df.index.astype(str),
            "user": df["CustomerID"].astype(str).astype(object),
            "item": df["StockCode"].astype(object),
            "feature": "purchases",
            "value": 1.0,
            "at": pd.to_datetime(df["InvoiceDate"]).dt.tz_localize("Europe/London"),
        }
    ), dict(
        zip(df["StockCode"], df["Description"].fillna("").str.strip().str.title(), strict=False)
    )


def synthetic_events(n_users: int, n_items: int, n_events: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    users = rng.integers(0, n_users, n_events)
    w = 1.0 / np.arange(1, n_items + 1) ** 1.05
    items = rng.choice(n_items, n_events, p=w / w.sum())
    at = pd.Timestamp("2026-11-01", tz="UTC") - pd.to_timedelta(
        rng.integers(0, 86400 * 300, n_events), unit="s"
    )
    return pd.DataFrame(
        {
            "user": pd.Series(users).map(lambda u: f"u{u}").astype(object),
            "item": pd.Series(items).map(lambda i: f"i{i}").astype(object),
            "feature": "purchases",
            "value": 1.0,
            "at": at,
        }
    )


def build(
    events: pd.DataFrame, labels: dict[str, str], folder: Path, clock: datetime
) -> persona.Store:
    store = persona.Store(folder / "bench.db", durability="normal", clock=lambda: clock)
    store.define_purpose("personalization", description="Recommend products from what you buy")
    store.define_feature(
        "purchases", purposes=["personalization"], category="purchase history", retention_days=None
    )
    for start in range(0, len(events), 500_000):
        store.ingest(events.iloc[start : start + 500_000])
    for u in events["user"].unique():
        store.grant(u, "personalization", source="benchmark")
    good = {k: v for k, v in labels.items() if isinstance(v, str) and v.strip()}
    if good:
        store.label_items(good)
    return store


def bench(name: str, store: persona.Store, calls: int, factors: int, iterations: int) -> list[str]:
    p = persona.Personalizer(
        store,
        model=persona.ALS(
            factors=factors,
            iterations=iterations,
            regularization=0.05,
            random_state=0,
            num_threads=1,
        ),
    )
    t = time.perf_counter()
    p.fit()
    fit_s = time.perf_counter() - t
    p.curate(block=[str(p.model_.items_[0])], reason="benchmark block")
    # the same fitted state, serving without recording what it shows
    quiet = persona.Personalizer(store, model=p.model, record_shown=False)
    quiet._state, quiet._curation = p._state, p._curation
    model = p.model_
    rng = np.random.default_rng(1)
    users = [str(u) for u in rng.choice(model.users_, calls)]
    raw = AlternatingLeastSquares(factors=factors, iterations=1, random_state=0)
    raw.item_factors = np.ascontiguousarray(model.item_factors_, dtype=np.float32)
    raw.user_factors = np.ascontiguousarray(
        model._user_vectors32(np.arange(len(model.users_))), dtype=np.float32
    )
    ui = model.history_.tocsr()
    for u in users[:50]:  # warm both
        p.recommend(u)
        raw.recommend(model._uidx[u], ui[model._uidx[u]], N=10)

    def timed(fn, items) -> list[float]:
        out = []
        for x in items:
            t0 = time.perf_counter()
            fn(x)
            out.append(time.perf_counter() - t0)
        return out

    lat_p = timed(lambda u: p.recommend(u, n=10), users)
    store.flush()
    lat_quiet = timed(lambda u: quiet.recommend(u, n=10), users)
    store.flush()
    rows = [model._uidx[u] for u in users]
    lat_raw = timed(lambda r: raw.recommend(r, ui[r], N=10), rows)
    view = store.scope("personalization")
    part_consent = timed(lambda u: view.person_for_serving(u), users[:500])
    part_snapshot = timed(
        lambda u: store.enqueue_serving(store.read_for_serving("personalization", u).pending),
        users[:500],
    )
    store.flush()
    key = store._key
    from persona.store._shown import Pending, reasons_digest

    def record_only(u: str) -> None:
        recs = quiet.recommend(u, n=10)
        t1 = time.perf_counter()
        Pending(pseudonym="x", code=1, detail={}, at=datetime.now(UTC), purpose="p",
                recs=persona.explain.shown_items(recs), model_version="v").prepare(key)
        part_record.append(time.perf_counter() - t1)

    part_record: list[float] = []
    for u in users[:500]:
        record_only(u)

    def digests_only(u: str) -> None:
        rows = persona.explain.shown_items(quiet.recommend(u, n=10))  # texts rendered
        t1 = time.perf_counter()
        for row in rows:
            reasons_digest(key, row["reasons"])
        part_digest.append(time.perf_counter() - t1)

    part_digest: list[float] = []
    for u in users[:500]:
        digests_only(u)
    store.flush()
    served = [quiet.recommend(u) for u in users[:200]]
    json_bytes = [len(recs.model_dump_json().encode()) for recs in served]
    item_bytes = [len(("[" + ",".join(r.model_dump_json() for r in recs) + "]").encode())
                  for recs in served]
    del served
    store.flush()
    shown_bytes = store._con.execute(
        "SELECT avg(length(CAST(body AS BLOB))) FROM shown").fetchone()[0] or 0.0
    part_score = timed(
        lambda u: model.recommend(u, 10, exclude=p.curation.block, explain=False), users[:500]
    )
    part_explained = timed(lambda u: model.recommend(u, 10, exclude=p.curation.block), users[:500])
    def after_the_call(read) -> list[float]:
        """Time reading each call's result right after it, as a request handler does
        (the result is dropped afterwards, not kept alive for the whole run)."""
        out = []
        for u in users[:500]:
            recs = p.recommend(u)
            t0 = time.perf_counter()
            read(recs)
            out.append(time.perf_counter() - t0)
        return out

    part_text = after_the_call(lambda recs: [r.explanation.text for r in recs])
    part_json = after_the_call(lambda recs: [r.model_dump_json() for r in recs])

    def throughput(threads: int) -> float:
        chunks = [users[k::threads] for k in range(threads)]
        workers = [threading.Thread(target=lambda c=c: [p.recommend(u) for u in c]) for c in chunks]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return len(users) / (time.perf_counter() - t0)

    tp1, tp2 = throughput(1), throughput(2)
    store.flush()
    # a restarted service: the saved Personalizer loaded, each person's first request
    with tempfile.TemporaryDirectory() as saved:
        restarted = persona.Personalizer.load(p.save(Path(saved) / "p"), store)
        firsts = list(dict.fromkeys(users))
        lat_loaded = timed(lambda u: restarted.recommend(u, n=10), firsts)
        store.flush()
    p50, p99 = percentile_ms(lat_p, 50), percentile_ms(lat_p, 99)
    q50, q99 = percentile_ms(lat_quiet, 50), percentile_ms(lat_quiet, 99)
    r50, r99 = percentile_ms(lat_raw, 50), percentile_ms(lat_raw, 99)
    print(
        f"{name}: fit {fit_s:.1f}s persona p50 {p50:.3f} p99 {p99:.3f} (not recording "
        f"{q50:.3f} / {q99:.3f}); raw p50 {r50:.3f} p99 {r99:.3f}"
    )
    return [
        f"| {name} | `recommend` p50 / p99, ms (recording what was shown: the default) | {r50:.3f} / {r99:.3f} | {p50:.3f} / {p99:.3f} | x{p50 / r50:.1f} / x{p99 / r99:.1f} | p50 <= 1 ms, p99 <= 5 ms |",
        f"| {name} | `recommend` p50 / p99, ms, `record_shown=False` | | {q50:.3f} / {q99:.3f} | | |",
        f"| {name} | `recommend` p50 / p99, ms, after a restart (`Personalizer.load`): each person's first request | | {percentile_ms(lat_loaded, 50):.3f} / {percentile_ms(lat_loaded, 99):.3f} | | |",
        f"| {name} | JSON of 10 recommended items (default explanations, `recs.model_dump_json()`: the shared context once), median / max bytes | | {np.median(json_bytes):,.0f} / {max(json_bytes):,} | | <= 5 KB |",
        f"| {name} | the same written item by item (`r.model_dump_json()` of each), median bytes | | {np.median(item_bytes):,.0f} | | |",
        f"| {name} | shown record of one request (10 items), mean bytes in the store | | {shown_bytes:,.0f} | | |",
        f"| {name} | throughput, 1 thread / 2 threads, calls/s | | {tp1:,.0f} / {tp2:,.0f} | | |",
        f"| {name} | part: consent check + person lineage + not-interested feedback (one store read with its audit entry), p50 ms | | {percentile_ms(part_consent, 50):.3f} | | |",
        f"| {name} | part: the same in the serving path: a read snapshot, its audit entry queued for the group commit, p50 ms | | {percentile_ms(part_snapshot, 50):.3f} | | |",
        f"| {name} | part: recording (`shown_items`: the texts of the 10 items rendered for the list at once; reasons digests; JSON row), p50 ms | | {percentile_ms(part_record, 50):.3f} | | |",
        f"| {name} | part: of which the 10 reasons digests (text already rendered), p50 ms | | {percentile_ms(part_digest, 50):.3f} | | |",
        f"| {name} | part: scoring + filtering (model, no explanation), p50 ms | | {percentile_ms(part_score, 50):.3f} | | |",
        f"| {name} | part: scoring + filtering + explanations, p50 ms | | {percentile_ms(part_explained, 50):.3f} | | |",
        f"| {name} | after the call: `.text` of all 10 explanations, p50 / p99 ms | | {percentile_ms(part_text, 50):.3f} / {percentile_ms(part_text, 99):.3f} | | |",
        f"| {name} | after the call: full JSON of all 10 (every reason), p50 / p99 ms | | {percentile_ms(part_json, 50):.3f} / {percentile_ms(part_json, 99):.3f} | | |",
        f"| {name} | fit (ALS {factors} factors, {iterations} iterations, 1 thread, incl. solving every served vector) | | {fit_s:.1f} s | | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--synthetic", action="store_true", help="also run 100k x 20k, 5M events")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    lines = [
        f"Machine: {machine()}.",
        "",
        "persona: `Personalizer.recommend(user, n=10)` with the live consent check, person "
        "lineage, blocked items, not-interested feedback, an explanation on every item and "
        "(by default) a record of what was shown (its audit entry and the record "
        "group-committed). "
        "Raw: implicit `recommend(userid, user_items[userid], N=10)` on the same factors. "
        "BLAS at one thread.",
        "",
        "| data | metric | raw implicit | persona | ratio | goal |",
        "|---|---|---|---|---|---|",
    ]
    with threadpool_limits(1, "blas"), tempfile.TemporaryDirectory() as tmp:
        events, labels = retail_events()
        store = build(events, labels, Path(tmp), datetime(2011, 12, 10, tzinfo=UTC))
        del events  # a service keeps the store, not the ingested frame (GC scans it otherwise)
        lines += bench("Online Retail", store, args.calls, 64, 15)
        store.close()
        if args.synthetic:
            folder = Path(tmp) / "synthetic"
            folder.mkdir()
            store = build(
                synthetic_events(100_000, 20_000, 5_000_000),
                {},
                folder,
                datetime(2026, 11, 26, tzinfo=UTC),
            )
            lines += bench("synthetic 100k x 20k, 5M events", store, args.calls, 64, 15)
            store.close()
    print("\n".join(lines))
    if not args.no_write:
        write_section("Personalizer serving (issue 6)", "\n".join(lines))


if __name__ == "__main__":
    main()
