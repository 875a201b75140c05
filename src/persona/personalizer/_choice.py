"""Which model a private Personalizer serves when it is given none: chosen by a charged,
differentially private validation score, never by looking at the data outside the noise.

The candidates are fixed by public inputs and a DP count of people: the private popularity
list (which the Personalizer fits as its fallback anyway); ``ContentKNN`` on the item labels
alone when the store has labels and a declared catalogue (it pools nobody's events and
spends nothing); and from a model share of ε = :data:`ALS_FROM_EPSILON` one pooled model:
private ``ALS()``, or private ``ItemKNN()`` when a noisy count of people (a charged DP
release) is at least :data:`KNN_FROM_PEOPLE` (below that ε, the pooled model's share goes to
the popularity list instead). When popularity is the only candidate, nothing is held out or
released: popularity gets the whole (ε, δ).

Otherwise each person with two or more items has up to :data:`HOLD_OUT` of them held out
(at most half); the candidates are fitted on the rest. Every release of the validation is
a zCDP (Gaussian) release on the same people, so they share one budget: ρ of the model's
and the fallback's (ε, δ) together, split by :data:`CHOICE_SHARE` and
:data:`POPULARITY_SHARE`, and charged as one spend whose ε is OpenDP's conversion of their
summed ρ (:func:`persona.privacy.accounting.compose_zcdp`). Adding up ε shares instead
would leave half of ρ unused when ALS is a candidate. Without a declared catalogue
(``DP(items="select")``) the items are selected privately once, for every candidate.

Each person then scores each candidate against popularity: +1 when the candidate's top 10
has one of their held-out items and popularity's has none, -1 the other way round, 0 when
both or neither do. Those gains are summed over people and released with
:func:`persona.privacy.private_item_counts` (``signed=True``; one person changes each sum by
at most 1: the audited count mechanism). One noisy sum per candidate carries less noise on
the comparison than noisy hits per candidate and popularity, whose difference adds two
noises: at the same ε, half of it with one candidate besides popularity, 0.58 with two (the
plans are pinned in the tests). The candidate with the largest noisy gain is served if that
gain is :data:`MARGIN_SCALES` noise scales above 0, else popularity: the served model is
never one that the measurement shows below popularity, and a shop whose data are too few for
the noise gets popularity. The chosen model gets each person's held-out items back into
their own history (their own data; the pooled releases are not recomputed).
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from persona.data import Interactions, leave_k_out
from persona.errors import PrivateInputError, ValidationError
from persona.models import (
    ALS,
    ContentKNN,
    ItemKNN,
    Popularity,
    Recommender,
    private_item_universe,
)
from persona.privacy import DP, private_item_counts
from persona.privacy.accounting import compose_zcdp, rho_budget
from persona.schema import PrivacySpent

__all__ = [
    "ALS_FROM_EPSILON",
    "CHOICE_SHARE",
    "COUNT_SHARE",
    "HOLD_OUT",
    "HOLD_OUT_SHARE",
    "KNN_FROM_PEOPLE",
    "MARGIN_SCALES",
    "POPULARITY_SHARE",
    "PRIVATE_ALS",
    "PRIVATE_ALS_WEIGHT_BUDGET",
    "PRIVATE_KNN",
    "PRIVATE_KNN_MAX_EVENTS",
    "ModelChoice",
    "PrivateChoice",
    "fit_private_choice",
    "with_item_text",
]

#: The share of the choice's zCDP budget ρ spent on the noisy validation gains (ρ adds up
#: over releases: 5 % of ρ alone would cost about a fifth of ε, 0.20 at ε = 1 and 0.19 at
#: ε = 8, and it costs the popularity list 1/√0.95 - 1, 2.6 %, more noise; both pinned in
#: test_private_choice.py).
CHOICE_SHARE = 0.05
#: Private ALS is a candidate from this model share of ε. Fitting it costs the popularity
#: list part of its share (see POPULARITY_SHARE). In benchmarks/RESULTS.md (3 seeds) DP-ALS
#: with the whole ε was under private popularity on ml-latest-small at ε = 2 (NDCG@10
#: 0.146 against 0.164) and above it from ε = 4 (0.204 against 0.178), and under it at every
#: ε on the demo shop (`persona demo`'s plot); with only its share of a choice it needs
#: more ε than that.
ALS_FROM_EPSILON = 6.0
#: From ALS's ε on, the share of the choice's ρ spent on a noisy count of people (one per
#: person: the audited count mechanism), which decides the pooled candidate.
COUNT_SHARE = 0.01
#: From this noisy count of people on, private item-kNN is the pooled candidate instead of
#: ALS: in benchmarks/RESULTS.md's scaling study (synthetic data, ε = 8) DP-ALS keeps 0.60x
#: of non-private ALS's NDCG@10 from 10,000 people on, its own settings without noise 0.63x,
#: while private item-kNN reaches 0.8x from 10,000 people.
KNN_FROM_PEOPLE = 10_000
#: The private item-kNN candidate's settings (bench_privacy.py's): its contribution bound
#: when the privacy sets none (DP's default of 64 is for counts), neighbours, 1,000-item
#: head (ItemKNN's default).
PRIVATE_KNN: dict[str, Any] = {"neighbours": 50}
PRIVATE_KNN_MAX_EVENTS = 32
#: A candidate replaces popularity only if its noisy gain over popularity is this many
#: standard deviations of its noise above 0 (a model level with popularity replaces it
#: about 2 % of the time).
MARGIN_SCALES = 2.0
#: The private ALS candidate's settings: few factors and iterations, as the privacy sweep
#: of benchmarks/bench_privacy.py uses (each noisy statistic then carries less noise).
PRIVATE_ALS: dict[str, Any] = {"factors": 8, "iterations": 2, "regularization": 0.1}
#: DP-ALS's per-person weight budget (``DP.weight_budget``) when the privacy sets none: each
#: person's items weighted ``min(1, 4 / sqrt(n))``, best in the privacy sweep.
PRIVATE_ALS_WEIGHT_BUDGET = 4.0
#: With ALS a candidate, the share of the choice's ρ (less the gains') that goes to the
#: popularity list rather than to ALS, so that a popularity list chosen over ALS is not
#: served at the fallback's tenth of ε. A sixth is about the ρ it had when shares of ε were
#: added up (0.37 of ε, 0.16 of ρ at ε = 8): on ml-latest-small at ε = 8 the served model
#: scored 0.169 ± 0.072 NDCG@10 when popularity kept only the tenth (one seed of three
#: chose it), 0.175 ± 0.002 with those 0.37 (bench_privacy.py; both runs are in the history
#: of benchmarks/privacy_results.json; private popularity with the whole ε: 0.181).
#: Popularity gains little from more ρ at such ε; ALS gets the rest.
POPULARITY_SHARE = 1.0 / 6.0
#: The validation list length: a hit is a held-out item in the candidate's top 10.
VALIDATION_N = 10
#: Up to this many items of each person are held out for the validation, at most
#: HOLD_OUT_SHARE of their items. More held-out items make a person's hit likelier for a
#: model that finds what they like and so widen the gap the noise must not hide: on the
#: demo shop (600 people) the text model's exact gain over popularity was 59 people with
#: one item held out and 138 with up to five (one-off run, ε = 1000).
HOLD_OUT = 5
#: The largest share of a person's items held out (one of two or three items).
HOLD_OUT_SHARE = 0.5


class ModelChoice(BaseModel):
    """How a private Personalizer chose its model (every number here is a DP release or
    public)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    candidates: tuple[str, ...]
    """The candidates, fixed by public inputs (popularity first)."""
    gains: dict[str, float]
    """Each candidate other than popularity: its noisy count of people with a held-out item
    in its top 10 and none in popularity's, less the people for whom it is the other way
    round (empty when popularity is the only candidate)."""
    noise_scale: float
    """The standard deviation of the noise on each gain (0 when nothing was released)."""
    margin: float
    """How far above 0 a candidate's noisy gain had to be for it to be chosen."""
    chosen: str
    """The candidate with the largest noisy gain if that is above ``margin``, else
    popularity."""
    spent: PrivacySpent | None
    """What releasing the gains spent (part of the model's share of the privacy); ``None``
    when popularity was the only candidate and nothing was released."""
    people: float | None = None
    """The noisy count of people (a DP release) that chose the pooled candidate, item-kNN
    or ALS; ``None`` below ALS's ε, where none is pooled."""

    def describe(self) -> str:
        """One plain sentence for a reviewer."""
        if not self.gains:
            return (f"Served {self.chosen}: it was the only candidate for this store and ε, "
                    "so no validation was run and none of the privacy budget went to one.")
        gains = ", ".join(f"{k} {v:+.0f}" for k, v in self.gains.items())
        counted = "" if self.people is None else (
            f" The pooled candidate was picked by a noisy count of {self.people:,.0f} people "
            f"(item-kNN from {KNN_FROM_PEOPLE:,}, else ALS).")
        return (f"Chose {self.chosen} by a private validation: noisy gains over popularity "
                f"in hits@{VALIDATION_N}: {gains} people (noise scale {self.noise_scale:.3g}; "
                f"a model replaces popularity only with a gain above {self.margin:.3g})."
                + counted)


