"""Which model a private Personalizer serves when it is given none: chosen by a charged,
differentially private validation score, never by looking at the data outside the noise.

The candidates are fixed by public inputs: the private popularity list (which the
Personalizer fits as its fallback anyway); ``ContentKNN`` on the item labels alone when the
store has labels and a declared catalogue (it pools nobody's events and spends nothing);
and private ``ALS()`` from a model share of ε = :data:`ALS_FROM_EPSILON` (below it, its
share goes to the popularity list instead).

Each person with two or more items has one item held out; the candidates are fitted on the
rest; each candidate's hits (held-out items in its top 10) are counted over people and
released with :func:`persona.privacy.private_item_counts` (one person changes each count by
at most 1: the same audited mechanism as private popularity). The candidate with the most
noisy hits is served if it beats popularity's by :data:`MARGIN_SCALES` noise scales of the
difference, else popularity: the served model is never one that the measurement shows
below popularity, and a shop whose data are too few for the noise gets popularity. The
chosen model gets each person's held-out item back into their own history (their own
data; the pooled releases are not recomputed).
"""

from __future__ import annotations

import copy
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict

from persona.data import Interactions, leave_k_out
from persona.errors import PrivateInputError, ValidationError
from persona.models import ALS, ContentKNN, Popularity, Recommender
from persona.privacy import DP, private_item_counts
from persona.schema import PrivacySpent

__all__ = [
    "ALS_FROM_EPSILON",
    "CHOICE_SHARE",
    "MARGIN_SCALES",
    "POPULARITY_SHARE",
    "PRIVATE_ALS",
    "PRIVATE_ALS_WEIGHT_BUDGET",
    "ModelChoice",
    "PrivateChoice",
    "fit_private_choice",
    "with_item_text",
]

#: The share of the model's ε and δ spent on the noisy validation hits.
CHOICE_SHARE = 0.1
#: Private ALS is a candidate from this model share of ε. Fitting it costs the popularity
#: list part of its share (see POPULARITY_SHARE). In benchmarks/RESULTS.md (3 seeds) DP-ALS
#: with the whole ε was under private popularity on ml-latest-small at ε = 2 (NDCG@10
#: 0.146 against 0.164) and above it from ε = 4 (0.204 against 0.178), and under it at every
#: ε on the demo shop (`persona demo`'s plot); with only its share of a choice it needs
#: more ε than that.
ALS_FROM_EPSILON = 6.0
#: A candidate replaces popularity only if its noisy hits are this many standard
#: deviations of the noise on a difference above popularity's (a model level with
#: popularity replaces it about 2 % of the time).
MARGIN_SCALES = 2.0
#: The private ALS candidate's settings: few factors and iterations, as the privacy sweep
#: of benchmarks/bench_privacy.py uses (each noisy statistic then carries less noise).
PRIVATE_ALS: dict[str, Any] = {"factors": 8, "iterations": 2, "regularization": 0.1}
#: DP-ALS's per-person weight budget (``DP.weight_budget``) when the privacy sets none: each
#: person's items weighted ``min(1, 4 / sqrt(n))``, best in the privacy sweep.
PRIVATE_ALS_WEIGHT_BUDGET = 4.0
#: With ALS a candidate, the share of the model's ε and δ (less the choice) that goes to the
#: popularity list rather than to ALS, so that a popularity list chosen over ALS is not
#: served at the fallback's tenth of ε: on ml-latest-small at ε = 8 the served model scored
#: 0.169 ± 0.072 NDCG@10 when popularity kept only the tenth (one seed of three chose it),
#: 0.175 ± 0.002 with this share (bench_privacy.py; both runs are in the history of
#: benchmarks/privacy_results.json; private popularity with the whole ε: 0.181).
POPULARITY_SHARE = 1.0 / 3.0
#: The validation list length: a hit is a held-out item in the candidate's top 10.
VALIDATION_N = 10


