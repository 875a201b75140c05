"""End-to-end privacy audits through the public API, on neighbouring stores (issue 16).

Each test builds two stores, ``D`` and ``D'`` = ``D`` plus one consenting person with their
events, fits a private model on each many times (fresh noise each fit, the Interactions built
once per store) and audits what a reader of the fitted models sees, so that everything between
the events and the release is covered: the catalogue, preprocessing, contribution bounding,
the noise and its accounting. The Gaussian releases are audited against their Gaussian-DP claim
``μ = sqrt(2ρ)`` (:func:`persona.testing.audit_gdp`, 99.9 % confidence: a correct release is
flagged at most 0.1 % of the time per audit).

What each test proves:

* ``test_new_item_*`` (issue 16, point 1): a person who alone brings an item (``hiv-test-kit``)
  cannot be detected. With a declared public catalogue (``store.define_items``) the fitted
  models have the same items, the same privacy statement (noise size included) and releases
  on that item that are noise around 0 against noise around 1, within the claim; through
  ``Popularity(privacy=...)`` on ``Interactions.from_view`` and through ``Personalizer.fit``
  (model and non-profiling fallback together). Without a declared catalogue a private fit
  refuses, on both stores alike, or its item set passes the (ε, δ) audit.
* ``test_bm25_*`` (point 2): bm25's idf reads everyone's rows, so one added person changes the
  weights of 49 others (on cb8442d: μ >= 4.3 against a claimed μ = 0.22, i.e. ε = 1). Under
  privacy it is refused with a PersonaError on both stores, or the release passes the audit;
  the Personalizer refuses it.
* ``test_late_event_*`` (point 2): with ``half_life`` and no ``now``, the decay's reference time
  is the latest event of anyone, so one late event halves everyone's weights (on cb8442d:
  μ >= 3.2 against 0.22). Refused, or the release passes the audit; with an explicit public
  ``now`` it is allowed and passes (that test also passes on cb8442d: it is the control).

Runs: 1,000 model fits per store (a leak like the two above is found with certainty, and a
noise scale off by a factor of 2 in the new-item release, μ = 1.58 against 0.79, is flagged:
μ >= 0.91-1.08 in 5 of 5 tries), 200 Personalizer fits per store.

A refusal must not depend on the data: it has to happen on ``D`` and ``D'`` alike (an error
raised on one store only would itself tell them apart).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

import persona
from persona import DP, Popularity
from persona.data import Interactions
from persona.errors import PersonaError
from persona.testing import audit_gdp, audit_samples, rho_to_mu

PURPOSE = "personalization"
T0 = "2025-03-01T10:00:00Z"
LATE = "2025-03-31T10:00:00Z"  # 30 days after everybody else
CONFIDENCE = 0.999  # a correct release is flagged at most 0.1% of the time per audit
FITS = 1_000  # model fits per store (about 1 ms each)
PERSONALIZER_FITS = 200  # Personalizer fits per store (the ledger is read and charged each time)

Events = Mapping[str, Sequence[tuple[str, str]]]  # person -> [(item, time)]


def _store(events: Events, *, define: Sequence[str] = (), label: Sequence[str] = ()) -> Any:
    """A store with one purpose, one feature, everybody consenting, the given events, an
    optional declared catalogue (``define``: ``store.define_items``; ``label``: items declared
    by ``store.label_items``) and a budget large enough for many audit fits."""
    store = persona.Store(":memory:")
    store.define_purpose(PURPOSE, description="Suggest products")
    store.define_feature("purchases", purposes=[PURPOSE], category="purchase history",
                         retention_days=None)
    if define:
        store.define_items(list(define))
    if label:
        store.label_items({item: f"Product {item}" for item in label})
    for person in events:
        store.grant(person, PURPOSE, source="signup form")
    store.ingest([{"user": person, "item": item, "feature": "purchases", "at": at}
                  for person, evs in events.items() for item, at in evs])
    store.set_privacy_budget(PURPOSE, epsilon=1e6, delta=0.5)
    return store


def _neighbours(events: Events, newcomer: Sequence[tuple[str, str]], **declared: Any
                ) -> tuple[Any, Any]:
    """``D`` and ``D'`` = ``D`` plus the consenting person ``newcomer``."""
    return _store(events, **declared), _store({**events, "newcomer": newcomer}, **declared)


def _fits(X: Interactions, model: Popularity, items: Sequence[str], runs: int) -> tuple[
        np.ndarray, list[Any]]:
    """``runs`` private fits of ``model`` on ``X``: the released popularity of ``items`` as
    served (``score`` of anyone: Popularity serves everybody the same) and the distinct
    public descriptions of the fits (items, privacy statement)."""
    out = np.empty((runs, len(items)))
    public: list[Any] = []
    # The first fit goes through the store's ledger like any other (reserved, settled);
    # the audit's other thousand releases of the same read are one experiment, left off the
    # ledger so that it is not charged a thousand times (charging is tested in
    # test_privacy_catalogue.py and the ledger tests).
    model.fit(X)
    assert X.ledger is None or X.lineage is None or X.ledger().charges(X.lineage.purpose)
    X.ledger = None
    for r in range(runs):
        model.fit(X)
        out[r] = model.score("anyone", list(items))
        desc = (list(model.items_), model.privacy_spent_.model_dump())
        if desc not in public:
            public.append(desc)
    return out, public