@dataclass
class PrivateChoice:
    """What :func:`fit_private_choice` returns."""

    model: Recommender
    fallback: Popularity
    choice: ModelChoice
    spents: list[PrivacySpent]
    """What the ledger is charged (their ε and δ add up to at most the privacy's): the
    validation's releases composed in zCDP into one spend (beside the item selection when
    no catalogue was declared), or popularity's release when it was the only candidate."""
    releases: list[PrivacySpent]
    """Every release as it was made, in order (each with its own ε at the choice's δ; what
    they cost together is :attr:`spents`)."""
    candidates: dict[str, Recommender]
    """Every candidate as fitted, by name. Those neither chosen nor the popularity list keep
    the training side of the validation: each person's history less their held-out items."""
    held_out: Interactions | None
    """The validation side: each person's held-out items (same people and items as the
    data; the caller's own data, never released); ``None`` when popularity was the only
    candidate and nothing was held out."""


def with_item_text(model: Recommender, item_text: Mapping[str, str]) -> Recommender:
    """``model`` with the store's item labels as its ``item_text`` when it reads item text
    and was given none (a copy; the template is left as it is)."""
    if not getattr(type(model), "reads_item_text", False):
        return model
    if getattr(model, "item_text", None) is not None:
        return model
    if not item_text:  # refused before anything is reserved or read
        raise ValidationError(
            f"{type(model).__name__} reads the items' public text, and the store has no item "
            "labels: label the items with store.label_items({item: title, ...}) or pass "
            "item_text={...} to the model",
            errors=[{"row": None, "field": "item_text", "message": "no item labels"}],
        )
    return type(model)(**{**model.get_params(deep=False), "item_text": dict(item_text)})


