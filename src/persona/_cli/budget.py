"""``persona budget``: set a purpose's privacy budget and show budgets, what was spent,
what remains and every charge."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from persona._cli.common import DELTA_FLAG, EPSILON_FLAG, STORE_FLAG, open_store, print_json

if TYPE_CHECKING:
    from persona.store import Store

__all__ = ["register"]


def _period_days(text: str) -> int | None:
    if text.strip().lower() in ("none", "lifetime"):
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 36_500:
        raise argparse.ArgumentTypeError(
            f"needs a whole number of days from 1 to 36500, or 'none' for a "
            f"lifetime total, not {text!r}"
        )
    return value


def _budget_set(args: argparse.Namespace) -> int:
    store = open_store(args)
    policy = store.set_privacy_budget(args.purpose, epsilon=args.epsilon, delta=args.delta,
                                      period_days=args.period_days)
    print(f"privacy budget of {args.purpose!r} set in {args.store}: {policy.describe()}")
    return 0


def _budget_state(store: Store, purpose: str) -> dict[str, Any]:
    from persona.schema import spending

    policy = store.privacy_budget_policy(purpose)
    charges = store.privacy_charges(purpose)
    if policy is None:
        s = spending(store.charge_storage().load_entries(), purpose, period_days=None,
                     now=datetime.now(UTC))
        spent, remaining = (s.epsilon, s.delta), None
    else:
        ledger = store.privacy_ledger(purpose)
        spent, remaining = ledger.spent(purpose), ledger.remaining(purpose)
    return {
        "purpose": purpose,
        "policy": None if policy is None else policy.model_dump(mode="json"),
        "statement": "no budget set: the first private fit sets a lifetime total equal to its "
                     "own (ε, δ)" if policy is None else policy.describe(),
        "spent": {"epsilon": spent[0], "delta": spent[1]},
        "remaining": None if remaining is None
        else {"epsilon": remaining[0], "delta": remaining[1]},
        "charges": [c.model_dump(mode="json") for c in charges],
    }


def _budget_show(args: argparse.Namespace) -> int:
    store = open_store(args, existing=True)
    purposes = [args.purpose] if args.purpose else sorted(store.purposes)
    states = [_budget_state(store, p) for p in purposes]
    if args.json:
        print_json(states)
        return 0
    if not states:
        print(f"no purposes are defined in {args.store}")
    for st in states:
        policy = st["policy"]
        within = "" if policy is None or policy["period_days"] is None \
            else f" in the last {policy['period_days']} days"
        print(f"purpose {st['purpose']!r}")
        print(f"  budget:    {st['statement']}")
        print(f"  spent:     ε = {st['spent']['epsilon']:.4g}, "
              f"δ = {st['spent']['delta']:.3g}{within}")
        if st["remaining"] is not None:
            print(f"  remaining: ε = {st['remaining']['epsilon']:.4g}, "
                  f"δ = {st['remaining']['delta']:.3g}")
        print(f"  charges:   {len(st['charges'])}" + (" (oldest first)" if st["charges"] else ""))
        for c in st["charges"]:
            print(f"    {c['created_at'][:19]}  {c['status']:<8}  {c['mechanism']}: "
                  f"ε = {c['epsilon']:.4g}, δ = {c['delta']:.3g}"
                  + (f", snapshot {c['snapshot']}" if c["snapshot"] else ""))
    return 0


def register(sub: Any) -> None:
    """Add ``persona budget [set|show]`` to the command's subparsers."""
    budget = sub.add_parser("budget", help="set and show privacy budgets",
                            description="A purpose's privacy budget is what all private fits "
                            "on its data may spend: a lifetime total (the default) or an "
                            "amount per rolling period, which is a weaker guarantee.")
    budget.set_defaults(func=_budget_show, purpose=None, json=False)  # 'persona budget'
    bsub = budget.add_subparsers(dest="action", metavar="ACTION")
    bset = bsub.add_parser("set", help="set a purpose's privacy budget (recorded in the audit log)",
                           epilog="Example: persona budget set --purpose personalization "
                           "--epsilon 4 --delta 1e-6 --period-days 365")
    bset.add_argument("--store", **STORE_FLAG)
    bset.add_argument("--purpose", required=True)
    bset.add_argument("--epsilon", required=True, type=EPSILON_FLAG)
    bset.add_argument("--delta", required=True, type=DELTA_FLAG)
    bset.add_argument("--period-days", type=_period_days, default=None,
                      help="a budget per rolling period of N days (default: a lifetime total)")
    bset.set_defaults(func=_budget_set)
    bshow = bsub.add_parser("show", help="budgets: policy, spent, remaining and charges "
                            "(the default)", epilog="Example: persona budget show --purpose "
                            "personalization --json")
    bshow.add_argument("--store", **STORE_FLAG)
    bshow.add_argument("--purpose", help="one purpose (default: every purpose)")
    bshow.add_argument("--json", action="store_true")
    bshow.set_defaults(func=_budget_show)
