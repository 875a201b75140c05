"""Scaling study (issue 20): how many people a shop needs before each private model reaches
0.8x of non-private ALS's NDCG@10, on synthetic data with a planted low-rank structure from
1,000 to 1,000,000 people, beside the real sets of ``bench_privacy.py``'s sweep.

Run from the project root:  .venv/bin/python benchmarks/bench_scaling.py [--quick]
[--max-people N] [--no-write]   (``--replot`` redraws the plot and the section from the saved
results, fitting nothing)

The models, their settings, the split and the metric are ``bench_privacy``'s own (imported,
not copied), so the study and the sweep measure the same things.

Writes benchmarks/scaling_results.json, benchmarks/scaling.png and the section
"## Scaling study: private models against the size of the shop (issue 20)" of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import bench_privacy as bp  # noqa: E402
import persona  # noqa: E402
from _common import machine, write_section  # noqa: E402
from persona.data import Interactions  # noqa: E402

SIZES = [1_000, 10_000, 100_000, 1_000_000]
SEEDS = [0, 1]
#: one seed from this size on: at 1,000,000 people one seed at one ε took 252 s (non-private
#: ALS's fit 176 s of it) and each further ε about 27 s, so a second seed would take the
#: default run past 15 minutes on this 2-core VM
ONE_SEED_FROM = 1_000_000
#: people scored per fit: a seeded sample of the test people above this (NDCG@10's standard
#: error at 10,000 people is about 0.002)
EVAL_PEOPLE = 10_000
#: the served model (fit_private_choice) runs up to this size: at 1,000,000 people its
#: hold-out, candidates and validation would add about as much as the rest of the study
SERVED_MAX_PEOPLE = 100_000
TARGET = 0.8
N_ITEMS = 2_000
TOPICS = 32
MEDIAN_HISTORY = 30
MAX_HISTORY = 500
POPULARITY_EXPONENT = 0.9
#: non-private ALS at DP-ALS's settings: what DP-ALS would reach without noise
CEILING = "ALS (non-private, DP-ALS settings)"
#: each private model's non-private counterpart (DP item-kNN's also has no head and no cap)
COUNTERPART = {"DP-ALS": CEILING, "DP popularity": "Popularity (non-private)",
               "DP item-kNN": "ItemKNN (non-private)"}
PRIVATE = ["DP-ALS", "DP popularity", "DP item-kNN", "served"]
REAL = {"online-retail": ("Online Retail", 4_339), "ml-latest-small": ("ml-latest-small", 610)}


# ---------------------------------------------------------------------------------------------
# data


def planted(n_people: int, n_items: int = N_ITEMS, seed: int = 0) -> sp.csr_matrix:
    """A binary person–item matrix with a planted rank-32 structure and long tails.

    ``TOPICS`` = 32 topics (the non-private ALS reference has 32 factors, so it is the
    well-specified model). Item ``i`` (popularity rank ``i + 1``) has popularity
    ``(i + 1) ** -0.9`` and a dominant topic drawn uniformly: loading 0.9 on it plus 0.1
    spread evenly over all topics. Each person's topic weights are Dirichlet(0.1) over the
    32 topics (most people have one to three main topics). A person draws a history length
    from a lognormal with median 30 and σ = 1, rounded, kept in [1, 500], and that many events;
    each event's item is drawn with probability ∝ popularity(item) · Σ_t weight(person, t) ·
    loading(item, t): a topic from the person's weights (times each topic's popularity mass),
    then an item from that topic's popularity-weighted loadings. Repeated items collapse to
    one 1, so histories are shorter than the draws (median about 24 items).

    Vectorised: per-person topic counts from one multinomial, then one draw per topic; about
    11 s and 2.5 GB for 1,000,000 people on this machine.
    """
    rng = np.random.default_rng(seed)
    popularity = np.arange(1, n_items + 1, dtype=np.float64) ** -POPULARITY_EXPONENT
    loadings = np.full((n_items, TOPICS), 0.1 / TOPICS)
    loadings[np.arange(n_items), rng.integers(0, TOPICS, n_items)] += 0.9
    item_given_topic = popularity[:, None] * loadings
    topic_mass = item_given_topic.sum(axis=0)
    item_given_topic /= topic_mass
    weights = rng.dirichlet(np.full(TOPICS, 0.1), n_people) * topic_mass
    weights /= weights.sum(axis=1, keepdims=True)
    lengths = np.clip(np.rint(rng.lognormal(np.log(MEDIAN_HISTORY), 1.0, n_people)),
                      1, MAX_HISTORY).astype(np.int64)
    counts = rng.multinomial(lengths, weights)  # people x topics
    people, items = [], []
    for t in range(TOPICS):
        people.append(np.repeat(np.arange(n_people, dtype=np.int32), counts[:, t]))
        items.append(rng.choice(n_items, int(counts[:, t].sum()),
                                p=item_given_topic[:, t]).astype(np.int32))
    rows, cols = np.concatenate(people), np.concatenate(items)
    X = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_people, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def _scored(test: Interactions, seed: int) -> Interactions:
    """The test set restricted to a seeded sample of ``EVAL_PEOPLE`` tested people."""
    tm = test.matrix.tocsr()
    tested = np.flatnonzero(np.diff(tm.indptr) > 0)
    if tested.size <= EVAL_PEOPLE:
        return test
    keep = np.zeros(tm.shape[0])
    keep[np.random.default_rng(seed).choice(tested, EVAL_PEOPLE, replace=False)] = 1.0
    sample = sp.csr_matrix(sp.diags(keep) @ tm)
    sample.eliminate_zeros()
    return test.with_matrix(sample)


# ---------------------------------------------------------------------------------------------
# the study


def _row(n: int, X: sp.csr_matrix, model: str, eps: float | None, seed: int, fitted, train,
         test, fit_s: float) -> dict:
    return {"people": n, "items": X.shape[1], "events": int(X.nnz), "model": model,
            "epsilon": eps, "seed": seed, **bp.evaluate(fitted, train, test), "fit_s": fit_s}


def run_size(n: int, epsilons: list[float], seeds: list[int],
             served_only: bool = False) -> list[dict]:
    rows = []
    for seed in seeds:
        X = planted(n, seed=seed)
        train, full_test = bp.split(X, seed)
        test = _scored(full_test, seed)
        baselines = [] if served_only else [("ALS (non-private)", persona.ALS(**bp.ALS, random_state=seed,
                                                      num_threads=1)),
                     (CEILING,
                      persona.ALS(**bp.DP_ALS, random_state=seed, num_threads=1)),
                     ("Popularity (non-private)", persona.Popularity()),
                     ("ItemKNN (non-private)", persona.ItemKNN(**bp.KNN, num_threads=1))]
        for label, model in baselines:
            model, t = bp._timed_fit(model, train)
            rows.append(_row(n, X, label, None, seed, model, train, test, t))
        for eps in epsilons:
            private = [] if served_only else [("DP-ALS", bp.dp_als(eps, seed)),
                                              ("DP popularity", bp.dp_popularity(eps)),
                                              ("DP item-kNN", bp.dp_knn(eps))]
            for label, model in private:
                model, t = bp._timed_fit(model, train)
                rows.append(_row(n, X, label, eps, seed, model, train, test, t))
            if n <= SERVED_MAX_PEOPLE:
                t0 = time.perf_counter()
                pick = bp.served(eps, train, {})
                t = time.perf_counter() - t0
                rows.append(_row(n, X, "served", eps, seed, pick.model, train, test, t)
                            | {"chosen": pick.choice.chosen})
        print(f"  {n:,} people, seed {seed}: {X.nnz:,} events", flush=True)
    return rows


def served_only(no_write: bool) -> None:
    """Refit the served choice at the saved run's sizes, seeds and ε (up to
    SERVED_MAX_PEOPLE) and replace the saved served rows, noting when and at which commit."""
    saved = json.loads((HERE / "scaling_results.json").read_text())
    sizes = [n for n in saved["sizes"] if n <= SERVED_MAX_PEOPLE]
    rows, t0 = [], time.perf_counter()
    with threadpool_limits(1):
        _warm(saved["epsilons"])
        for n in sizes:
            print(f"{n:,} people ...", flush=True)
            seeds = saved["seeds"][:1] if n >= ONE_SEED_FROM else saved["seeds"]
            rows += run_size(n, saved["epsilons"], seeds, served_only=True)
    saved["rows"] = [r for r in saved["rows"] if r["model"] != "served"] + rows
    saved["served_rerun"] = {"commit": bp._commit(), "seconds": time.perf_counter() - t0,
                             "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}
    print(ratios(pd.DataFrame(saved["rows"])).round(2).to_string())
    if no_write:
        print(section(saved))
        return
    (HERE / "scaling_results.json").write_text(json.dumps(saved, indent=1, default=str))
    plot(pd.DataFrame(saved["rows"]), HERE / "scaling.png")
    _write(saved)


def _warm(epsilons: list[float]) -> None:
    """Fit DP-ALS and the served choice once per ε on 1,000 people (unscored), so that no
    timed fit pays for the first calibration of an (ε, δ)."""
    train, _ = bp.split(planted(1_000, seed=99), 99)
    for eps in epsilons:
        bp.dp_als(eps, 0).fit(train)
        bp.served(eps, train, {})


# ---------------------------------------------------------------------------------------------
# reading the results


def ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Mean NDCG@10 over seeds of each private model over that of non-private ALS, at the
    same size: rows (people, model), columns ε."""
    ref = df[df.model == "ALS (non-private)"].groupby("people")["ndcg@10"].mean()
    private = df[df.epsilon.notna()].groupby(["people", "model", "epsilon"])["ndcg@10"] \
        .mean().reset_index()
    private["ratio"] = private["ndcg@10"] / private.people.map(ref)
    return private.pivot_table(index=["people", "model"], columns="epsilon", values="ratio")