def _hold_out(X: Interactions) -> tuple[Interactions, Interactions, np.ndarray, np.ndarray]:
    """:func:`persona.data.leave_k_out` of up to :data:`HOLD_OUT` items of each person, at
    most half of their items (one of two or three), uniformly at random (OS entropy; the
    choice of items is no noise and the guarantee does not rest on it), and never an error
    when nobody has two. Also the row and column of every held-out event."""
    rng = np.random.default_rng(secrets.randbits(128))
    train, test = leave_k_out(X, HOLD_OUT, random_state=rng, allow_empty=True,
                              max_share=HOLD_OUT_SHARE)
    rows = np.repeat(np.arange(test.matrix.shape[0]), np.diff(test.matrix.indptr))
    return train, test, rows, test.matrix.indices


def _check_inputs(X: Any, model_dp: Any, fallback_dp: Any, item_text: Any) -> None:
    """Refuse, before anything is fitted or released, arguments of the wrong kind."""
    problems = []
    if not isinstance(X, Interactions):
        problems.append(("X", f"X must be persona Interactions, not {type(X).__name__}"))
    for name, value in (("model_dp", model_dp), ("fallback_dp", fallback_dp)):
        if not isinstance(value, DP):
            problems.append((name, f"{name} must be a persona.DP, not {type(value).__name__}"))
    if not isinstance(item_text, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in item_text.items()):
        problems.append(("item_text", "item_text must be a mapping of item ids to their "
                                      "public text, {item: title, ...} ({} for none)"))
    if problems:
        raise ValidationError("; ".join(m for _, m in problems),
                              errors=[{"row": None, "field": f, "message": m}
                                      for f, m in problems])


def _reserve(X: Interactions, model_dp: DP, fallback_dp: DP) -> tuple[Any, Any, Any] | None:
    """Reserve the whole (ε, δ) on the ledger of the store ``X`` was read from, before
    anything is released (``None`` when it came from elsewhere, or when its caller charges,
    as the Personalizer does)."""
    source, purpose = X.ledger, getattr(X.lineage, "purpose", None)
    if source is None or purpose is None:
        return None
    total = (model_dp.epsilon + fallback_dp.epsilon, model_dp.delta + fallback_dp.delta)
    ledger = source(default=total)
    seq = getattr(X.lineage, "audit_seq", None)
    return ledger, ledger.reserve(purpose, total), None if seq is None else f"audit#{seq}"