def _outcome(attempt: Callable[[], Any]) -> tuple[str, Any]:
    """``("refused", error)`` when ``attempt`` raises a PersonaError, else ``("ran", result)``."""
    try:
        return "ran", attempt()
    except PersonaError as err:
        return "refused", err


def _refused_alike_or_audited(
    stores: tuple[Any, Any], build: Callable[[Any], Interactions], model: Popularity,
    items: Sequence[str], reason: str,
) -> None:
    """Fit ``model`` on ``build(store)`` for both stores: both must refuse (a PersonaError whose
    message matches ``reason``), or both run and the releases pass the Gaussian-DP audit."""
    results = [_outcome(lambda s=s: _fits(build(s), model, items, FITS)) for s in stores]
    kinds = [kind for kind, _ in results]
    assert kinds[0] == kinds[1], f"refused on one store only (the refusal leaks): {results}"
    if kinds[0] == "refused":
        for _, err in results:
            assert re.search(reason, str(err), re.IGNORECASE), str(err)
        return
    (out_d, public_d), (out_p, public_p) = (res for _, res in results)
    assert public_d == public_p, "what the fits show besides the noise differs"
    assert len(public_d) == 1
    result = audit_gdp(out_d, out_p, claimed_mu=rho_to_mu(public_d[0][1]["rho"]),
                       confidence=CONFIDENCE)
    assert not result.violated, str(result)


# ------------------------------------------------------------------ 1. a new item
CATALOGUE = ["a", "b", "c", "d", "e", "f", "hiv-test-kit"]
_SHOP: Events = {f"p{i}": [(CATALOGUE[i % 6], T0), (CATALOGUE[(i + 1) % 6], T0)]
                 for i in range(20)}
_NEWCOMER = [("hiv-test-kit", T0), ("a", T0)]
_NEW_ITEM_DP = DP(epsilon=4.0, delta=1e-6, max_events_per_person=2)  # μ = 0.78 claimed
_DP_1 = DP(epsilon=1.0, delta=1e-6, max_events_per_person=2)


def test_new_item_popularity_from_view() -> None:
    stores = _neighbours(_SHOP, _NEWCOMER, define=CATALOGUE)
    model = Popularity(privacy=_NEW_ITEM_DP)
    (out_d, public_d), (out_p, public_p) = (
        _fits(Interactions.from_view(s.scope(PURPOSE)), model, CATALOGUE, FITS) for s in stores)
    # the catalogue, its order and the privacy statement (noise size) are public
    assert public_d == public_p and len(public_d) == 1, (public_d, public_p)
    assert sorted(public_d[0][0]) == sorted(CATALOGUE)
    result = audit_gdp(out_d, out_p, claimed_mu=rho_to_mu(public_d[0][1]["rho"]),
                       confidence=CONFIDENCE)
    assert not result.violated, str(result)


def test_new_item_personalizer() -> None:
    """Through Personalizer.fit: the model and the non-profiling fallback together (their ρ
    add up), and both know the declared item on both stores."""
    releases, claims = [], []
    for store in _neighbours(_SHOP, _NEWCOMER, define=CATALOGUE):
        p = persona.Personalizer(store, privacy=_NEW_ITEM_DP, model=Popularity())
        out = np.empty((PERSONALIZER_FITS, 2 * len(CATALOGUE)))
        for r in range(PERSONALIZER_FITS):
            p.fit()
            out[r] = np.concatenate([p.model_.score("anyone", CATALOGUE),
                                     p.fallback_.score("anyone", CATALOGUE)])
        assert sorted(p.model_.items_) == sorted(p.fallback_.items_) == sorted(CATALOGUE)
        releases.append(out)
        claims.append(p.model_.privacy_spent_.rho + p.fallback_.privacy_spent_.rho)
    assert claims[0] == claims[1]
    result = audit_gdp(releases[0], releases[1], claimed_mu=rho_to_mu(claims[0]),
                       confidence=CONFIDENCE)
    assert not result.violated, str(result)