def real_ratios(path: Path = HERE / "privacy_results.json") -> tuple[pd.DataFrame, str]:
    """The same ratios on the real sets, from ``bench_privacy.py``'s saved sweep: rows
    (people, model, data), columns ε; and the sweep's date."""
    if not path.exists():
        return pd.DataFrame(), "never"
    saved = json.loads(path.read_text())
    df = pd.DataFrame(saved.get("sweep", []))
    if df.empty:
        return df, "never"
    out = []
    for name, (label, people) in REAL.items():
        sub = df[df.data == name]
        ref = sub[sub.model == "ALS (non-private)"]["ndcg@10"].mean()
        g = sub[sub.model.isin(PRIVATE)].groupby(["model", "epsilon"])["ndcg@10"].mean() / ref
        out += [{"people": people, "data": label, "model": m, "epsilon": e, "ratio": r}
                for (m, e), r in g.items()]
    table = pd.DataFrame(out).pivot_table(index=["people", "model", "data"], columns="epsilon",
                                          values="ratio")
    return table, str(saved.get("date", "unknown date"))


def needed(r: pd.DataFrame, model: str) -> dict[float, int | None]:
    """Issue 20's reading: at each ε, the smallest size from which the model stays at or
    above 0.8x of non-private ALS (at that size and every larger one measured); None when
    it is not reached at the largest size."""
    sub = r.xs(model, level="model")
    out: dict[float, int | None] = {}
    for eps in sub.columns:
        ok = sub[eps].dropna() >= TARGET
        out[float(eps)] = next((int(n) for n in ok.index if ok.loc[n:].all()), None)
    return out