def _added(a: DP, b: DP) -> DP:
    """``a`` with ``b``'s ε and δ added (one release spending both shares)."""
    return a.model_copy(update={"epsilon": a.epsilon + b.epsilon, "delta": a.delta + b.delta})


def _people(X: Interactions, dp_cfg: DP) -> tuple[float, PrivacySpent]:
    """A noisy count of the people of ``X``: each person adds 1 to one sum, released with
    :func:`persona.privacy.private_item_counts` (the audited count mechanism)."""
    ones = sp.csr_matrix(np.ones((X.matrix.shape[0], 1)))
    count_dp = DP(epsilon=dp_cfg.epsilon, delta=dp_cfg.delta, max_events_per_person=1)
    noisy, spent = private_item_counts(ones, count_dp)
    return float(noisy[0]), spent.model_copy(update={"mechanism": "dp-people-count"})


def _gains(candidates: dict[str, Recommender], X: Interactions, rows: np.ndarray,
           cols: np.ndarray) -> sp.csr_matrix:
    """One row per person with held-out items, one column per candidate other than
    popularity: +1 when the candidate's top 10 has one of the person's held-out items and
    popularity's has none, -1 the other way round, else 0."""
    names = list(candidates)
    people = np.unique(rows)
    if not people.size:
        return sp.csr_matrix((0, len(names) - 1))
    users = [str(u) for u in X.users[people].tolist()]
    person = np.searchsorted(people, rows)  # each held-out event's person
    held = np.asarray(X.items[cols], dtype=object)
    H = np.zeros((people.size, len(names)), dtype=np.int8)
    for c, name in enumerate(names):
        top = candidates[name].recommend_arrays(users, VALIDATION_N, exclude_seen=True).items
        found = (top[person] == held[:, None]).any(axis=1)
        H[person[found], c] = 1
    return sp.csr_matrix((H[:, 1:] - H[:, :1]).astype(np.float64))


def fit_private_choice(
    X: Interactions, model_dp: DP, fallback_dp: DP, item_text: Mapping[str, str], *,
    choice_share: float = CHOICE_SHARE, als_from: float = ALS_FROM_EPSILON,
    knn_from_people: int = KNN_FROM_PEOPLE,
) -> PrivateChoice:
    """Fit the candidates on ``X`` less up to :data:`HOLD_OUT` items per person, release their
    noisy gains over popularity, and return the chosen model (with the held-out items
    folded back in), the popularity fallback and the choice. ``model_dp`` and
    ``fallback_dp`` together pay for everything, as one zCDP budget ρ: ``choice_share`` of
    it (in (0, 1); :data:`CHOICE_SHARE`) for the gains, the rest for popularity (with
    ``fallback_dp``'s bounds) and private ALS (``model_dp``'s bounds; a candidate when
    ``model_dp.epsilon`` is at least ``als_from``), :data:`POPULARITY_SHARE` of it to
    popularity; ``ContentKNN`` on public text spends nothing. With popularity the only
    candidate, nothing is held out or released and popularity gets the whole (ε, δ).
    """
    _check_inputs(X, model_dp, fallback_dp, item_text)
    if isinstance(choice_share, bool) or not isinstance(choice_share, int | float) \
            or not 0 < choice_share < 1:
        raise ValidationError(
            f"choice_share must be a number strictly between 0 and 1, not {choice_share!r}",
            errors=[{"row": None, "field": "choice_share", "message": "out of range"}])
    if isinstance(als_from, bool) or not isinstance(als_from, int | float) or als_from < 0:
        raise ValidationError(
            f"als_from must be a non-negative number (an ε), not {als_from!r}",
            errors=[{"row": None, "field": "als_from", "message": "invalid"}])
    if isinstance(knn_from_people, bool) or not isinstance(knn_from_people, int) \
            or knn_from_people < 0:
        raise ValidationError(
            f"knn_from_people must be a non-negative int (a number of people), not "
            f"{knn_from_people!r}",
            errors=[{"row": None, "field": "knn_from_people", "message": "invalid"}])
    if X.mixes_people is not None:  # refused before anything is reserved or released
        raise PrivateInputError(
            f"a private choice bounds each person's contribution, but {X.mixes_people}",
            errors=[{"row": None, "field": "preprocessing", "message": "mixes people"}])
    pooling = model_dp.epsilon >= als_from  # a pooled model (ALS or item-kNN) is a candidate
    if pooling and model_dp.delta + fallback_dp.delta == 0:  # before anything is reserved
        raise ValidationError(
            f"a private choice with a pooled model (ALS or item-kNN, from a model ε of "
            f"{als_from:g}) needs delta > 0 (its releases are Gaussian); give delta > 0, "
            f"for example 1e-6, or a model ε below {als_from:g}",
            errors=[{"row": None, "field": "delta", "message": "zero"}])
    held_dp = _reserve(X, model_dp, fallback_dp)
    with_text = bool(item_text) and X.catalogue is not None  # declared: no item selection
    spending = _Spending()  # every release so far, in order
    try:
        if pooling or with_text:
            pick = _choose(X, model_dp, fallback_dp, item_text, choice_share, pooling,
                           with_text, spending, knn_from_people)
        else:
            pick = _popularity_alone(X, model_dp, fallback_dp, spending)
    except BaseException as exc:  # what was released stays charged, the rest is freed
        if isinstance(spent := getattr(exc, "spent", None), PrivacySpent):
            spending.parts.append(spent)  # a refused item selection's release
        if held_dp is not None:
            ledger, reservation, snapshot = held_dp
            if spending.parts:
                ledger.settle(reservation, spending.charges(), snapshot=snapshot)
            else:
                ledger.cancel(reservation)
        raise
    if held_dp is not None:
        ledger, reservation, snapshot = held_dp
        ledger.settle(reservation, pick.spents, snapshot=snapshot)
    return pick


