"""Folding many people back into a fitted model: ``Recommender.fold_in_many`` against one
``fold_in`` per person (the baseline, which the private model choice used before), side by
side in one process on the same fitted model, with the same histories.

The data are ``bench_scaling.planted`` (power-law items, planted topics, 2,000 items); each
person's history is given back in full after a fit on 80 % of it, as the private choice
does after its validation. The per-person baseline copies the whole history matrix on each
call, so it is timed on the first ``--baseline-people`` people only and its time per person
is reported beside fold_in_many's.

    python benchmarks/bench_fold_in.py [--people 10000 100000] [--no-write]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
import persona
from _common import machine, write_section
from bench_scaling import planted
from persona.data import Interactions
from persona.privacy import DP


def _train(X: Interactions, seed: int = 0) -> Interactions:
    """Every person's events less a fifth (at random): the side a model is fitted on."""
    M = sp.csr_matrix(X.matrix)
    keep = np.random.default_rng(seed).random(M.nnz) >= 0.2
    T = sp.csr_matrix((np.where(keep, M.data, 0.0), M.indices.copy(), M.indptr.copy()),
                      shape=M.shape)
    T.eliminate_zeros()
    return X.with_matrix(T)


def _models() -> list[tuple[str, persona.models.Recommender]]:
    dp = DP(epsilon=8.0, delta=1e-6)
    return [("private popularity", persona.Popularity(privacy=dp)),
            ("private ALS (8 factors)", persona.ALS(factors=8, iterations=2,
                                                    regularization=0.1, privacy=dp))]


def bench(n: int, baseline_people: int) -> list[dict]:
    M = planted(n)
    X = Interactions.from_csr(M, [f"u{u}" for u in range(M.shape[0])],
                              [f"i{j}" for j in range(M.shape[1])])
    train = _train(X)
    users = X.users.tolist()
    rows = []
    for name, model in _models():
        model.fit(train)
        many, one = copy.deepcopy(model), copy.deepcopy(model)
        t0 = time.perf_counter()
        many.fold_in_many(X)
        t_many = time.perf_counter() - t0
        k = min(baseline_people, n)
        t0 = time.perf_counter()
        for u in users[:k]:
            one.fold_in(u, X.history(u))
        t_one = time.perf_counter() - t0
        # the same result on the people both gave back
        check = users[: min(k, 200)]
        same = np.array_equal(many.recommend_arrays(check, 10).items,
                              one.recommend_arrays(check, 10).items)
        rows.append({"people": n, "events": int(X.nnz), "model": name, "many_s": t_many,
                     "many_ms_per_person": 1e3 * t_many / n, "baseline_people": k,
                     "one_ms_per_person": 1e3 * t_one / k,
                     "baseline_all_s_estimate": t_one / k * n, "same_lists": same})
        print(rows[-1], flush=True)
    return rows


def section(rows: list[dict]) -> str:
    head = ("Produced by `benchmarks/bench_fold_in.py`. Machine: " + machine() + ". "
            "Single-threaded. `fold_in_many(X)` against one `fold_in(user, history)` per "
            "person (the baseline), on copies of the same fitted model, same histories "
            "(`bench_scaling.planted`, 2,000 items; the model fitted on 80 % of each "
            "person's events). The baseline is timed on its first people only (it copies the "
            "whole history on every call, so its time per person grows with the people); "
            "'same lists' compares both models' top 10 for the first 200 people.")
    table = ["| people | events | model | fold_in_many s | ms per person | baseline: ms per "
             "person (first N) | baseline / fold_in_many, per person | same lists |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(
            f"| {r['people']:,} | {r['events']:,} | {r['model']} | {r['many_s']:.2f} | "
            f"{r['many_ms_per_person']:.4f} | {r['one_ms_per_person']:.3f} "
            f"({r['baseline_people']:,}) | "
            f"{r['one_ms_per_person'] / r['many_ms_per_person']:.0f}x | {r['same_lists']} |")
    return head + "\n\n" + "\n".join(table)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--baseline-people", type=int, default=2_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    with threadpool_limits(1):
        for n in args.people:
            rows += bench(n, args.baseline_people)
    text = section(rows)
    print(text)
    if not args.no_write:
        write_section("Folding people back in: fold_in_many (issue 20)", text)


if __name__ == "__main__":
    main()