def reach(r: pd.DataFrame, model: str) -> str:
    largest = int(r.xs(model, level="model").index.max())
    parts = [f"ε = {eps:g} from {n:,} people" if n else f"ε = {eps:g} not reached"
             for eps, n in needed(r, model).items()]
    return (f"**{model}** reaches {TARGET:g}x of non-private ALS at " + "; ".join(parts)
            + f" (measured up to {largest:,} people).")


def _needed_table(df: pd.DataFrame, r: pd.DataFrame) -> str:
    epsilons = list(r.columns)
    lines = ["| model | " + " | ".join(f"ε = {e:g}" for e in epsilons)
             + " | its non-private counterpart / ALS, at the largest size |",
             "|---" * (len(epsilons) + 2) + "|"]
    for model in PRIVATE:
        if model not in r.index.get_level_values("model"):
            continue
        largest = int(r.xs(model, level="model").index.max())
        cells = [f"{n:,}" if n else f"> {largest:,}" for n in needed(r, model).values()]
        ceiling = "–"
        if model in COUNTERPART:
            at = df[df.people == largest].groupby("model")["ndcg@10"].mean()
            ratio = at[COUNTERPART[model]] / at["ALS (non-private)"]
            ceiling = f"{ratio:.2f}, {COUNTERPART[model]}"
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {ceiling} |")
    return "\n".join(lines)


