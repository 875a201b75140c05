"""Serving under load: several processes serving from one store file while another ingests.

    python benchmarks/bench_serving.py [--seconds 60] [--servers 4] [--rate 1000]

Data: a synthetic store (20,000 people, 5,000 items with power-law popularity, 400,000
events, everyone consenting); an ALS Personalizer (32 factors) fitted and saved once. Then,
for ``--seconds``, ``--servers`` processes each load the saved Personalizer on the same
store file and call ``recommend(user, n=10)`` for random people in a closed loop (consent
checked, explanations, what was shown recorded: the defaults), while one process ingests
single events (one ``ingest`` call each, the default durability) paced at ``--rate`` per
second. At the end every event the ingester was told was stored is looked for in the store.

Raw baseline, the same layout on plain ``sqlite3`` (WAL, ``synchronous=NORMAL`` for the
readers' writes, ``FULL`` for the ingester's): each server request reads the person's
consent row and events (indexed by person), scores the 5,000 items with numpy and keeps the
top 10, and writes no audit; the ingester inserts one event per transaction. It is the
floor of the same work on this machine, with none of persona's guarantees.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import persona
from _common import machine, write_section

PEOPLE, ITEMS, EVENTS, FACTORS = 20_000, 5_000, 400_000, 32
START = datetime(2026, 11, 1, tzinfo=UTC)


def synthetic(seed: int = 0) -> tuple[list[str], list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, PEOPLE, EVENTS)
    w = 1.0 / np.arange(1, ITEMS + 1) ** 1.05
    items = rng.choice(ITEMS, EVENTS, p=w / w.sum())
    seconds = rng.integers(0, 86400 * 300, EVENTS)
    return ([f"u{u}" for u in users.tolist()], [f"i{i}" for i in items.tolist()], seconds)


def build_persona(folder: Path) -> None:
    users, items, seconds = synthetic()
    store = persona.Store(folder / "persona.db")
    store.define_purpose("personalization", description="Recommend products from what you buy")
    store.define_feature("purchases", purposes=["personalization"],
                         category="purchase history", retention_days=None)
    store.grant_many([{"user": f"u{k}", "purpose": "personalization"} for k in range(PEOPLE)],
                     source="benchmark")
    events = [{"user": u, "item": i, "feature": "purchases", "value": 1.0,
               "at": (START - timedelta(seconds=int(s))).isoformat()}
              for u, i, s in zip(users, items, seconds, strict=True)]
    for k in range(0, len(events), 100_000):
        store.ingest(events[k : k + 100_000])
    p = persona.Personalizer(store, model=persona.ALS(
        factors=FACTORS, iterations=10, regularization=0.05, random_state=0, num_threads=1))
    p.fit()
    p.save(folder / "model")
    store.close()


def build_raw(folder: Path) -> None:
    users, items, seconds = synthetic()
    con = sqlite3.connect(folder / "raw.db", isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("CREATE TABLE consent (user TEXT PRIMARY KEY, action TEXT)")
    con.execute("CREATE TABLE events (user TEXT, item INTEGER, value REAL, at INTEGER)")
    con.execute("CREATE INDEX events_user ON events(user)")
    con.execute("BEGIN")
    con.executemany("INSERT INTO consent VALUES (?, 'grant')",
                    [(f"u{k}",) for k in range(PEOPLE)])
    con.executemany("INSERT INTO events VALUES (?, ?, 1.0, ?)",
                    zip(users, (int(i[1:]) for i in items), seconds.tolist(), strict=True))
    con.execute("COMMIT")
    con.close()
    rng = np.random.default_rng(1)
    np.savez(folder / "raw-factors.npz",
             users=rng.standard_normal((PEOPLE, FACTORS)).astype(np.float32),
             items=rng.standard_normal((ITEMS, FACTORS)).astype(np.float32))


def _pace(start: float) -> None:
    while time.time() < start:
        time.sleep(0.001)


def _wait_turn(start: float, k: int, rate: float) -> None:
    """Open loop: request k is due at start + k / rate (0: closed loop, no wait)."""
    if rate:
        due = start + k / rate
        now = time.time()
        if due > now:
            time.sleep(due - now)


def _serve_loop(start: float, seconds: float, rate: float, people: list[Any],
                request: Any) -> dict[str, Any]:
    """``request(person)`` for people in turn from ``start`` for ``seconds``, paced at
    ``rate`` (0: back to back); each call's latency and any error kept."""
    lat: list[float] = []
    errors: list[str] = []
    _pace(start)
    end = start + seconds
    k = 0
    while time.time() < end:
        _wait_turn(start, k, rate)
        t = time.perf_counter()
        try:
            request(people[k % len(people)])
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        lat.append(time.perf_counter() - t)
        k += 1
    return {"lat": lat, "errors": errors}