_M = TypeVar("_M", bound=Recommender)


@dataclass
class _Spending:
    """Every release of a choice so far, in order, and how they are charged."""

    parts: list[PrivacySpent] = field(default_factory=list)
    delta: float | None = None
    """Set when the zCDP releases share one budget: they are then composed at this δ."""

    def charges(self) -> list[PrivacySpent]:
        """What the ledger is charged: the parts themselves, or the zCDP releases composed
        into one spend (beside an item selection, which is no zCDP release)."""
        if self.delta is None:
            return list(self.parts)
        zcdp = [p for p in self.parts if p.rho is not None]
        other = [p for p in self.parts if p.rho is None]
        return other + ([compose_zcdp(zcdp, self.delta)] if zcdp else [])


def _unledgered(X: Interactions) -> Interactions:
    """``X`` with no ledger of its own: the choice charges for every fit on it."""
    out = X.with_matrix(X.matrix, at=X.at)
    out.ledger = None
    return out


def _fitted(model: _M, X: Interactions, spending: _Spending) -> _M:
    """``model.fit(X)``, its release added to ``spending``."""
    model.fit(X)
    if model.privacy_spent_ is not None:
        spending.parts.append(model.privacy_spent_)
    return model


def _popularity_alone(X: Interactions, model_dp: DP, fallback_dp: DP,
                      spending: _Spending) -> PrivateChoice:
    """No candidate besides popularity: nothing held out or measured; popularity gets the
    model's share too."""
    fallback = _fitted(Popularity(privacy=_added(fallback_dp, model_dp)), _unledgered(X),
                       spending)
    choice = ModelChoice(candidates=("Popularity",), gains={}, noise_scale=0.0, margin=0.0,
                         chosen="Popularity", spent=None)
    return PrivateChoice(model=copy.deepcopy(fallback), fallback=fallback, choice=choice,
                         spents=spending.charges(), releases=list(spending.parts),
                         candidates={"Popularity": fallback}, held_out=None)