def _model_table(r: pd.DataFrame, real: pd.DataFrame, model: str) -> str:
    epsilons = list(r.columns)
    lines = ["| people | " + " | ".join(f"ε = {e:g}" for e in epsilons)
             + f" | smallest ε at {TARGET:g}x |",
             "|---" * (len(epsilons) + 2) + "|"]
    entries = []
    sub = r.xs(model, level="model")
    for n, row in sub.iterrows():
        entries.append((int(n), f"{int(n):,} (synthetic)", row))
    if not real.empty and model in real.index.get_level_values("model"):
        for (n, data), row in real.xs(model, level="model").iterrows():
            entries.append((int(n), f"{n:,}: {data} (real)", row))
    for _, label, row in sorted(entries, key=lambda e: e[0]):
        cells = [f"{row[e]:.2f}" if e in row and pd.notna(row[e]) else "–" for e in epsilons]
        met = [e for e in epsilons if e in row and pd.notna(row[e]) and row[e] >= TARGET]
        lines.append(f"| {label} | " + " | ".join(cells)
                     + f" | {f'{met[0]:g}' if met else 'not reached'} |")
    return "\n".join(lines)


def _baseline_table(df: pd.DataFrame) -> str:
    lines = ["| people | events (binary) | seeds | ALS NDCG@10 | ALS at DP-ALS's settings | "
             "ItemKNN | Popularity | fit s: ALS | DP-ALS | DP popularity | DP item-kNN | "
             "served |", "|---" * 12 + "|"]
    for n, sub in df.groupby("people"):
        def ndcg(model: str, sub: pd.DataFrame = sub) -> str:
            x = sub[sub.model == model]["ndcg@10"]
            return f"{x.mean():.4f} ± {x.std():.4f}" if len(x) > 1 else f"{x.mean():.4f}"

        def fit(model: str, sub: pd.DataFrame = sub) -> str:
            x = sub[sub.model == model].fit_s
            return f"{x.mean():.2f}" if len(x) else "–"

        lines.append(f"| {n:,} | {sub.events.mean():,.0f} | {sub.seed.nunique()} | "
                     f"{ndcg('ALS (non-private)')} | "
                     f"{ndcg(CEILING)} | "
                     f"{ndcg('ItemKNN (non-private)')} | "
                     f"{ndcg('Popularity (non-private)')} | {fit('ALS (non-private)')} | "
                     f"{fit('DP-ALS')} | {fit('DP popularity')} | {fit('DP item-kNN')} | "
                     f"{fit('served')} |")
    return "\n".join(lines)


