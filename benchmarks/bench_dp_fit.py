"""Private ALS fit time beside the non-private fit (issue 16: "DP fit at most 3x the
non-private fit at the default settings, on Online Retail and on a 17,000-item catalogue").

Same process, same data, ``persona.ALS()`` at its defaults (64 factors, 15 iterations,
``num_threads=0``; BLAS at one thread inside ``fit``) with and without
``privacy=DP(epsilon=1, delta=1e-6)`` (the DP defaults: 64 events per person, factor norm
1, alpha = 0). The fits alternate (:func:`_common.alternating`, garbage collected before
each), so a busy machine slows both alike; the table gives the best time of each, the
median of the per-pair ratios with its 95% interval, and where the private fit spends its
time (``fit_timings_``). The first private fit of a process also imports Google's
``dp-accounting`` (for the informational PLD ε) and calibrates the noise: it is timed once,
apart.

    .venv/bin/python benchmarks/bench_dp_fit.py            # 6 pairs per data set
    .venv/bin/python benchmarks/bench_dp_fit.py --quick    # 1 pair, smaller synthetic set

Prints only; the lead engineer folds the numbers into RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import _datasets
from _common import alternating, machine, paired_ratio, write_section
from persona.data import Interactions
from persona.models import ALS
from persona.privacy import DP

PRIVACY = {"epsilon": 1.0, "delta": 1e-6}
STAGES = ("bounding", "user_step", "statistics", "sampling", "solves", "accounting")


def lastfm() -> Interactions:
    """Last.fm HetRec 2011: 1,892 people, 17,632 artists; confidence log(1 + plays)."""
    df = pd.read_csv(_datasets.SHARED / "lastfm-hetrec2011-2k" / "user_artists.dat", sep="\t")
    users = df.userID.astype("category")
    items = df.artistID.astype("category")
    X = sp.csr_matrix((np.log1p(df.weight.to_numpy(dtype=float)),
                       (users.cat.codes.to_numpy(), items.cat.codes.to_numpy())))
    return Interactions.from_csr(X, users.cat.categories.astype(str),
                                 items.cat.categories.astype(str))


def declared(X: Interactions) -> Interactions:
    """``X`` with its items as the declared catalogue: each data set's product list stands in
    for the shop's catalogue (public), as a private fit requires."""
    return Interactions.from_csr(X.matrix, X.users, X.items)


def private() -> ALS:
    return ALS(random_state=0, privacy=DP(**PRIVACY), show_progress=False)


def plain() -> ALS:
    return ALS(random_state=0, show_progress=False)


def first_private_fit(X: Interactions) -> float:
    """The first private fit of this process (imports and calibration included)."""
    t0 = time.perf_counter()
    private().fit(X)
    return time.perf_counter() - t0


def bench(name: str, X: Interactions, repeats: int) -> dict[str, object]:
    last: dict[str, ALS] = {}

    def dp_fit() -> None:
        last["dp"] = private().fit(X)

    wall_np, wall_dp, cpu_np, cpu_dp = alternating(
        [(lambda: plain().fit(X), dp_fit)] * repeats, collect_garbage=True)
    ratio, ci = paired_ratio(wall_dp, wall_np)
    tm = last["dp"].fit_timings_
    spent = last["dp"].privacy_spent_
    return {
        "data": name, "people": X.n_users, "items": X.n_items, "events": X.matrix.nnz,
        "repeats": repeats, "non-private best (s)": min(wall_np),
        "private best (s)": min(wall_dp), "paired ratio": ratio, "ratio 95% CI": ci,
        "CPU ratio": sum(cpu_dp) / sum(cpu_np),
        "private stages (s, last fit)": {s: round(getattr(tm, s), 3) for s in STAGES},
        "noise values per iteration": int(spent.noise["size"]),
        "epsilon spent": spent.epsilon,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 pair each, smaller synthetic set")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    ap.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    repeats = 1 if args.quick else 6  # 6 pairs: the fewest with a 95% interval
    n_events = 300_000 if args.quick else 1_500_000
    n_people = 10_000 if args.quick else 50_000
    datasets = [
        ("online-retail", declared(_datasets.online_retail())),
        (f"synthetic {n_people // 1000}k people × 17,000 items, {n_events / 1e6:g}M events",
         declared(_datasets.synthetic(n_users=n_people, n_items=17_000, n_events=n_events))),
        ("lastfm-hetrec (17,632 artists, 1,892 people)", lastfm()),
    ]
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    first = first_private_fit(datasets[0][1])
    print(f"first private fit in this process (online-retail, imports and calibration "
          f"included): {first:.2f} s", flush=True)
    rows = []
    for name, X in datasets:
        row = bench(name, X, repeats)
        rows.append(row)
        print(json.dumps(row, indent=1, default=str), flush=True)
    lines = ["| data | people | items | non-private fit s | DP fit s | paired ratio (95% CI) "
             "| CPU ratio | goal ≤ 3x |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lo, hi = r["ratio 95% CI"]
        lines.append(f"| {r['data']} | {r['people']:,} | {r['items']:,} | "
                     f"{r['non-private best (s)']:.2f} | {r['private best (s)']:.2f} | "
                     f"{r['paired ratio']:.2f} ({lo:.2f}-{hi:.2f}) | {r['CPU ratio']:.2f} | "
                     f"{'met' if r['paired ratio'] <= 3 else 'NOT met'} |")
    table = "\n".join(lines)
    print()
    print(table)
    after = os.getloadavg()[0]
    print(f"\nload average after: {after:.1f}; first private fit of the process: {first:.2f} s")
    if not args.quick and not args.no_write:
        write_section("DP fit time at default settings (issue 16)", "\n\n".join([
            f"Machine: {machine()}. Date: "
            f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}. "
            f"Script: `benchmarks/bench_dp_fit.py`.",
            "`persona.ALS()` at its defaults (64 factors, 15 iterations) without privacy, beside "
            "the same model with `privacy=persona.DP(epsilon=1, delta=1e-6)`, fitted on the same "
            f"matrix, alternately, {repeats} pairs; the ratio is the median of the per-pair "
            "ratios (DP / non-private) with its distribution-free 95% interval.",
            table,
            f"First private fit of a process (imports and calibration included, Online "
            f"Retail): {first:.2f} s. Load average after the run: {after:.1f}.",
        ]))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "first_private_fit_s": first,
                                         "rows": rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