def test_new_item_without_declared_catalogue() -> None:
    """No declared catalogue: the private fit refuses on both stores (and says how to declare
    one), or whether the item is served passes the (ε, δ) audit (DP partition selection)."""
    stores = _neighbours(_SHOP, _NEWCOMER)
    model = Popularity(privacy=_DP_1)  # the item set alone: at most ε = 4.18 is seen in 1,000 fits

    def served(store: Any) -> tuple[np.ndarray, Any]:
        X = Interactions.from_view(store.scope(PURPOSE))
        seen = np.array([float("hiv-test-kit" in model.fit(X).items_) for _ in range(FITS)])
        return seen, model.privacy_spent_

    results = [_outcome(lambda s=s: served(s)) for s in stores]
    kinds = [kind for kind, _ in results]
    assert kinds[0] == kinds[1], f"refused on one store only (the refusal leaks): {results}"
    if kinds[0] == "refused":
        for _, err in results:
            assert re.search("catalogue|define_items", str(err), re.IGNORECASE), str(err)
        return
    (seen_d, spent), (seen_p, _) = (res for _, res in results)
    result = audit_samples(seen_d, seen_p, claimed_epsilon=spent.epsilon, delta=spent.delta,
                           confidence=CONFIDENCE)
    assert not result.violated, str(result)


# ------------------------------------------------------------------ 2. bm25 under privacy
ITEMS = [f"i{j}" for j in range(6)]
# 50 people, 49 of whom hold i0: i0's idf is log(50) - log(1 + 49) = 0, so bm25 drops it;
# one more person without i0 makes the idf positive and brings the 49 entries back
_CROWD: Events = {**{f"p{i}": [("i0", T0), (ITEMS[1 + i % 5], T0)] for i in range(49)},
                  "p49": [("i1", T0), ("i2", T0)]}
_NO_I0 = [("i3", T0)]


def test_bm25_under_privacy_refused_or_private() -> None:
    _refused_alike_or_audited(
        _neighbours(_CROWD, _NO_I0, label=ITEMS),
        lambda s: Interactions.from_view(s.scope(PURPOSE), scaling="bm25"),
        Popularity(privacy=_DP_1), ITEMS, reason="bm25|scaling")


def test_bm25_refused_by_the_personalizer() -> None:
    store = _store(_CROWD, label=ITEMS)
    with pytest.raises(PersonaError, match=r"(?i)bm25|scaling"):  # at construction or fit
        persona.Personalizer(store, privacy=_DP_1, scaling="bm25").fit()


# ------------------------------------------------------------------ 3. a late event
_LATE = [("i1", LATE)]
_HALF_LIFE = timedelta(days=30)
_CONFIDENCE_DP = DP(epsilon=1.0, delta=1e-6, max_events_per_person=2, max_value=1.0)


def test_late_event_without_now_refused_or_private() -> None:
    """``now=None``: a late event halves the weight of everybody else's events (i0's summed
    confidence moves from 49 to 24.5)."""
    _refused_alike_or_audited(
        _neighbours(_CROWD, _LATE, label=ITEMS),
        lambda s: Interactions.from_view(s.scope(PURPOSE), half_life=_HALF_LIFE),
        Popularity("confidence", privacy=_CONFIDENCE_DP), ITEMS, reason="now|half.life")


def test_late_event_with_public_now_is_private() -> None:
    """An explicit public ``now``: each event's weight depends on its own time only."""
    now = np.datetime64("2025-04-01T10:00:00")
    stores = _neighbours(_CROWD, _LATE, label=ITEMS)
    model = Popularity("confidence", privacy=_CONFIDENCE_DP)
    (out_d, public_d), (out_p, public_p) = (
        _fits(Interactions.from_view(s.scope(PURPOSE), half_life=_HALF_LIFE, now=now), model,
              ITEMS, FITS) for s in stores)
    assert public_d == public_p and len(public_d) == 1
    result = audit_gdp(out_d, out_p, claimed_mu=rho_to_mu(public_d[0][1]["rho"]),
                       confidence=CONFIDENCE)
    assert not result.violated, str(result)


def test_late_event_through_the_personalizer_refused_or_private() -> None:
    """The Personalizer has no ``now``: with ``half_life`` under privacy it refuses on both
    stores, or uses a public reference time and its releases pass the audit."""
    model = Popularity("confidence")
    results = []
    for store in _neighbours(_CROWD, _LATE, label=ITEMS):
        p = persona.Personalizer(store, privacy=_CONFIDENCE_DP, model=model,
                                 half_life=_HALF_LIFE)

        def fits(p: Any = p) -> tuple[np.ndarray, float]:
            out = np.empty((PERSONALIZER_FITS, len(ITEMS)))
            for r in range(PERSONALIZER_FITS):
                out[r] = p.fit().model_.score("anyone", ITEMS)
            return out, p.model_.privacy_spent_.rho

        results.append(_outcome(fits))
    kinds = [kind for kind, _ in results]
    assert kinds[0] == kinds[1], f"refused on one store only (the refusal leaks): {results}"
    if kinds[0] == "refused":
        for _, err in results:
            assert re.search("now|half.life", str(err), re.IGNORECASE), str(err)
        return
    (out_d, rho_d), (out_p, rho_p) = (res for _, res in results)
    assert rho_d == rho_p
    result = audit_gdp(out_d, out_p, claimed_mu=rho_to_mu(rho_d),
                       confidence=CONFIDENCE)
    assert not result.violated, str(result)
