"""Benchmarks of persona.privacy (issue 4): sampler throughput against OpenDP's own sampler,
DP-ALS fit time against implicit's ALS with a breakdown, and the privacy-utility sweep on
Online Retail and MovieLens latest-small.

Run from the project root:  .venv/bin/python benchmarks/bench_privacy.py [--quick]

Writes benchmarks/privacy_results.json, benchmarks/privacy_utility.png and the section
"## Differential privacy (issue 4)" of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
DATA = Path(os.environ.get("PERSONA_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = Path(__file__).resolve().parent

from persona.privacy import (  # noqa: E402
    DP,
    ALSTimings,
    discrete_gaussian,
    discrete_laplace,
    private_als_item_factors,
    private_item_counts,
    solve_user_factors,
)

EPSILONS = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
DELTA = 1e-6
SEEDS = [0, 1, 2]
# DP-ALS configuration, fixed before the sweep (public; not tuned per epsilon)
DP_ALS = {"factors": 8, "iterations": 2, "regularization": 0.1, "alpha": 0.0,
          "max_events_per_person": 1000, "weight_budget": 4.0}
# DP popularity: noisy counts with each person capped to 64 sampled items
POPULARITY = {"max_events_per_person": 64}
# non-private baseline: implicit's ALS with ordinary settings
ALS = {"factors": 32, "iterations": 15, "regularization": 0.05, "alpha": 1.0}


# ---------------------------------------------------------------------------------------------
# data


def load_online_retail() -> sp.csr_matrix:
    df = pd.read_csv(DATA / "online-retail" / "online_retail.csv.gz",
                     dtype={"InvoiceNo": str, "StockCode": str})
    df = df[df.CustomerID.notna() & (df.Quantity > 0) & ~df.InvoiceNo.str.startswith("C")]
    u = df.CustomerID.astype("category").cat.codes.to_numpy()
    i = df.StockCode.astype("category").cat.codes.to_numpy()
    X = sp.csr_matrix((np.ones(len(df)), (u, i)))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def load_movielens() -> sp.csr_matrix:
    df = pd.read_csv(DATA / "ml-latest-small" / "ratings.csv")
    u = df.userId.astype("category").cat.codes.to_numpy()
    i = df.movieId.astype("category").cat.codes.to_numpy()
    X = sp.csr_matrix((np.ones(len(df)), (u, i)))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


# ---------------------------------------------------------------------------------------------
# models and metrics


def _factor_model(user_factors: np.ndarray, item_factors: np.ndarray):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(factors=item_factors.shape[1], random_state=0)
    model.user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
    model.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
    return model


def evaluate(model, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 10) -> dict[str, float]:
    from implicit.evaluation import ndcg_at_k

    ndcg = ndcg_at_k(model, train, test, K=k, show_progress=False, num_threads=1)
    users = np.flatnonzero(test.getnnz(axis=1) > 0)
    ids, _ = model.recommend(users, train[users], N=k, filter_already_liked_items=True)
    hits = np.array([np.isin(ids[r], test.indices[test.indptr[u]:test.indptr[u + 1]]).sum()
                     for r, u in enumerate(users)])
    recall = float(np.mean(hits / test.getnnz(axis=1)[users]))
    return {"ndcg@10": float(ndcg), "recall@10": recall}


def fit_nonprivate(train: sp.csr_matrix, seed: int, **params) -> tuple[object, float]:
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(random_state=seed, num_threads=1, **params)
    t0 = time.perf_counter()
    model.fit(train, show_progress=False)
    return model, time.perf_counter() - t0


def fit_dp_als(train: sp.csr_matrix, eps: float, seed: int, timings: ALSTimings | None = None):
    cfg = DP(epsilon=eps, delta=DELTA, max_events_per_person=DP_ALS["max_events_per_person"])
    t0 = time.perf_counter()
    Y, spent = private_als_item_factors(
        train, DP_ALS["factors"], DP_ALS["iterations"], DP_ALS["regularization"],
        DP_ALS["alpha"], cfg, random_state=seed, weight_budget=DP_ALS["weight_budget"],
        timings=timings)
    fit_time = time.perf_counter() - t0
    # served user vectors: each person's own data with the private item factors
    U = solve_user_factors(train, Y, DP_ALS["regularization"], DP_ALS["alpha"])
    return _factor_model(U, Y), spent, fit_time


def fit_dp_popularity(train: sp.csr_matrix, eps: float):
    cfg = DP(epsilon=eps, delta=DELTA, max_events_per_person=POPULARITY["max_events_per_person"])
    counts, spent = private_item_counts(train, cfg)
    U = np.ones((train.shape[0], 1))
    return _factor_model(U, counts[:, None]), spent


# ---------------------------------------------------------------------------------------------
# parts


def bench_sampler(quick: bool) -> dict[str, object]:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    n = 2_000_000 if quick else 10_000_000
    out: dict[str, object] = {"draws": n}
    for name, fn, scale in [("discrete_gaussian(σ=3)", discrete_gaussian, 3.0),
                            ("discrete_gaussian(σ=2^20 grid units)", discrete_gaussian, 2.0**20),
                            ("discrete_laplace(b=3)", discrete_laplace, 3.0)]:
        fn(scale, 10_000)
        best, best_cpu = np.inf, np.inf
        for _ in range(3):  # best of 3: the machine is shared
            t0, c0 = time.perf_counter(), time.process_time()
            fn(scale, n)
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        out[f"persona {name}"] = n / best
        out[f"persona {name} per CPU-second"] = n / best_cpu
    m = 20_000
    int_space = dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int)
    flt_space = (dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l2_distance(T=float))
    for name, meas, arg in [
        ("OpenDP make_gaussian int (σ=3)", dp.m.make_gaussian(*int_space, scale=3.0), [0] * m),
        ("OpenDP make_gaussian float (σ=3, default k)",
         dp.m.make_gaussian(*flt_space, scale=3.0), [0.0] * m),
        ("OpenDP make_laplace int (b=3)",
         dp.m.make_laplace(dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int),
                           scale=3.0), [0] * m),
    ]:
        best, best_cpu = np.inf, np.inf
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            meas(arg)
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        out[name] = m / best
        out[f"{name} per CPU-second"] = m / best_cpu
    out["load average (1 min) after"] = os.getloadavg()[0]
    return out


def bench_fit_time(X: sp.csr_matrix) -> dict[str, object]:
    same = {k: DP_ALS[k] for k in ("factors", "iterations", "regularization")}
    res: dict[str, object] = {}
    t_np = min(fit_nonprivate(X, 0, alpha=1.0, **same)[1] for _ in range(3))
    t_np_full = min(fit_nonprivate(X, 0, **ALS)[1] for _ in range(3))
    fit_dp_als(X, 8.0, 0)  # warm the calibration cache once, as a long-running service would
    tm = ALSTimings()
    _, _, t_dp = fit_dp_als(X, 4.0, 0, timings=tm)  # fresh epsilon: calibration included
    t_dp_warm, tm2 = np.inf, ALSTimings()
    for seed in (1, 2, 3):  # same settings: calibration cached; best of 3
        tm_i = ALSTimings()
        _, _, t_i = fit_dp_als(X, 4.0, seed, timings=tm_i)
        if t_i < t_dp_warm:
            t_dp_warm, tm2 = t_i, tm_i
    res.update({
        "implicit ALS, same factors/iterations (s)": t_np,
        "implicit ALS, baseline settings (s)": t_np_full,
        "DP-ALS incl. first calibration (s)": t_dp,
        "DP-ALS, calibration cached (s)": t_dp_warm,
        "breakdown (first)": {k: getattr(tm, k) for k in
                              ("bounding", "user_step", "statistics", "sampling", "solves",
                               "accounting")},
        "breakdown (cached)": {k: getattr(tm2, k) for k in
                               ("bounding", "user_step", "statistics", "sampling", "solves",
                                "accounting")},
        "load average (1 min) after": os.getloadavg()[0],
    })
    return res


def signal_vs_noise(train: sp.csr_matrix, test: sp.csr_matrix, Y: np.ndarray, spent) -> dict:
    """Per item: norm of the exact statistic b_j = Σ_u w_u x_u (unit-norm person vectors from
    the private item factors, person weights w_u = min(1, s / sqrt(n_u))) against the norm of
    its noise, σ·sqrt(d). Benchmark-only: it reads the exact statistics, which the mechanism
    never releases."""
    U = solve_user_factors(train, Y, DP_ALS["regularization"], DP_ALS["alpha"])
    U = U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-300)
    n_u = np.maximum(train.getnnz(axis=1), 1)
    w = np.minimum(1.0, DP_ALS["weight_budget"] / np.sqrt(n_u))
    b = np.linalg.norm(train.T @ (U * w[:, None]), axis=1)
    noise = spent.noise["scale"] * np.sqrt(Y.shape[1])
    above = b > noise
    test_items = test.indices
    return {"items_signal_above_noise": float(above.mean()),
            "test_events_on_such_items": float(above[test_items].mean()),
            "noise_norm": float(noise), "median_item_signal": float(np.median(b))}


def bench_sweep(name: str, X: sp.csr_matrix, epsilons: list[float], seeds: list[int]):
    from implicit.evaluation import train_test_split

    rows = []
    for seed in seeds:
        train, test = train_test_split(X, train_percentage=0.8, random_state=seed)
        train, test = train.tocsr(), test.tocsr()
        model, t = fit_nonprivate(train, seed, **ALS)
        rows.append({"data": name, "model": "ALS (non-private)", "epsilon": None, "seed": seed,
                     **evaluate(model, train, test), "fit_s": t})
        for eps in epsilons:
            model, spent, t = fit_dp_als(train, eps, seed)
            snr = signal_vs_noise(train, test, model.item_factors.astype(np.float64), spent) \
                if seed == seeds[0] else {}
            rows.append({"data": name, "model": "DP-ALS", "epsilon": eps, "seed": seed,
                         **evaluate(model, train, test), "fit_s": t, **snr,
                         "spent_epsilon": spent.epsilon, "pld_epsilon": spent.epsilon_pld,
                         "noise_scale": spent.noise["scale"],
                         "sensitivity": spent.noise["sensitivity"]})
            model, spent = fit_dp_popularity(train, eps)
            rows.append({"data": name, "model": "DP popularity", "epsilon": eps, "seed": seed,
                         **evaluate(model, train, test), "spent_epsilon": spent.epsilon})
        print(f"  {name} seed {seed} done", flush=True)
    return rows


def plot(df: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(df.data))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.2), squeeze=False)
    for ax, name in zip(axes[0], datasets, strict=True):
        sub = df[df.data == name]
        base = sub[sub.model == "ALS (non-private)"]["ndcg@10"]
        ax.axhspan(base.mean() - base.std(), base.mean() + base.std(), color="grey", alpha=0.2)
        ax.axhline(base.mean(), color="grey", label="ALS (non-private)")
        for model, style in [("DP-ALS", "o-"), ("DP popularity", "s--")]:
            g = sub[sub.model == model].groupby("epsilon")["ndcg@10"]
            ax.errorbar(g.mean().index, g.mean(), yerr=g.std(), fmt=style, capsize=3,
                        label=model)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("ε (δ = 1e-6), unit of privacy: one person")
        ax.set_ylabel("NDCG@10")
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"Model name:\s*(.+)", out)
        cpu = model.group(1).strip() if model else platform.processor()
    except (OSError, subprocess.CalledProcessError):
        cpu = platform.processor()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _table(df: pd.DataFrame) -> str:
    lines = ["| data | ε | DP-ALS NDCG@10 | DP-ALS recall@10 | DP popularity NDCG@10 | "
             "DP popularity recall@10 | DP-ALS / non-private NDCG |",
             "|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(df.data):
        sub = df[df.data == name]
        base = sub[sub.model == "ALS (non-private)"]
        lines.append(f"| {name} | non-private ALS | {base['ndcg@10'].mean():.4f} ± "
                     f"{base['ndcg@10'].std():.4f} | {base['recall@10'].mean():.4f} ± "
                     f"{base['recall@10'].std():.4f} | | | 1.00 |")
        for eps in sorted(sub.epsilon.dropna().unique()):
            a = sub[(sub.model == "DP-ALS") & (sub.epsilon == eps)]
            p = sub[(sub.model == "DP popularity") & (sub.epsilon == eps)]
            ratio = a["ndcg@10"].mean() / base["ndcg@10"].mean()
            lines.append(
                f"| {name} | {eps:g} | {a['ndcg@10'].mean():.4f} ± {a['ndcg@10'].std():.4f} | "
                f"{a['recall@10'].mean():.4f} ± {a['recall@10'].std():.4f} | "
                f"{p['ndcg@10'].mean():.4f} ± {p['ndcg@10'].std():.4f} | "
                f"{p['recall@10'].mean():.4f} ± {p['recall@10'].std():.4f} | {ratio:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epsilons")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    results: dict[str, object] = {"machine": _machine(),
                                  "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                                  "dp_als": DP_ALS, "als": ALS, "popularity": POPULARITY,
                                  "delta": DELTA}
    with threadpool_limits(1):
        print("sampler throughput ...", flush=True)
        results["sampler"] = bench_sampler(args.quick)
        print(json.dumps(results["sampler"], indent=1), flush=True)
        retail = load_online_retail()
        movies = load_movielens()
        print("fit time ...", flush=True)
        results["fit_time"] = bench_fit_time(retail)
        print(json.dumps(results["fit_time"], indent=1), flush=True)
        if not args.skip_sweep:
            eps = [1.0, 4.0, 16.0] if args.quick else EPSILONS
            seeds = [0] if args.quick else SEEDS
            rows = []
            for name, X in [("online-retail", retail), ("ml-latest-small", movies)]:
                print(f"sweep {name} {X.shape} nnz={X.nnz} ...", flush=True)
                rows += bench_sweep(name, X, eps, seeds)
            df = pd.DataFrame(rows)
            results["sweep"] = rows
            plot(df, OUT / "privacy_utility.png")
            print(_table(df))
    previous = OUT / "privacy_results.json"
    if args.skip_sweep and previous.exists():
        old = json.loads(previous.read_text())
        if "sweep" in old:
            results["sweep"] = old["sweep"]
    (OUT / "privacy_results.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