class ModelChoice(BaseModel):
    """How a private Personalizer chose its model (every number here is a DP release or
    public)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    candidates: tuple[str, ...]
    """The candidates, fixed by public inputs."""
    hits: dict[str, float]
    """Each candidate's noisy count of people whose held-out item was in its top 10."""
    noise_scale: float
    """The standard deviation of the noise on each count."""
    margin: float
    """How far above popularity's noisy hits a candidate had to be to be chosen."""
    chosen: str
    """The candidate with the most noisy hits if that is ``margin`` above popularity's,
    else popularity."""
    spent: PrivacySpent
    """What releasing the hits spent (part of the model's share of the privacy)."""

    def describe(self) -> str:
        """One plain sentence for a reviewer."""
        hits = ", ".join(f"{k} {v:.0f}" for k, v in self.hits.items())
        return (f"Chose {self.chosen} by a private validation: noisy hits@{VALIDATION_N} "
                f"{hits} (noise scale {self.noise_scale:.3g}; a model replaces popularity "
                f"only {self.margin:.3g} hits above it).")


@dataclass
class PrivateChoice:
    """What :func:`fit_private_choice` returns."""

    model: Recommender
    fallback: Popularity
    choice: ModelChoice
    spents: list[PrivacySpent]
    """Every release, for the ledger (their ε and δ add up to at most the privacy's)."""
    candidates: dict[str, Recommender]
    """Every candidate as fitted, by name. Those neither chosen nor the popularity list keep
    the training side of the validation: each person's history less their held-out item."""
    held_out: Interactions
    """The validation side: each person's held-out item (same people and items as the
    data; the caller's own data, never released)."""


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
    """:func:`persona.data.leave_k_out` with ``k = 1``: one item of each person with two or
    more, uniformly at random (OS entropy; the choice of item is no noise and the guarantee
    does not rest on it), and never an error when nobody has two. The training side has no
    ledger (the choice charges for every release itself). Also the rows and columns held
    out."""
    rng = np.random.default_rng(secrets.randbits(128))
    train, test = leave_k_out(X, 1, random_state=rng, allow_empty=True)
    train.ledger = None
    rows = np.repeat(np.arange(test.matrix.shape[0]), np.diff(test.matrix.indptr))
    return train, test, rows, test.matrix.indices


def _hits(model: Recommender, users: list[str], held: np.ndarray) -> np.ndarray:
    arr = model.recommend_arrays(users, VALIDATION_N, exclude_seen=True)
    return np.asarray((arr.items == held[:, None]).any(axis=1))


def _restore_rows(model: Recommender, X: Interactions, rows: np.ndarray) -> None:
    """Give each person whose item was held out their whole history back (their own
    data: a fold-in solves their own row against the released pooled part)."""
    M = sp.csr_matrix(X.matrix)
    for r in rows.tolist():
        a, b = M.indptr[r], M.indptr[r + 1]
        history = dict(zip(X.items[M.indices[a:b]].tolist(), M.data[a:b].tolist(),
                           strict=True))
        model.fold_in(str(X.users[r]), history, unknown_items="ignore")


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