def _choose(X: Interactions, model_dp: DP, fallback_dp: DP, item_text: Mapping[str, str],
            choice_share: float, pooling: bool, with_text: bool,
            spending: _Spending, knn_from_people: int = KNN_FROM_PEOPLE) -> PrivateChoice:
    """The validation, with at least one candidate besides popularity."""
    total = _added(model_dp, fallback_dp)
    if X.catalogue is None and total.items == "declared":  # the first fit refuses, before
        data, rest, selection = X, total, None  # anything is released
    else:
        data, rest, selection = private_item_universe(X, total)
    if selection is not None:  # no declared catalogue: the items are chosen once, for all
        spending.parts.append(selection)
    data = _unledgered(data)  # the choice charges for every fit, the training side's too
    train, test, rows, cols = _hold_out(data)
    if rest.delta > 0:  # every release below is zCDP: they share one budget ρ and are
        spending.delta = rest.delta  # charged as one spend
        budget = rho_budget(rest.epsilon, rest.delta)

        def share(dp: DP, part: float) -> DP:  # ``part`` of ρ, with ``dp``'s bounds
            return dp.model_copy(update={"delta": rest.delta}).for_rho(part * budget)
    else:  # pure DP (δ = 0, Laplace): shares of ε, each release charged (basic composition)

        def share(dp: DP, part: float) -> DP:
            return dp.model_copy(update={"epsilon": part * rest.epsilon})

    choice_dp = share(model_dp, choice_share)
    left = 1 - choice_share - (COUNT_SHARE if pooling else 0.0)  # of ρ, for the models
    # the popularity list is served whenever no model beats it: it gets the rest of ρ when
    # no model is pooled, else POPULARITY_SHARE of it
    pop_part = left * (POPULARITY_SHARE if pooling else 1.0)
    # popularity counts every event, the held-out ones too (that can only favour it in the
    # validation, and fewer events cost it much at small ε); in the validation its list
    # leaves out each person's training items only, as the other candidates' lists do.
    # Fitted first: it refuses data with no declared catalogue before anything is released
    fallback = _fitted(Popularity(privacy=share(fallback_dp, pop_part)), data, spending)
    fallback.fold_in_many(train, unknown_items="ignore")
    candidates: dict[str, Recommender] = {"Popularity": fallback}
    people, pooled = None, None
    if pooling:  # a noisy count of people decides the pooled candidate
        people, counted = _people(data, share(model_dp, COUNT_SHARE))
        spending.parts.append(counted)
        pooled = "ItemKNN" if people >= knn_from_people else "ALS"
    if pooled == "ALS":
        als_dp = share(model_dp, left * (1 - POPULARITY_SHARE))
        if als_dp.weight_budget is None:  # DP-ALS's adaptive weights (a bound, not data)
            als_dp = als_dp.model_copy(update={"weight_budget": PRIVATE_ALS_WEIGHT_BUDGET})
        candidates["ALS"] = _fitted(ALS(**PRIVATE_ALS, privacy=als_dp), train, spending)
    elif pooled == "ItemKNN":
        knn_dp = share(model_dp, left * (1 - POPULARITY_SHARE))
        if "max_events_per_person" not in model_dp.model_fields_set:  # a bound, not data
            knn_dp = knn_dp.model_copy(
                update={"max_events_per_person": PRIVATE_KNN_MAX_EVENTS})
        candidates["ItemKNN"] = _fitted(ItemKNN(**PRIVATE_KNN, privacy=knn_dp), train,
                                        spending)
    if with_text:  # public text alone: spends nothing
        candidates["ContentKNN"] = _fitted(ContentKNN(
            item_text=dict(item_text), collaborative=0.0, privacy=rest), train, spending)
    names = list(candidates)
    gain_dp = DP(epsilon=choice_dp.epsilon, delta=choice_dp.delta,
                 max_events_per_person=len(names) - 1, max_value=1.0)
    noisy, spent = private_item_counts(_gains(candidates, data, rows, cols), gain_dp,
                                       signed=True)
    spent = spent.model_copy(update={"mechanism": "dp-model-choice"})
    spending.parts.append(spent)
    gains = {n: float(v) for n, v in zip(names[1:], noisy.tolist(), strict=True)}
    scale = float(spent.noise["scale"])
    margin = MARGIN_SCALES * scale
    best = max(gains, key=gains.__getitem__)
    chosen = best if gains[best] > margin else "Popularity"
    # everyone gets their whole history back (their own data: a fold-in solves their own row
    # against the released pooled part); a chosen popularity list is the fallback's copy
    fallback.fold_in_many(X, unknown_items="ignore")
    model = copy.deepcopy(fallback) if chosen == "Popularity" else candidates[chosen]
    if chosen != "Popularity":
        model.fold_in_many(X, unknown_items="ignore")
    choice = ModelChoice(candidates=tuple(names), gains=gains, noise_scale=scale,
                         margin=margin, chosen=chosen, spent=spent, people=people)
    return PrivateChoice(model=model, fallback=fallback, choice=choice,
                         spents=spending.charges(), releases=list(spending.parts),
                         candidates=candidates, held_out=test)