def serve_persona(folder: str, start: float, seconds: float, seed: int,
                  rate: float) -> dict[str, Any]:
    store = persona.Store(Path(folder) / "persona.db")
    p = persona.Personalizer.load(Path(folder) / "model", store)
    rng = np.random.default_rng(seed)
    people = [f"u{k}" for k in rng.integers(0, PEOPLE, 200_000).tolist()]
    for u in people[:20]:
        p.recommend(u)
    out = _serve_loop(start, seconds, rate, people, lambda u: p.recommend(u, n=10))
    store.close()
    return out


def serve_raw(folder: str, start: float, seconds: float, seed: int,
              rate: float) -> dict[str, Any]:
    con = sqlite3.connect(Path(folder) / "raw.db", isolation_level=None, timeout=30)
    con.execute("PRAGMA synchronous = NORMAL")
    f = np.load(Path(folder) / "raw-factors.npz")
    uf, itf = f["users"], f["items"]
    rng = np.random.default_rng(seed)
    people = rng.integers(0, PEOPLE, 200_000).tolist()

    def request(u: int) -> None:
        row = con.execute("SELECT action FROM consent WHERE user = ?", (f"u{u}",)).fetchone()
        seen = [r[0] for r in con.execute("SELECT item FROM events WHERE user = ?", (f"u{u}",))]
        if row is not None and row[0] == "grant":
            scores = itf @ uf[u]
            scores[seen] = -np.inf
            top = np.argpartition(-scores, 10)[:10]
            top[np.argsort(-scores[top])]

    out = _serve_loop(start, seconds, rate, people, request)
    con.close()
    return out


def ingest_persona(folder: str, start: float, seconds: float, rate: float) -> dict[str, Any]:
    store = persona.Store(Path(folder) / "persona.db")
    return _ingest_loop(start, seconds, rate, lambda e: store.ingest([e]), store.close)


def ingest_raw(folder: str, start: float, seconds: float, rate: float) -> dict[str, Any]:
    con = sqlite3.connect(Path(folder) / "raw.db", isolation_level=None, timeout=30)
    con.execute("PRAGMA synchronous = FULL")

    def one(e: dict[str, Any]) -> None:
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO events VALUES (?, ?, ?, ?)",
                    (e["user"], int(e["item"][1:]), e["value"], 0))
        con.execute("COMMIT")

    return _ingest_loop(start, seconds, rate, one, con.close)


def _ingest_loop(start: float, seconds: float, rate: float, write: Any,
                 close: Any) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    lat: list[float] = []
    errors: list[str] = []
    stored: list[str] = []
    _pace(start)
    end = start + seconds
    k = 0
    while True:
        due = start + k / rate
        now = time.time()
        if now >= end:
            break
        if due > now:
            time.sleep(due - now)
        event = {"id": f"load-{k}", "user": f"u{int(rng.integers(0, PEOPLE))}",
                 "item": f"i{int(rng.integers(0, ITEMS))}", "feature": "purchases",
                 "value": 1.0, "at": datetime.now(UTC).isoformat()}
        t = time.perf_counter()
        try:
            write(event)
            stored.append(event["id"])
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        lat.append(time.perf_counter() - t)
        k += 1
    close()
    return {"lat": lat, "errors": errors, "stored": stored, "sent": k}


