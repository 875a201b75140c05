"""``persona evaluate``: fit a model on part of the consented data and measure how well it
ranks the held-out part."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from persona._cli.common import (
    MAX_FACTORS,
    MAX_ITERATIONS,
    MAX_N,
    MODEL_NAMES,
    STORE_FLAG,
    UsageError,
    int_flag,
    model_from_flags,
    open_store,
    print_json,
)
from persona.errors import ValidationError

if TYPE_CHECKING:
    from persona.models import Recommender

__all__ = ["register"]

_METRICS = ("precision", "recall", "ndcg", "map", "coverage")


def _time(text: str) -> datetime:
    """An ISO 8601 date or time (argparse ``type``); without a zone it is UTC."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"needs an ISO 8601 date or time, e.g. 2026-11-01 or 2026-11-01T00:00:00Z; "
            f"not {text!r}"
        ) from None


def _cut(when: datetime) -> np.datetime64:
    """``when`` in UTC, as the event times of :class:`~persona.data.Interactions` are."""
    try:
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before the year 1 in UTC
        raise UsageError(f"--test-from {when.isoformat()} is out of range") from None
    return np.datetime64(when, "us")


def _model(args: argparse.Namespace) -> Recommender:
    return model_from_flags(args)


def _evaluate(args: argparse.Namespace) -> int:
    import persona
    from persona.data import Interactions, leave_k_out, time_split

    ks = sorted(set(args.k or [10]))
    store = open_store(args, existing=True)
    with store:
        view = store.scope(args.purpose)  # unknown purpose: a one-line error
        X = Interactions.from_view(view)
    if X.nnz == 0:
        raise UsageError(
            f"no consented data for {args.purpose!r} in {args.store}: ingest events and "
            "record consent first"
        )
    if args.test_from is not None:
        try:  # a cut that leaves a side empty is refused, with the span of the events
            train, test = time_split(X, _cut(args.test_from))
        except ValidationError as exc:
            raise UsageError(f"--test-from {args.test_from.isoformat()}: {exc}") from None
        split = {"kind": "time", "test_from": args.test_from.isoformat()}
        zone = "" if args.test_from.tzinfo is not None else " UTC"
        said = f"events from {args.test_from.isoformat()}{zone} on"
    else:
        args.leave_out = args.leave_out or 1
        try:  # nobody with more than --leave-out items is refused
            train, test = leave_k_out(X, k=args.leave_out, by="time")
        except ValidationError as exc:
            raise UsageError(f"--leave-out {args.leave_out}: {exc}") from None
        split = {"kind": "leave_out", "n": args.leave_out}
        said = f"each person's latest {args.leave_out} item(s) (people with more)"
    model = _model(args).fit(train)
    report = persona.evaluate(model, train, test, k=ks)  # one list of max(k) per person
    results = [report.at[k] for k in ks]
    if args.json:
        print_json({
            "purpose": args.purpose, "model": args.model, "split": split,
            "differential_privacy": False, "saved": False,
            "train": {"people": train.n_users, "items": train.n_items,
                      "interactions": train.nnz},
            "test": {"interactions": test.nnz},
            "results": [r.model_dump(mode="json") for r in results],
        })
        return 0
    print(f"{type(model).__name__} on {args.purpose!r}: trained on {train.nnz:,} "
          f"interactions, tested on {test.nnz:,} ({said}), {results[0].n_users:,} people "
          "evaluated; fitted without differential privacy, charged to no budget, not saved")
    print(f"{'k':>5}  " + "  ".join(f"{m:>9}" for m in _METRICS))
    for r in results:
        print(f"{r.k:>5}  " + "  ".join(f"{getattr(r, m):>9.4f}" for m in _METRICS))
    return 0


def register(sub: Any) -> None:
    """Add ``persona evaluate`` to ``sub``."""
    ev = sub.add_parser(
        "evaluate", help="fit on part of the consented data and print ranking metrics",
        description="Read a purpose's consented data, hold out each person's latest items "
        "(--leave-out N, the default: 1) or everything from a time on (--test-from), fit "
        "the model on the rest, and print precision, recall, NDCG, MAP and coverage at "
        "each k (as implicit.evaluation defines them). Models are fitted without "
        "differential privacy and nothing is saved.",
        epilog="Example: persona evaluate --model als --factors 32 --k 5 --k 10 "
        "--test-from 2026-11-01")
    ev.add_argument("--store", **STORE_FLAG)
    ev.add_argument("--purpose", default="personalization")
    ev.add_argument("--model", choices=MODEL_NAMES, default="als")
    ev.add_argument("--factors", type=int_flag(1, MAX_FACTORS), default=64,
                    help=f"latent factors of als/bpr (1 to {MAX_FACTORS})")
    ev.add_argument("--iterations", type=int_flag(1, MAX_ITERATIONS), default=15,
                    help=f"training sweeps of als/bpr (1 to {MAX_ITERATIONS})")
    ev.add_argument("--k", action="append", type=int_flag(1, MAX_N), metavar="K",
                    help=f"list length to measure at (1 to {MAX_N}; default 10); repeat "
                    "for several")
    split = ev.add_mutually_exclusive_group()
    split.add_argument("--leave-out", type=int_flag(1, 1_000), metavar="N",
                       help="test on each person's latest N items (default 1)")
    split.add_argument("--test-from", type=_time, metavar="TIME",
                       help="test on the events from this ISO 8601 time on (UTC unless it "
                       "names a zone), train on those before")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=_evaluate)