def plot(df: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    r = ratios(df)
    real, _ = real_ratios()
    shown = [e for e in (1.0, 8.0) if e in r.columns]
    if len(shown) < 2:  # --quick runs 1, 4 and 16
        shown = sorted({min(r.columns), max(r.columns)})
    styles = {"DP-ALS": ("o-", "C0"), "DP popularity": ("s--", "C1"),
              "DP item-kNN": ("^:", "C2"), "served": ("D-", "C3")}
    fig, axes = plt.subplots(1, len(shown), figsize=(6.2 * len(shown), 4.8), sharex=True,
                             sharey=True, squeeze=False)
    for ax, eps in zip(axes[0], shown, strict=True):
        ax.axhline(TARGET, color="black", ls="--", lw=1, label=f"{TARGET:g}x non-private ALS")
        ax.axhline(1.0, color="grey", lw=0.8)
        for model, (style, colour) in styles.items():
            if model not in r.index.get_level_values("model"):
                continue
            line = r.xs(model, level="model")[eps].dropna()
            label = "served (Personalizer's choice)" if model == "served" else model
            ax.plot(line.index, line.values, style, color=colour, label=label)
            if not real.empty and eps in real.columns \
                    and model in real.index.get_level_values("model"):
                pts = real.xs(model, level="model")[eps].dropna()
                ax.scatter([n for n, _ in pts.index], pts.values, marker=style[0],
                           facecolors="none", edgecolors=colour, s=70)
        for n, data in sorted({(n, d) for n, _, d in real.index}):
            ax.axvline(n, color="grey", lw=0.6, ls=":")
            ax.annotate(f"{data}\n(real)", (n, 0.99), xycoords=("data", "axes fraction"),
                        ha="center", va="top", fontsize=7, color="dimgrey")
        ax.set_xscale("log")
        people = [*r.index.get_level_values("people"),
                  *([] if real.empty else real.index.get_level_values("people"))]
        ax.set_xlim(min(people) / 1.8, max(people) * 1.8)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        ax.set_ylim(0.0, 1.15)
        ax.set_xlabel(f"people in the shop (synthetic data: {N_ITEMS:,} items)")
        ax.set_title(f"ε = {eps:g}")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("NDCG@10: private model / non-private ALS")
    fig.suptitle("How many people a private recommender needs (δ = 1e-6, privacy unit: one "
                 "person)\nfilled and joined: planted synthetic data; hollow: the real sets "
                 "(privacy sweep; their served model may also pick text-based ContentKNN)",
                 fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def section(results: dict) -> str:
    df = pd.DataFrame(results["rows"])
    r = ratios(df)
    real, real_date = real_ratios()
    one_seed = sorted({n for n in results["sizes"] if n >= ONE_SEED_FROM})
    parts = [
        "Produced by `benchmarks/bench_scaling.py` (raw rows in "
        "`benchmarks/scaling_results.json`, plot in `benchmarks/scaling.png`). "
        f"Machine: {results['machine']}; {results['date']}, commit `{results['commit']}`, "
        "single-threaded (`threadpool_limits(1)`, `num_threads=1`), on a shared machine. "
        f"Run time: {results['seconds'] / 60:.1f} min "
        f"({', '.join(f'{int(n):,} people {s:.0f} s' for n, s in results['size_seconds'])}), "
        f"peak memory {results['peak_rss_gb']:.1f} GB."
        + (f" The served rows were refitted alone (`--served-only`) on {rerun['date']}, commit "
           f"`{rerun['commit']}`, in {rerun['seconds'] / 60:.1f} min; every other row is from "
           "the run above." if (rerun := results.get("served_rerun")) else ""),
        f"**Data.** `planted(n_people, seed)`: {N_ITEMS:,} items at every size (so the size "
        f"axis is people only) and {TOPICS} planted topics (the rank of the non-private ALS "
        f"reference). Item popularity ∝ rank^-{POPULARITY_EXPONENT:g}; each item loads 0.9 on "
        "one topic drawn uniformly and 0.1 evenly over all; each person's topic weights are "
        f"Dirichlet(0.1); history lengths lognormal (median {MEDIAN_HISTORY}, σ = 1, at most "
        f"{MAX_HISTORY} draws); each event's item ∝ popularity · (person's weights · item's "
        "loadings); repeats collapse to one binary event. No item text, so no ContentKNN, and "
        "the served model chooses between private popularity and, from ε ≈ 6.7, one pooled "
        "model that a noisy count of people picks: DP-ALS below 10,000 people, DP item-kNN "
        "from 10,000 (`persona.personalizer.KNN_FROM_PEOPLE`). "
        "Seeds set the data, the split and the model: "
        f"{', '.join(map(str, results['seeds']))}"
        + (f" ({', '.join(f'{n:,}' for n in one_seed)} people: seed 0 only)" if one_seed else "")
        + " (the DP noise comes from the OS's random bits, unseeded).",
        "**Models and metric** are `bench_privacy.py`'s (imported): its split (80 % of each "
        "person's events to train), DP-ALS, DP popularity, DP item-kNN (its 1,000-item head), "
        "the served choice (`fit_private_choice`, as `Personalizer(store, privacy=DP(ε, 1e-6))` "
        "serves), non-private ALS "
        f"(`persona.ALS({', '.join(f'{k}={v}' for k, v in bp.ALS.items())})`), NDCG@10 from "
        f"`persona.evaluate`. Above {EVAL_PEOPLE:,} tested people a seeded sample of "
        f"{EVAL_PEOPLE:,} is scored. The served model runs up to {SERVED_MAX_PEOPLE:,} people "
        "(at 1,000,000 it would add about as much time as the rest of the study). δ = 1e-6, "
        "unit of privacy one person.",
        "### Non-private reference and fit times",
        "Non-private NDCG@10 (mean ± standard deviation over seeds): ALS (the reference), "
        f"ALS at DP-ALS's settings (`{', '.join(f'{k}={v}' for k, v in bp.DP_ALS.items())}`,"
        " no noise: DP-ALS's ceiling), ItemKNN "
        f"(`neighbours={bp.KNN['neighbours']}`, whole catalogue) and popularity; fit seconds "
        "(mean over ε and seeds; DP calibrations warmed beforehand).",
        _baseline_table(df),
        "### Private models as a share of non-private ALS",
        "Each cell: the private model's mean NDCG@10 over seeds divided by non-private ALS's "
        "at the same size. The real sets' rows come from `bench_privacy.py`'s sweep "
        f"(`privacy_results.json`, {real_date}, seeds 0–2); there the served model also has "
        "ContentKNN on the items' public text as a candidate.",
    ]
    for model in PRIVATE:
        if model not in r.index.get_level_values("model"):
            continue
        parts += [f"**{model}**", _model_table(r, real, model), reach(r, model)]
        if model == "served" and "chosen" in df:
            chosen = df[df.model == "served"].chosen.value_counts()
            parts.append("The served choice picked "
                         + ", ".join(f"{m} in {k}" for m, k in chosen.items())
                         + f" of its {chosen.sum()} fits (its candidates here: private "
                         "popularity and, from ε ≈ 6.7, DP-ALS below 10,000 people or DP "
                         "item-kNN from 10,000, as a noisy count of people says).")
    parts += ["### People needed for 0.8x of non-private ALS",
              "The smallest synthetic size from which each private model stays at or above "
              f"{TARGET:g}x of non-private ALS's NDCG@10 (at that size and every larger one "
              "measured); '>' where the largest size measured falls short. The last column "
              "bounds what more people can bring: a private model whose non-private "
              f"counterpart is below {TARGET:g}x of non-private ALS is not expected to reach "
              "it at any size.",
              _needed_table(df, r), "![scaling](scaling.png)"]
    return "\n\n".join(parts)


def _write(results: dict) -> None:
    write_section("Scaling study: private models against the size of the shop (issue 20)",
                  section(results))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epsilons")
    parser.add_argument("--max-people", type=int, default=max(SIZES))
    parser.add_argument("--no-write", action="store_true",
                        help="do not touch RESULTS.md, scaling_results.json or scaling.png")
    parser.add_argument("--served-only", action="store_true",
                        help="refit only the served choice (up to SERVED_MAX_PEOPLE) and put "
                             "its rows in place of the saved ones, keeping every other row "
                             "of scaling_results.json")
    parser.add_argument("--replot", action="store_true",
                        help="fit nothing: redraw scaling.png and (unless --no-write) the "
                             "RESULTS.md section from scaling_results.json")
    args = parser.parse_args()
    if args.replot:
        saved = json.loads((HERE / "scaling_results.json").read_text())
        plot(pd.DataFrame(saved["rows"]), HERE / "scaling.png")
        if not args.no_write:
            _write(saved)
        return
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    if args.served_only:
        served_only(args.no_write)
        return
    sizes = [n for n in SIZES if n <= args.max_people]
    epsilons = [1.0, 4.0, 16.0] if args.quick else bp.EPSILONS
    seeds = [0] if args.quick else SEEDS
    rows: list[dict] = []
    size_seconds = []
    t0 = time.perf_counter()
    with threadpool_limits(1):
        _warm(epsilons)
        for n in sizes:
            print(f"{n:,} people ...", flush=True)
            t = time.perf_counter()
            rows += run_size(n, epsilons, seeds[:1] if n >= ONE_SEED_FROM else seeds)
            size_seconds.append((n, time.perf_counter() - t))
            print(f"  {size_seconds[-1][1]:.0f} s", flush=True)
    results = {"machine": machine(), "commit": bp._commit(),
               "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
               "sizes": sizes, "epsilons": epsilons, "seeds": seeds,
               "seconds": time.perf_counter() - t0, "size_seconds": size_seconds,
               "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
               "generator": {"items": N_ITEMS, "topics": TOPICS, "median_history":
                             MEDIAN_HISTORY, "max_history": MAX_HISTORY,
                             "popularity_exponent": POPULARITY_EXPONENT},
               "eval_people": EVAL_PEOPLE, "served_max_people": SERVED_MAX_PEOPLE,
               "rows": rows}
    df = pd.DataFrame(rows)
    r = ratios(df)
    print(r.round(2).to_string())
    for model in PRIVATE:
        if model in r.index.get_level_values("model"):
            print(reach(r, model))
    if not args.no_write:
        (HERE / "scaling_results.json").write_text(json.dumps(results, indent=1, default=str))
        plot(df, HERE / "scaling.png")
        _write(results)
    else:
        print(section(results))


if __name__ == "__main__":
    main()
