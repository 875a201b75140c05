"""The end-to-end demo behind ``persona demo`` (and ``make demo``).

It replays the bundled Online Retail sample as of the shop's last day (10 December 2011):
customers with realistic consent states, a private model, explanations, a withdrawal, an
erasure, the privacy budget ledger, reviewer reports and a privacy–utility plot.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import persona
from persona.datasets import ATTRIBUTION, load_demo_shop
from persona.personalizer import fit_private_choice

__all__ = ["run_demo", "run_store_walkthrough"]

SHOP_DAY = datetime(2011, 12, 10, 12, 0, tzinfo=UTC)
DEMO_EPSILON = 8.0
DEMO_DELTA = 1e-6

#: The demo shop's organisation details for the GDPR reports: made-up examples (a real shop
#: passes its own, e.g. ``persona report --org org.toml``).
DEMO_ORGANISATION = {
    "controller": {"name": "Demo Gift Shop Ltd (example)",
                   "contact": "privacy@shop.example, 1 Example Street, London"},
    "dpo": {"name": "Data-protection officer (example)", "contact": "dpo@shop.example"},
    "supervisory_authority": {"name": "Information Commissioner's Office",
                              "contact": "ico.org.uk/make-a-complaint"},
    "recipients": [{"name": "Example Cloud Hosting", "role": "processor: hosting",
                    "country": "Ireland"},
                   {"name": "Example Ad Network", "role": "third party: advertising",
                    "purposes": ["ads"], "country": "United States"}],
    "transfers": [{"recipient": "Example Ad Network", "country": "United States",
                   "safeguard": "standard_contractual_clauses",
                   "documents": "ask dpo@shop.example for a copy"}],
    "security_measures": ["Disks and backups encrypted at rest (example)",
                          "Staff access by role, reviewed every quarter (example)"],
    "data_subjects": ["Customers of the online shop"],
    "data_sources": {"purchases": "your orders in our online shop",
                     "country": "the delivery address of your orders"},
}


def run_demo(
    folder: Path, out: TextIO, *, customers: int = 600, plot: bool = True
) -> dict[str, Any]:
    """Run the demo into ``folder``; returns what it made (paths and key facts)."""
    started = time.perf_counter()

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    shop = load_demo_shop()
    people = shop.customers[: max(10, min(customers, len(shop.customers)))]
    chosen = set(people)
    events = [e for e in shop.events if e["user"] in chosen]
    path = folder / "shop.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store = persona.Store(path, clock=lambda: SHOP_DAY)

    say(f"persona {persona.__version__} demo: a UK online shop, replayed as of {SHOP_DAY:%d %B %Y}")
    say(f"Data: {ATTRIBUTION}")
    say("")
    store.define_purpose("personalization",
                         description="Suggest products based on what you bought")
    store.define_purpose("analytics", description="Count sales to improve the shop")
    store.define_purpose("ads", description="Show our ads on other sites", sharing=True)
    store.define_feature("purchases", purposes=["personalization", "analytics"],
                         category="purchase history", retention_days=730)
    store.define_feature("country", purposes=["ads"], category="country of delivery",
                         retention_days=None)

    # realistic consent: most say yes at signup; some decline; some withdraw later
    rng = np.random.default_rng(11)
    first_seen: dict[str, datetime] = {}
    for e in events:
        first_seen.setdefault(e["user"], e["at"])
    states = rng.choice(["grant", "decline", "withdraw_later"], size=len(people),
                        p=[0.85, 0.08, 0.07])
    state_of = dict(zip(people, states, strict=True))
    for user in people:
        signup = first_seen[user] - timedelta(minutes=5)
        if state_of[user] == "decline":
            store.decline(user, "personalization", source="signup form v3",
                          notice_version="2010-11", at=signup)
        else:
            store.grant(user, "personalization", source="signup form v3",
                        notice_version="2010-11", at=signup)
            if state_of[user] == "withdraw_later":
                store.withdraw(user, "personalization", source="privacy settings page",
                               at=SHOP_DAY - timedelta(days=int(rng.integers(2, 60))))
    report = store.ingest(events)
    store.ingest([{"user": u, "item": c, "feature": "country", "at": first_seen[u]}
                  for u, c in shop.countries.items() if u in chosen])
    store.label_items(shop.labels)
    counts = {s: int((states == s).sum()) for s in ("grant", "decline", "withdraw_later")}
    say(f"Store: {path}")
    say(f"  {report.inserted:,} purchases of {len(people)} customers; consent to "
        f"personalization: {counts['grant']} granted, {counts['decline']} declined, "
        f"{counts['withdraw_later']} granted and later withdrew.")

    store.set_privacy_budget("personalization", epsilon=2 * DEMO_EPSILON, delta=2 * DEMO_DELTA)
    privacy = persona.DP(epsilon=DEMO_EPSILON, delta=DEMO_DELTA)
    say("")
    say(f"Training a private model (differential privacy ε = {DEMO_EPSILON:g}, "
        f"δ = {DEMO_DELTA:g}, unit of privacy: one person) on consented data only; the "
        "Personalizer chooses it by a private validation ...")
    p = persona.Personalizer(store, privacy=privacy).fit()
    say(f"  trained on {len(p.model_.users_)} people and {len(p.model_.items_):,} products.")
    if p.choice_ is not None:
        say(f"  {p.choice_.describe()}")

    consenting = [u for u in people if state_of[u] == "grant"]
    shown = consenting[:3]
    for user in shown:
        say("")
        say(f"Top 5 for customer {user}:")
        for r in p.recommend(user, n=5):
            label = r.explanation.label if r.explanation is not None else r.item
            say(f"  {r.rank}. {label}")
            if r.explanation is not None:
                say(f"     {r.explanation.text}")

    withdrawn = next(u for u in people if state_of[u] == "withdraw_later")
    say("")
    say(f"Customer {withdrawn} withdrew consent. What they see now:")
    recs = p.recommend(withdrawn, n=3)
    for r in recs:
        say(f"  {r.rank}. {r.explanation.label if r.explanation is not None else r.item}")
    why = recs[0].explanation
    assert why is not None  # recommend explains by default
    say(f"     {why.text}")
    for sentence in why.statements["not_used"][:1]:
        say(f"     {sentence}")

    erased = consenting[-1]
    p.forget(erased)
    say("")
    say(f"Customer {erased} asked to be erased. Held about them now: "
        f"{'something' if store.export(erased)['held'] else 'nothing'}; "
        f"their next visit gets the list everyone gets: {_kind(p.recommend(erased, n=3)[0])}.")

    say("")
    say("Privacy budget ledger (personalization):")
    for charge in store.charge_storage().load_charges():
        say(f"  {charge.created_at:%Y-%m-%d} {charge.mechanism}: ε = {charge.epsilon:.3g}, "
            f"δ = {charge.delta:.2g}, data snapshot {charge.snapshot}")
    budget = store.privacy_budget("personalization")
    spent = sum(c.epsilon for c in store.charge_storage().load_charges())
    say(f"  total ε spent {spent:.3g} of {budget[0]:g}" if budget is not None
        else f"  total ε spent {spent:.3g} (no budget set)")

    import persona.reports as reports

    org = reports.Organisation.model_validate(DEMO_ORGANISATION)
    made = {
        "main_parameters": reports.main_parameters(p, list_length=5),
        "records_of_processing": reports.records_of_processing(store, **org.arguments()),
        f"transparency-{shown[0]}": reports.transparency(
            store, shown[0], **org.arguments("transparency")),
    }
    for name, rep in made.items():
        (folder / f"{name}.json").write_text(rep.model_dump_json(indent=2), encoding="utf-8")
        (folder / f"{name}.html").write_text(rep.to_html(document=True), encoding="utf-8")
    say("")
    say("Reviewer reports (HTML and JSON): " + ", ".join(f"{n}.html" for n in made))

    plot_path = None
    if plot:
        plot_path = privacy_utility_plot(shop, folder, say)
    store.audit.check()
    say(f"Audit log: {len(store.audit)} entries, hash chain intact.")
    store.close()
    say("")
    say(f"Done in {time.perf_counter() - started:.0f} s. Files are in {folder}")
    return {"store": path, "shown": shown, "withdrawn": withdrawn, "erased": erased,
            "reports": sorted(made), "plot": plot_path}


def _kind(rec: persona.Recommendation) -> str:
    """The kind of a recommendation's explanation, in words ("non-personalised")."""
    return rec.explanation.kind.replace("_", "-") if rec.explanation is not None else "none"