def run(kind: str, folder: Path, servers: int, seconds: float, rate: float,
        serve_rate: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    serve, ingest = (serve_persona, ingest_persona) if kind == "persona" else (
        serve_raw, ingest_raw)
    with ctx.Pool(servers + 1) as pool:
        start = time.time() + 8.0  # time for every process to start and load
        jobs = [pool.apply_async(serve, (str(folder), start, seconds, 100 + k, serve_rate))
                for k in range(servers)]
        ing = pool.apply_async(ingest, (str(folder), start, seconds, rate))
        results = [j.get() for j in jobs]
        ingested = ing.get()
    return {"servers": results, "ingest": ingested}


def lost_persona(folder: Path, ids: list[str]) -> int:
    """Events the ingester was told were stored but that the store does not hold."""
    store = persona.Store(folder / "persona.db")
    held = store.scope("personalization").events()
    have = len(held)
    store.close()
    return EVENTS + len(ids) - have


def lost_raw(folder: Path, ids: list[str]) -> int:
    con = sqlite3.connect(folder / "raw.db")
    have = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    return EVENTS + len(ids) - have


def summary(res: dict[str, Any], lost: int, seconds: float) -> dict[str, Any]:
    lat = np.concatenate([np.asarray(r["lat"]) for r in res["servers"]]) * 1000
    ing = np.asarray(res["ingest"]["lat"]) * 1000
    return {
        "requests": int(lat.size), "per_s": lat.size / seconds,
        "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
        "max": float(lat.max()),
        "errors": sum(len(r["errors"]) for r in res["servers"]),
        "first_errors": [e for r in res["servers"] for e in r["errors"]][:3],
        "ingested": len(res["ingest"]["stored"]), "sent": res["ingest"]["sent"],
        "ingest_p50": float(np.percentile(ing, 50)), "ingest_p99": float(np.percentile(ing, 99)),
        "ingest_errors": len(res["ingest"]["errors"]),
        "first_ingest_errors": res["ingest"]["errors"][:3], "lost": lost,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=1000.0, help="single events per second")
    parser.add_argument("--serve-rate", type=float, default=100.0,
                        help="requests per second per serving process (0: as fast as it can)")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    args = parser.parse_args()
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        build_persona(folder)
        build_raw(folder)
        print(f"built in {time.perf_counter() - t:.0f} s", flush=True)
        for kind, lost in (("raw", lost_raw), ("persona", lost_persona)):
            res = run(kind, folder, args.servers, args.seconds, args.rate, args.serve_rate)
            out[kind] = summary(res, lost(folder, res["ingest"]["stored"]), args.seconds)
            print(kind, {k: v for k, v in out[kind].items()}, flush=True)
    raw, per = out["raw"], out["persona"]
    rows = [
        ("requests served, per second (all servers)", f"{raw['per_s']:,.0f}",
         f"{per['per_s']:,.0f}", "", ""),
        ("request p50 / p99 / max, ms", f"{raw['p50']:.2f} / {raw['p99']:.2f} / {raw['max']:.0f}",
         f"{per['p50']:.2f} / {per['p99']:.2f} / {per['max']:.0f}",
         f"p99 x{per['p99'] / raw['p99']:.1f}", "p99 <= 20 ms"),
        ("request errors", str(raw["errors"]), str(per["errors"]), "", "0"),
        ("single events sent / stored (achieved rate per second)",
         f"{raw['sent']:,} / {raw['ingested']:,} ({raw['ingested'] / args.seconds:,.0f})",
         f"{per['sent']:,} / {per['ingested']:,} ({per['ingested'] / args.seconds:,.0f})",
         "", f"{args.rate:,.0f}/s"),
        ("one ingest call p50 / p99, ms", f"{raw['ingest_p50']:.2f} / {raw['ingest_p99']:.2f}",
         f"{per['ingest_p50']:.2f} / {per['ingest_p99']:.2f}", "", ""),
        ("ingest errors; events reported stored but not found",
         f"{raw['ingest_errors']}; {raw['lost']}", f"{per['ingest_errors']}; {per['lost']}",
         "", "0; 0"),
    ]
    lines = [
        f"Machine: {machine()}.",
        "",
        f"{args.servers} serving processes and 1 ingesting process on one SQLite store file for "
        f"{args.seconds:.0f} s (SQLite only so far; PostgreSQL is not built yet). Each "
        "server sends " + (f"{args.serve_rate:,.0f} requests/s, paced (open loop; a late "
                           "request goes at once, its latency timed from its start)"
                           if args.serve_rate else "requests back to back (closed loop)")
        + ". Synthetic "
        f"store: {PEOPLE:,} people, {ITEMS:,} items, {EVENTS:,} events, everyone consenting; "
        f"ALS with {FACTORS} factors, saved once and loaded by each server. persona: "
        "`Personalizer.recommend(user, n=10)` with its defaults (live consent check, "
        "explanations, what was shown recorded and group-committed); `store.ingest([event])` "
        f"one event per call, paced at {args.rate:,.0f}/s, default durability. Raw: plain "
        "`sqlite3`, each request reading the person's consent row and events and scoring "
        "the items with numpy (no audit, no record of what was shown), one insert per "
        "transaction for the ingester. Raw runs first, then persona.",
        "",
        "| metric | raw sqlite3 | persona | ratio | goal |",
        "|---|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows),
    ]
    if per["first_errors"] or per["first_ingest_errors"]:
        lines += ["", f"First errors: {per['first_errors'] + per['first_ingest_errors']}"]
    print("\n".join(lines))
    if not args.no_write:
        write_section("Serving from many processes (issue 21)", "\n".join(lines))


if __name__ == "__main__":
    main()