def fit_private_choice(
    X: Interactions, model_dp: DP, fallback_dp: DP, item_text: Mapping[str, str], *,
    choice_share: float = CHOICE_SHARE, als_from: float = ALS_FROM_EPSILON,
) -> PrivateChoice:
    """Fit the candidates on ``X`` less one item per person, release their noisy validation
    hits, and return the chosen model (with the held-out items folded back in), the
    popularity fallback and the choice. ``model_dp`` pays for the hits
    (:data:`CHOICE_SHARE`) and private ALS (the rest; below :data:`ALS_FROM_EPSILON` the rest
    goes to popularity); ``fallback_dp`` for popularity; ``ContentKNN`` on public text
    spends nothing. ``choice_share`` (in (0, 1)) is the share of ``model_dp`` the hits get;
    private ALS is a candidate when ``model_dp.epsilon`` is at least ``als_from``.
    """
    _check_inputs(X, model_dp, fallback_dp, item_text)
    if isinstance(choice_share, bool) or not isinstance(choice_share, int | float) \
            or not 0 < choice_share < 1:
        raise ValidationError(
            f"choice_share must be a number strictly between 0 and 1, not {choice_share!r}",
            errors=[{"row": None, "field": "choice_share", "message": "out of range"}])
    if X.mixes_people is not None:  # refused before anything is reserved or released
        raise PrivateInputError(
            f"a private choice bounds each person's contribution, but {X.mixes_people}",
            errors=[{"row": None, "field": "preprocessing", "message": "mixes people"}])
    held_dp = _reserve(X, model_dp, fallback_dp)
    train, test, rows, cols = _hold_out(X)
    choice_dp, rest_dp = model_dp.split(float(choice_share))
    if isinstance(als_from, bool) or not isinstance(als_from, int | float) or als_from < 0:
        raise ValidationError(
            f"als_from must be a non-negative number (an ε), not {als_from!r}",
            errors=[{"row": None, "field": "als_from", "message": "invalid"}])
    with_als = model_dp.epsilon >= als_from
    # the popularity list is served whenever no model beats it: it gets the model's share
    # (less the choice) when ALS is no candidate, else POPULARITY_SHARE of it
    als_dp, extra = rest_dp.split(1.0 - POPULARITY_SHARE) if with_als else (None, rest_dp)
    fallback_dp = fallback_dp.model_copy(update={
        "epsilon": fallback_dp.epsilon + extra.epsilon, "delta": fallback_dp.delta + extra.delta})
    fallback = Popularity(privacy=fallback_dp).fit(train)
    candidates: dict[str, Recommender] = {"Popularity": fallback}
    if als_dp is not None:
        if als_dp.weight_budget is None:  # DP-ALS's adaptive weights (a bound, not data)
            als_dp = als_dp.model_copy(update={"weight_budget": PRIVATE_ALS_WEIGHT_BUDGET})
        candidates["ALS"] = ALS(**PRIVATE_ALS, privacy=als_dp).fit(train)
    if item_text and X.catalogue is not None:  # a declared catalogue: no item selection
        candidates["ContentKNN"] = ContentKNN(
            item_text=dict(item_text), collaborative=0.0, privacy=rest_dp).fit(train)
    names = list(candidates)
    users = [str(u) for u in X.users[rows].tolist()]
    held = np.asarray(X.items[cols], dtype=object)
    H = np.column_stack([_hits(candidates[n], users, held) for n in names]) \
        if users else np.zeros((0, len(names)), dtype=bool)
    hit_dp = DP(epsilon=choice_dp.epsilon, delta=choice_dp.delta,
                max_events_per_person=len(names), max_value=1.0)
    noisy, spent = private_item_counts(sp.csr_matrix(H.astype(np.float64)), hit_dp)
    spent = spent.model_copy(update={"mechanism": "dp-model-choice"})
    hits = {n: float(v) for n, v in zip(names, noisy.tolist(), strict=True)}
    margin = MARGIN_SCALES * float(spent.noise["scale"]) * math.sqrt(2.0)
    best = max(names, key=hits.__getitem__)
    chosen = best if hits[best] > hits["Popularity"] + margin else "Popularity"
    model = copy.deepcopy(fallback) if chosen == "Popularity" else candidates[chosen]
    for part in (model, fallback):  # the model is the fallback's copy, never the fallback
        _restore_rows(part, X, rows)
    spents = [spent, *(s for m in candidates.values()
                       if (s := m.privacy_spent_) is not None)]
    choice = ModelChoice(candidates=tuple(names), hits=hits,
                         noise_scale=float(spent.noise["scale"]), margin=margin,
                         chosen=chosen, spent=spent)
    if held_dp is not None:
        ledger, reservation, snapshot = held_dp
        ledger.settle(reservation, spents, snapshot=snapshot)
    return PrivateChoice(model=model, fallback=fallback, choice=choice, spents=spents,
                         candidates=candidates, held_out=test)