def _public_sample(shop: Any) -> Any:
    """The whole bundled sample (public data, CC BY 4.0) as interactions over its catalogue,
    outside the store: an evaluation set whose private fits spend no store budget."""
    import numpy as np
    import scipy.sparse as sp

    from persona.data import Interactions

    users = list(dict.fromkeys(e["user"] for e in shop.events))
    items = list(dict.fromkeys([*shop.labels, *(e["item"] for e in shop.events)]))
    u = {x: k for k, x in enumerate(users)}
    i = {x: k for k, x in enumerate(items)}
    rows = np.array([u[e["user"]] for e in shop.events])
    cols = np.array([i[e["item"]] for e in shop.events])
    values = np.array([e["value"] for e in shop.events], dtype=np.float64)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(len(users), len(items)))
    return Interactions.from_csr(matrix, users, items, scaling="log")


def privacy_utility_plot(shop: Any, folder: Path, say: Any) -> Path | None:
    """A small privacy–utility sweep, plotted to ``privacy_utility.png``.

    It runs on the bundled public sample, not on the store: every private fit on the
    store's data is charged to the purpose's budget, and a sweep of several ε would spend it
    on evaluation. A shop runs such a sweep on a separate evaluation data set."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is in the demo extra
        say("Privacy–utility plot skipped: install matplotlib (pip install 'persona[demo]').")
        return None
    from persona.data import leave_k_out

    train, test = leave_k_out(_public_sample(shop), k=1, random_state=0)
    epsilons = [1.0, 4.0, 16.0]
    served, als_, pop_ = "served private model", "private ALS", "private popularity"
    rows: dict[str, list[float]] = {served: [], als_: [], pop_: []}
    chosen: list[str] = []
    for eps in epsilons:
        dp = persona.DP(epsilon=eps, delta=DEMO_DELTA)
        fallback_dp, model_dp = dp.split(0.1)  # the Personalizer's default fallback_share
        pick = fit_private_choice(train, model_dp, fallback_dp, shop.labels)
        chosen.append(pick.choice.chosen)
        als = persona.ALS(factors=16, iterations=6, random_state=0, privacy=dp).fit(train)
        pop = persona.Popularity(privacy=dp).fit(train)
        rows[served].append(persona.evaluate(pick.model, train, test, k=10).ndcg)
        rows[als_].append(persona.evaluate(als, train, test, k=10).ndcg)
        rows[pop_].append(persona.evaluate(pop, train, test, k=10).ndcg)
    plain = persona.evaluate(persona.ALS(factors=16, iterations=6, random_state=0).fit(train),
                             train, test, k=10).ndcg
    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, values), style in zip(rows.items(), ("o-", "s:", "^--"), strict=True):
        ax.plot(epsilons, values, style, label=name)
    for eps, value, name in zip(epsilons, rows[served], chosen, strict=True):
        ax.annotate(name, (eps, value), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8)
    ax.axhline(plain, color="grey", linestyle="--", label="ALS without privacy")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("privacy loss ε (smaller is more private)")
    ax.set_ylabel("NDCG@10 (leave-one-out)")
    ax.set_title("Privacy and utility on the demo shop")
    ax.margins(x=0.12, y=0.15)
    ax.legend()
    fig.tight_layout()
    path = folder / "privacy_utility.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    say(f"Privacy–utility plot: {path.name} (NDCG@10 at ε = 1, 4, 16: served private model "
        f"{', '.join(f'{v:.3f}' for v in rows[served])} ({', '.join(chosen)}), private "
        f"popularity {', '.join(f'{v:.3f}' for v in rows[pop_])}, private ALS "
        f"{', '.join(f'{v:.3f}' for v in rows[als_])}; without privacy {plain:.3f})")
    say("  (a study on this copy of the data: its spend is not charged to the shop's ledger)")
    return path


def run_store_walkthrough(folder: Path, out: TextIO) -> Path:
    """A shorter walkthrough of the consent-scoped store alone; returns the store path."""

    def say(text: str = "") -> None:
        print(text, file=out)

    path = folder / "walkthrough.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    store = persona.Store(path)
    store.define_purpose("personalization", description="Suggest products")
    store.define_feature("purchases", purposes=["personalization"], category="purchase history",
                         retention_days=730)
    now = datetime.now(UTC).replace(microsecond=0)
    store.grant("ana", "personalization", source="signup form v3")
    store.grant("dev-42", "personalization", source="app settings")
    store.ingest([{"user": u, "item": i, "feature": "purchases", "at": now - timedelta(days=d)}
                  for u, i, d in [("ana", "boots", 9), ("ana", "socks", 3), ("dev-42", "tent", 4)]])
    view = store.scope("personalization")
    say(f"Read for personalization: {len(view.events())} events")
    store.withdraw("ana", "personalization")
    say(f"After ana withdrew: {len(view.events())} events")
    (folder / "export-ana.json").write_text(json.dumps(store.export("ana"), indent=2))
    store.erase("dev-42")
    raw = b"".join(p.read_bytes() for p in folder.glob("walkthrough.db*"))
    say(f"the store file still contains 'dev-42': {b'dev-42' in raw}")
    say(f"hash chain intact: {store.audit.verify()}")
    store.close()
    return path
