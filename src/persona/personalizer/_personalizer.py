"""The Personalizer: what a shop's backend imports.

It ties the parts together in the one direction DESIGN.md draws: it reads only through
``store.scope(purpose)``, fits the model (privately when asked, charging the store's budget
ledger before any data is read), and serves recommendations with a live consent check, human
curation, people's feedback and an explanation on every item.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from persona._columns import EventColumns
from persona.data import Interactions
from persona.errors import (
    ModelFileError,
    NotFittedError,
    NotShownError,
    PrivateInputError,
    UnknownItemError,
    UnknownUserError,
    ValidationError,
)
from persona.explain import (
    Recommendations,
    attach_explanations,
    person_context,
    shown_items,
)
from persona.models import (
    ALS,
    BPR,
    ItemKNN,
    Popularity,
    PrivateTrainingUnavailableError,
    Recommender,
)
from persona.personalizer._rwlock import RWLock
from persona.schema import (
    FeedbackKind,
    PersonLineage,
    PrivacySpent,
    Recommendation,
    check_detail,
    check_id,
)
from persona.store import Served

__all__ = ["Curation", "Personalizer"]

FORMAT_VERSION = 2  # 2: personalizer.json has a checksum; its parts are bound to it
MAX_N = 1000
_MODELS: dict[str, type[Recommender]] = {c.__name__: c for c in (ALS, BPR, ItemKNN, Popularity)}


class Curation(BaseModel):
    """Choices made by people (merchandisers), applied on every path.

    ``pin`` maps items to 1-based positions; ``block`` lists items that never appear.
    """

    model_config = ConfigDict(frozen=True)

    pin: dict[str, int] = Field(default_factory=dict)
    block: frozenset[str] = frozenset()
    reason: str = ""
    """Why, in plain words, shown to people: "chosen by our team: <reason>"."""
    by: str | None = None
    at: datetime | None = None


@dataclass
class _Serving:
    """Everything one fit produced. Swapped in whole, so no call sees half of it."""

    model: Recommender
    fallback: Popularity
    labels: dict[str, str]
    fitted_at: datetime
    version: str = ""
    """The serving state's version id (see ``Personalizer.model_version_``)."""
    lock: RWLock = field(default_factory=RWLock)
    basis: dict[str, int] = field(default_factory=dict)
    """Per person, what their model row was built from: a 64-bit digest of ``(events,
    first, last)`` of their usable events then (times in µs; see :func:`_digest`). A
    request whose person's usable data now differs (events past retention, excluded,
    added) re-folds them from their current history; a person without an entry (a
    folder saved by an older persona) is re-folded on their first request. Saved with
    the model (``basis.npz``), so a restarted service serves unchanged people at once."""


class _OnePerson:
    """A view-like wrapper over one person's events, for ``Interactions.from_view``."""

    lineage = None

    def __init__(self, cols: EventColumns) -> None:
        self._cols = cols

    def events(self) -> EventColumns:
        return self._cols


class _Capture:
    """A view that keeps the events it returned, so that a fit knows what each person's
    row was built from (see ``_Serving.basis``)."""

    def __init__(self, view: Any) -> None:
        self._inner = view
        self.cols: EventColumns | None = None

    def events(self) -> EventColumns:
        self.cols = self._inner.events()
        return self.cols

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Personalizer:
    """Serve recommendations from a consent-scoped store.

    Parameters
    ----------
    store
        A :class:`persona.Store`. The Personalizer reads it only through
        ``store.scope(purpose)``.
    purpose
        The purpose people consent to; every read and every recommendation serves it.
    model
        An unfitted recommender (default ``ALS()``); :meth:`fit` fits a copy.
    privacy
        A :class:`persona.DP` to fit the pooled parts of the model and the non-profiling
        fallback with differential privacy, or ``None``. Their planned spend is reserved
        in the store's budget ledger before any data is read and settled afterwards. The
        Personalizer's ``privacy`` is the one that counts: a ``model`` built with its own
        ``privacy=`` must have the same one, else :class:`~persona.ValidationError` is
        raised (also when the Personalizer has none: a private model is never fitted
        without privacy by accident, and its (ε, δ) is never silently replaced).
    weights, scaling, half_life
        How events become confidence (see :meth:`persona.Interactions.from_view`).
    fallback_share
        With ``privacy``, the share of ε and δ given to the non-profiling popularity list
        (the rest goes to the model); both are charged to the ledger.
    record_shown
        Record what :meth:`recommend` shows as evidence (default ``True``): per item its
        text, a keyed digest of its reasons, the model version, rank and time, read back
        with ``store.shown(user)`` and :meth:`explain` with ``at=``. Records are kept for
        the store's shown-record retention (``store.set_shown_retention``), erased with the
        person and exported with their data. ``False`` records nothing shown (each read
        is still in the audit log).

    Examples
    --------
    >>> import persona
    >>> store = persona.Store(":memory:")
    >>> store.define_purpose("personalization", description="Suggest products")
    >>> store.define_feature("purchases", purposes=["personalization"],
    ...                      category="purchase history", retention_days=None)
    >>> for u in ("u1", "u2", "u3"):
    ...     _ = store.grant(u, "personalization", source="signup form")
    >>> _ = store.ingest([{"user": u, "item": i, "feature": "purchases",
    ...                    "at": "2026-11-01T10:00:00Z"}
    ...                   for u, i in [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "c"),
    ...                                ("u3", "b"), ("u3", "c")]])
    >>> p = persona.Personalizer(store, model=persona.ItemKNN()).fit()
    >>> [r.item for r in p.recommend("u1", n=1)]
    ['c']
    """

    def __init__(
        self,
        store: Any,
        purpose: str = "personalization",
        *,
        model: Recommender | None = None,
        privacy: Any = None,
        weights: Mapping[str, float] | None = None,
        scaling: str = "none",
        half_life: Any = None,
        fallback_share: float = 0.1,
        record_shown: bool = True,
    ) -> None:
        _check_settings(store, purpose, privacy, half_life)
        if not isinstance(record_shown, bool):
            raise ValidationError(
                f"record_shown must be True or False, not {record_shown!r}",
                errors=[{"row": None, "field": "record_shown", "message": "not a bool"}],
            )
        self.record_shown = record_shown
        self.store = store
        self.purpose = purpose
        self.model = model if model is not None else ALS()
        _check_privacy(self.model, privacy)
        self.privacy = privacy
        self.weights = dict(weights) if weights is not None else None
        self.scaling = scaling
        self.half_life = half_life
        if privacy is not None and scaling == "bm25":
            raise ValidationError(
                "scaling='bm25' weighs each person's row with statistics of everyone's rows "
                "(idf, average length), so one person would move everyone's data past the "
                "privacy bound; with privacy= use scaling='log', 'row' or 'none'",
                errors=[{"row": None, "field": "scaling", "message": "mixes people"}],
            )
        if (isinstance(fallback_share, bool) or not isinstance(fallback_share, int | float)
                or not 0.0 < fallback_share < 1.0):
            raise ValidationError(
                f"fallback_share must be between 0 and 1 (exclusive), not {fallback_share}",
                errors=[{"row": None, "field": "fallback_share", "message": "out of range"}],
            )
        self.fallback_share = float(fallback_share)
        self._view = store.scope(purpose)  # raises UnknownPurposeError for unknown purposes
        self._state: _Serving | None = None
        self._fit_lock = threading.Lock()
        # held by a fit between its consent check and its swap, and by forget after the
        # erasure: a fit that read someone before their erasure never swaps them back in
        self._swap_lock = threading.Lock()
        self._curation = Curation()

    # ------------------------------------------------------------------ fitting
    def _split_privacy(self) -> tuple[Any, Any]:
        if self.privacy is None:
            return None, None
        p, share = self.privacy, self.fallback_share
        model_dp = p.model_copy(
            update={"epsilon": p.epsilon * (1 - share), "delta": p.delta * (1 - share)}
        )
        fallback_dp = p.model_copy(update={"epsilon": p.epsilon * share, "delta": p.delta * share})
        return model_dp, fallback_dp

    def _ledger(self) -> Any:
        """The store's budget ledger for the purpose; with no budget set, this fit's
        (ε, δ) becomes the purpose's lifetime total."""
        return self.store.privacy_ledger(
            self.purpose, default=(self.privacy.epsilon, self.privacy.delta)
        )

    def _planned(self, model_dp: Any, fallback_dp: Any) -> list[PrivacySpent]:
        """The spend reserved before the read: the model's and the fallback's shares."""
        return [
            PrivacySpent(mechanism=f"{type(self.model).__name__} (planned)",
                         epsilon=model_dp.epsilon, delta=model_dp.delta),
            PrivacySpent(mechanism="Popularity fallback (planned)",
                         epsilon=fallback_dp.epsilon, delta=fallback_dp.delta),
        ]

    def fit(self) -> Self:
        """Read the consented data, fit the model and the fallback, swap them in at once.

        The new model is made ready for serving before the swap (for ALS, every person's
        exact served vector is solved), so no request after a fit pays that cost.

        With ``privacy``, the planned spend of the model and the fallback is first reserved
        in the store's ledger, in one atomic step with the budget check: a fit that would
        exceed the budget raises :class:`~persona.PrivacyBudgetExceeded` before any data is
        read, and two processes fitting at once cannot both pass (set the budget with
        ``store.set_privacy_budget``; by default it is one fit's worth). After the fit the
        reservation is settled with what each private part spent, with the audit entry of
        the read as the data snapshot. If the fit fails after the read, the reservation
        keeps counting.
        """
        with self._fit_lock:
            model_dp, fallback_dp = self._split_privacy()
            ledger = reservation = None
            if self.privacy is not None:
                ledger = self._ledger()
                reservation = ledger.reserve(self.purpose, self._planned(model_dp, fallback_dp))
            view = _Capture(self._view)
            X = Interactions.from_view(
                view,
                weights=self.weights,
                scaling=self.scaling,  # type: ignore[arg-type]
                half_life=self.half_life,
                now=self._decay_reference(),
            )
            X.ledger = None  # this fit's own reservation pays for the model and the fallback
            params = self.model.get_params(deep=False)
            params["privacy"] = model_dp
            try:
                model = type(self.model)(**params).fit(X)
            except (PrivateTrainingUnavailableError, PrivateInputError):
                if ledger is not None:  # refused before it used the data: nothing released
                    ledger.cancel(reservation)
                raise
            fallback = Popularity(privacy=fallback_dp).fit(X)
            labels = self._view.item_labels()
            model.item_labels_ = labels  # type: ignore[attr-defined]
            fallback.item_labels_ = labels  # type: ignore[attr-defined]
            if ledger is not None:
                lineage = X.lineage
                snapshot = None if lineage is None else f"audit#{lineage.audit_seq}"
                spents = [
                    spent for part in (model, fallback)
                    if (spent := getattr(part, "privacy_spent_", None)) is not None
                ]
                ledger.settle(reservation, spents, snapshot=snapshot)
            fitted_at = datetime.now(UTC)
            state = _Serving(
                model=model, fallback=fallback, labels=labels, fitted_at=fitted_at,
                version=self._version(model, fitted_at),
                basis={} if view.cols is None else _signatures(view.cols),
            )
            with self._swap_lock:
                # whoever withdrew or was erased since the read leaves before the swap
                _prune(state, self.store.consented(self.purpose))
                _block(state, self._curation)
                precompute = getattr(model, "precompute", None)
                if callable(precompute):
                    precompute()  # every served vector solved before the swap
                self._state = state
        return self

    def _decay_reference(self) -> datetime | None:
        """The public reference time of ``half_life`` decay: the time of the fit (never the
        latest event, which would let one person's late event move everyone's weights)."""
        return None if self.half_life is None else datetime.now(UTC)

    @property
    def model_(self) -> Recommender:
        """The fitted model now serving."""
        return self._require().model

    @property
    def fallback_(self) -> Popularity:
        """The fitted non-profiling popularity list now serving."""
        return self._require().fallback

    @property
    def model_version_(self) -> str:
        """The version id of the fitted state now serving: a digest of the store, the
        purpose, the model class and the time of the fit. It names the fit in shown
        records (``store.shown``), and is the same after :meth:`save` and :meth:`load`."""
        return self._require().version

    def _version(self, model: Recommender, fitted_at: datetime) -> str:
        text = "\x00".join([self.store.store_id, self.purpose, type(model).__name__,
                            fitted_at.isoformat()])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _require(self) -> _Serving:
        state = self._state
        if state is None:
            raise NotFittedError("the Personalizer is not fitted yet; call p.fit() first")
        return state

    # ------------------------------------------------------------------ curation
    def curate(
        self,
        *,
        pin: Sequence[str] | Mapping[str, int] = (),
        block: Iterable[str] = (),
        reason: str,
        by: str | None = None,
    ) -> Curation:
        """Pin items to positions and block items, for everyone, with a plain reason.

        ``pin`` is a list (positions 1, 2, … in order) or ``{item: position}``. Blocked items
        never appear, on any path. Replaces the previous curation; it is recorded in the
        store's audit log.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError(
                "curate needs a reason people can read, e.g. reason='Holiday gift guide'",
                errors=[{"row": None, "field": "reason", "message": "empty"}],
            )
        for name, value in (("pin", pin), ("block", block)):
            if isinstance(value, str | bytes) or not isinstance(value, Iterable):
                raise ValidationError(
                    f"field '{name}': give a list of item ids, not a {type(value).__name__}; "
                    f"e.g. {name}=['sku-1']",
                    errors=[{"row": None, "field": name, "message": "not a list"}],
                )
        if by is not None and not isinstance(by, str):
            raise ValidationError(
                f"field 'by': give who curated as a str (or None), not a {type(by).__name__}",
                errors=[{"row": None, "field": "by", "message": "not a str"}],
            )
        pairs = list(pin.items()) if isinstance(pin, Mapping) else [
            (i, k + 1) for k, i in enumerate(pin)]
        checked = {}
        for item, pos in pairs:
            if (not isinstance(item, str) or isinstance(pos, bool) or not isinstance(pos, int)
                    or pos < 1):
                raise ValidationError(
                    f"pin {item!r} at position {pos!r}: give item ids and 1-based positions",
                    errors=[{"row": None, "field": "pin", "message": "invalid"}],
                )
            checked[check_id(item, "pin")] = pos
        if len(checked) != len(pairs) or len(set(checked.values())) != len(checked):
            raise ValidationError(
                "pin each item once and each at its own position (a list pins at 1, 2, ... "
                f"in order), not {pin!r}",
                errors=[{"row": None, "field": "pin", "message": "repeated"}],
            )
        pins = checked
        blocked = frozenset(check_id(i, "block") for i in block)
        unknown = self._unservable(pins)
        if unknown:
            raise ValidationError(
                f"cannot pin {sorted(unknown)[:5]}: not in the store's catalogue nor in the "
                "model; declare them first with store.define_items([...])",
                errors=[{"row": None, "field": "pin", "message": "unknown item"}],
            )
        clash = blocked & pins.keys()
        if clash:
            raise ValidationError(
                f"{sorted(clash)} are both pinned and blocked; choose one",
                errors=[{"row": None, "field": "pin", "message": "also blocked"}],
            )
        curation = Curation(
            pin=pins, block=blocked, reason=reason.strip(), by=by, at=datetime.now(UTC)
        )
        self.store.record(
            "app.curation",
            {
                "pin": pins,
                "block": sorted(blocked),
                "reason": curation.reason,
                "by": by,
                "purpose": self.purpose,
            },
        )
        with self._swap_lock:  # the models now serving carry the block set themselves
            self._curation = curation
            state = self._state
            if state is not None:
                with state.lock.write():
                    _block(state, curation)
        return curation

    def _unservable(self, items: Iterable[str]) -> set[str]:
        """Items that are neither in the serving model nor declared in the store."""
        state = self._state
        missing = {i for i in items if state is None or not state.model.has_item(i)}
        return missing - set(self.store.catalogue()) if missing else set()

    @property
    def curation(self) -> Curation:
        return self._curation

    # ------------------------------------------------------------------ serving
    def recommend(
        self, user: str, n: int = 10, *, detail: Literal["summary", "full"] = "summary"
    ) -> list[Recommendation]:
        """The ``n`` best items for ``user``, each with its explanation (``detail``: the
        top reasons with the rest totalled, or ``"full"``: every reason).

        Consent is checked at call time. A person without active consent (never granted,
        withdrawn, erased) gets the non-profiling list with an explanation saying why, not
        an error; so does a person who asked for it (``store.prefer_non_profiling``), whose
        consent stays as it is. A consenting person the model does not know is folded in
        from their own scoped history. Retention applies as it does to reads: a person
        whose usable data changed since their row was built (events past their feature's
        retention, excluded, added) is re-folded from their current scoped history, and one
        with nothing usable now gets the non-profiling list, its explanation saying why
        (e.g. ``outside_retention``). Blocked items never appear; pinned items take their
        positions.

        What was shown is recorded (unless ``record_shown=False``): see ``store.shown``.
        The read's audit entry and the record are committed with the store's next group
        commit (within 0.05 s; see ``persona.store._shown``), not one commit per call.
        """
        user = _check_user(user)
        n = _check_n(n)
        check_detail(detail)
        state = self._require()
        # consent, lineage, feedback and the non-profiling choice, read now in one snapshot
        served = self.store.read_for_serving(self.purpose, user)
        pending = served.pending
        try:
            recs = Recommendations(self._serve(state, user, n, served, detail))
            if self.record_shown:  # (texts rendered once, for the list and its reader)
                pending.recs, pending.model_version = shown_items(recs), state.version
        finally:
            self.store.enqueue_serving(pending)  # the read's audit entry, and what was shown
        return recs

    def _serve(
        self, state: _Serving, user: str, n: int, served: Served,
        detail: Literal["summary", "full"] = "summary",
    ) -> list[Recommendation]:
        person, not_interested = served.person, served.not_interested
        curation = self._curation
        if not person.active:
            self._drop(state, user)
            return self._fallback(state, user, n, served, curation, set(), detail)
        if served.non_profiling:  # their choice: a list not based on them
            return self._fallback(state, user, n, served, curation, not_interested, detail)
        exclude = set(curation.block) | not_interested | set(curation.pin)
        with state.lock.read():
            known = state.model.has_user(user)
            current = known and state.basis.get(user) == _signature(person)
            # excluding an item the model does not know (a pin of a newly declared item)
            # changes nothing
            exclude = {i for i in exclude if state.model.has_item(i)}
        if not current:  # unknown, or their usable data changed since their row was built
            cols = self._view.history(user) if person.rows else None
            if not known and (cols is None or len(cols) == 0):
                return self._fallback(state, user, n, served, curation, not_interested, detail)
            self._fold_in(state, user, cols)  # none usable now: an empty row, then fallback
        with state.lock.read():
            size = state.model.history_length(user)
            if size is None:  # forgotten meanwhile
                return self._fallback(state, user, n, served, curation, not_interested, detail)
            if size == 0:  # nothing left in their history
                return self._fallback(state, user, n, served, curation, not_interested, detail)
            recs = state.model.recommend(user, n, exclude=exclude, explain=False)
            recs = self._explained(state.model, user, recs, served, detail)
            pins = self._pins(state, state.model, user, curation, not_interested, n)
        return _merge(recs, pins, n)

    def recommend_batch(
        self, users: Sequence[str], n: int = 10, *,
        detail: Literal["summary", "full"] = "summary",
    ) -> list[list[Recommendation]]:
        """:meth:`recommend` for many people; the same result as calling it for each."""
        if isinstance(users, str | bytes | Mapping) or not isinstance(users, Iterable):
            raise ValidationError(
                f"users must be a list of people's ids, not a {type(users).__name__}; for one "
                "person use recommend(user), or pass [user]",
                errors=[{"row": None, "field": "users", "message": "not a list"}],
            )
        users = [_check_user(u) for u in users]
        n = _check_n(n)
        check_detail(detail)
        return [self.recommend(u, n, detail=detail) for u in users]

    def explain(
        self,
        user: str,
        item: str,
        *,
        counterfactual: bool = False,
        n: int = 10,
        at: datetime | str | None = None,
    ) -> Any:
        """Explain ``item`` for ``user`` with the model now serving them (see
        :meth:`persona.models.Recommender.explain`), enriched with their consent record.
        Consent, retention and the person's non-profiling choice apply as in
        :meth:`recommend`: with nothing usable now, or by their choice, the explanation is
        the non-profiling list's.

        With ``at`` (a time), answers for a past recommendation instead: the
        :class:`~persona.store.ShownRecord` of the last time ``item`` was shown to ``user``
        at or before ``at``, as recorded then (its text, the digest of its reasons, the
        model version and the time), whatever has been refitted since. Raises
        :class:`~persona.NotShownError` when there is no such record.
        """
        user = _check_user(user)
        item, n = check_id(item, "item"), _check_n(n)  # refused before any (audited) read
        if at is not None:
            return self._explain_shown(user, item, _check_at(at))
        state = self._require()
        if not (state.model.has_item(item) or state.fallback.has_item(item)):
            raise UnknownItemError(
                f"{item!r} is not in the model's catalogue; refit to include new items",
                item=item,
            )
        served = self.store.read_for_serving(self.purpose, user)
        self.store.enqueue_serving(served.pending)  # the read's audit entry
        person = served.person
        if not person.active:
            return state.fallback.explain(user, item, view=self._view)
        if served.non_profiling:
            e = state.fallback.explain(user, item, view=self._view)
            not_used = _non_profiling(list(e.data_not_used), person, served.features,
                                      served.non_profiling_since)
            return e.model_copy(update={"data_not_used": not_used})
        with state.lock.read():
            known = state.model.has_user(user)
            current = known and state.basis.get(user) == _signature(person)
        if known and not current:
            self._fold_in(state, user, self._view.history(user) if person.rows else None)
        with state.lock.read():
            size = state.model.history_length(user)
            if size is not None:
                if size == 0:  # nothing of theirs usable now
                    return state.fallback.explain(user, item, view=self._view)
                return state.model.explain(
                    user, item, counterfactual=counterfactual, n=n, view=self._view
                )
        raise UnknownUserError(
            f"{user!r} has no history in the model; call p.recommend({user!r}) first"
        )

    def _explain_shown(self, user: str, item: str, at: datetime) -> Any:
        record = self.store.last_shown(user, item, at, self.purpose)
        if record is None:
            days = self.store.shown_retention_days
            kept = "until the person is erased" if days is None else f"for {days} days"
            raise NotShownError(
                f"there is no record of {item!r} shown to this person at or before "
                f"{at.isoformat()}: it was not shown then, or it was shown with "
                "record_shown=False, or its record is past retention (shown records are "
                f"kept {kept}; see store.set_shown_retention). List what is held with "
                "store.shown(user).",
                item=item,
            )
        return record

    def _fold_in(self, state: _Serving, user: str, cols: EventColumns | None) -> None:
        """(Re)build ``user``'s model row from ``cols``, their usable events now (``None``:
        none), and remember what it was built from."""
        history: dict[str, float] = {}
        basis = _NOTHING
        if cols is not None and len(cols):
            X1 = Interactions.from_view(
                _OnePerson(cols),
                weights=self.weights,
                scaling=self.scaling,  # type: ignore[arg-type]
                half_life=self.half_life,
                now=self._decay_reference(),
            )
            history = {str(i): float(v) for i, v in X1.history(user).items()}
            basis = _signatures(cols).get(user, _NOTHING)
        with state.lock.write():
            state.model.fold_in(user, history, unknown_items="ignore")
            state.basis[user] = basis

    def _drop(self, state: _Serving, user: str) -> None:
        """Take a person without consent out of the serving model and the fallback at
        once (the fallback keeps each person's history to recount without them)."""
        if any(part.has_user(user) for part in (state.model, state.fallback)):
            with state.lock.write():
                for part in (state.model, state.fallback):
                    if part.has_user(user):
                        part.forget(user)
                state.basis.pop(user, None)

    def _fallback(
        self,
        state: _Serving,
        user: str,
        n: int,
        served: Served,
        curation: Curation,
        not_interested: set[str],
        detail: Literal["summary", "full"] = "summary",
    ) -> list[Recommendation]:
        fb = state.fallback
        exclude = {i for i in set(curation.block) | set(curation.pin) | not_interested
                   if fb.has_item(i)}
        recs = fb.recommend(user, n, exclude=exclude, explain=False)
        recs = self._explained(fb, user, recs, served, detail)
        pins = self._pins(state, fb, user, curation, not_interested, n)
        return _merge(recs, pins, n)

    def _explained(
        self, model: Recommender, user: str, recs: list[Recommendation], served: Served,
        detail: Literal["summary", "full"] = "summary",
    ) -> list[Recommendation]:
        """Explain ``recs`` with this person's own data statements (consent, dates), read
        from the store for this request, instead of the model-level ones."""
        if not recs:
            return recs
        person = served.person
        used, not_used, lineage = person_context(model, person, served.features)
        if served.non_profiling and person.active:
            not_used = _non_profiling(not_used, person, served.features,
                                      served.non_profiling_since)
        return attach_explanations(model, [user], [recs], data=(used, not_used, lineage),
                                   detail=detail)[0]

    def _pins(
        self,
        state: _Serving,
        model: Recommender,
        user: str,
        curation: Curation,
        not_interested: set[str],
        n: int,
    ) -> list[tuple[int, Recommendation]]:
        from persona.explain import curated_explanation

        out = []
        for item, pos in sorted(curation.pin.items(), key=lambda kv: kv[1]):
            if pos > n or item in not_interested or item in curation.block:
                continue
            label = state.labels.get(item, item)
            e = curated_explanation(item, label, curation.reason, rank=pos)
            out.append((pos, Recommendation.trusted(item, 0.0, pos, e)))
        return out

    # ------------------------------------------------------------------ people
    def feedback(self, user: str, item: str, kind: FeedbackKind) -> None:
        """Record a person's correction and apply it at once.

        ``"not_interested"``: the item leaves their lists. ``"dont_use"``: the item leaves
        their profile (it is re-solved from their remaining history) and their
        explanations stop citing it.
        """
        user = _check_user(user)
        self.store.feedback(user, item, kind, source="personalizer")
        if kind == "dont_use":
            state = self._state
            if state is not None and state.model.has_user(user):
                cols = self._view.history(user)
                self._fold_in(state, user, cols)

    def forget(self, user: str) -> None:
        """Erase ``user``: out of the serving model and the fallback at once, erased from
        the store (which records it in the audit log). Their next request gets the
        non-profiling list, and no folder saved afterwards holds them (a fit that read
        them before the erasure drops them before it swaps its model in)."""
        user = _check_user(user)
        state = self._state
        if state is not None:
            self._drop(state, user)
        self.store.erase(user)
        with self._swap_lock:  # a fit that swapped in meanwhile read them before the erasure
            state = self._state
            if state is not None:
                self._drop(state, user)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the serving model, the fallback and the settings to the folder ``path``
        (npz + JSON, no pickle). People whose consent is no longer active (withdrawn,
        erased) are removed from the model and the fallback first, so no saved file holds
        their id or their history."""
        state = self._require()
        consented = self.store.consented(self.purpose)
        with state.lock.write():
            _prune(state, consented)
            folder = Path(path)
            folder.mkdir(parents=True, exist_ok=True)
            state.model.save(folder / "model", store_id=self.store.store_id)
            state.fallback.save(folder / "fallback", store_id=self.store.store_id)
            _save_basis(folder / _BASIS, state.basis)
        manifest = {
            "format": "persona.personalizer",
            "format_version": FORMAT_VERSION,
            "store_id": self.store.store_id,
            "purpose": self.purpose,
            "model_class": type(state.model).__name__,
            "weights": self.weights,
            "scaling": self.scaling,
            "fallback_share": self.fallback_share,
            "privacy": None if self.privacy is None else self.privacy.model_dump(mode="json"),
            "curation": self._curation.model_dump(mode="json"),
            "labels": state.labels,
            "fitted_at": state.fitted_at.isoformat(),
            "parts": {part: _file_sha256(folder / part) for part in (*_PARTS, _BASIS)},
        }
        manifest = json.loads(json.dumps(manifest))  # as load reads it back
        manifest["sha256"] = _checksum(manifest)
        (folder / "personalizer.json").write_text(json.dumps(manifest, indent=2))
        return folder

    @classmethod
    def load(cls, path: str | Path, store: Any) -> Personalizer:
        """Read a Personalizer written by :meth:`save`, serving from ``store``."""
        if not isinstance(path, str | os.PathLike):
            raise ValidationError(
                f"path must be a folder's path (a str), not a {type(path).__name__}",
                errors=[{"row": None, "field": "path", "message": "not a path"}],
            )
        folder = Path(path)
        try:
            manifest = json.loads((folder / "personalizer.json").read_text())
        except (OSError, ValueError) as exc:  # JSON, UTF-8, a NUL byte in the path
            raise ModelFileError(
                f"{folder} is not a saved Personalizer ({exc}); save one with p.save(path)"
            ) from exc
        if not isinstance(manifest, dict):
            raise ModelFileError(
                f"{folder} is not a saved Personalizer; save one with p.save(path)"
            )
        if (
            manifest.get("format") != "persona.personalizer"
            or manifest.get("format_version") != FORMAT_VERSION
        ):
            raise ModelFileError(
                f"{folder} has format {manifest.get('format')!r} version "
                f"{manifest.get('format_version')!r}; this persona reads persona.personalizer "
                f"version {FORMAT_VERSION} (version 1 folders have no checksum over their "
                "settings). Fit anew and save with this persona."
            )
        _check_parts(folder, manifest)
        if manifest["store_id"] != store.store_id:
            raise ModelFileError(
                f"{folder} was fitted on store {manifest['store_id']}, not on this store "
                f"({store.store_id}); load it with the store it was fitted on, or fit anew"
            )
        model_cls = _MODELS.get(manifest["model_class"])
        if model_cls is None:
            raise ModelFileError(f"unknown model class {manifest['model_class']!r} in {folder}")
        privacy = None
        if manifest["privacy"] is not None:
            from persona.privacy import DP

            privacy = DP(**manifest["privacy"])
        model = model_cls.load(folder / "model", store_id=store.store_id)
        fallback = Popularity.load(folder / "fallback", store_id=store.store_id)
        p = cls(
            store,
            manifest["purpose"],
            # the saved model holds its share of the Personalizer's privacy; the
            # Personalizer's own is the one that counts
            model=model_cls(**{**model.get_params(deep=False), "privacy": None}),
            privacy=privacy,
            weights=manifest["weights"],
            scaling=manifest["scaling"],
            fallback_share=manifest["fallback_share"],
        )
        labels = dict(manifest["labels"])
        model.item_labels_ = labels  # type: ignore[attr-defined]
        fallback.item_labels_ = labels  # type: ignore[attr-defined]
        fitted_at = datetime.fromisoformat(manifest["fitted_at"])
        p._state = _Serving(
            model=model,
            fallback=fallback,
            labels=labels,
            fitted_at=fitted_at,
            version=p._version(model, fitted_at),
            basis=_load_basis(folder, manifest),
        )
        p._curation = Curation.model_validate(manifest["curation"])
        _block(p._state, p._curation)
        # consent may have changed since the save: whoever withdrew or was erased since
        # leaves the loaded parts now (and the next requests check consent live)
        _prune(p._state, store.consented(p.purpose))
        precompute = getattr(model, "precompute", None)
        if callable(precompute):  # after the pruning, which resets the served vectors
            precompute()  # every served vector solved now, as after a fit: no request pays it
        return p


_PARTS = ("model/manifest.json", "fallback/manifest.json")
_BASIS = "basis.npz"  # what each person's row was built from (older folders lack it)


def _save_basis(path: Path, basis: dict[str, int]) -> None:
    with path.open("wb") as f:
        np.savez(f, users=np.array(list(basis), dtype=str),
                 digests=np.array(list(basis.values()), dtype=np.uint64))


def _load_basis(folder: Path, manifest: dict[str, Any]) -> dict[str, int]:
    """The saved :attr:`_Serving.basis` (its checksum was checked with the other parts),
    or none for a folder saved before it was kept."""
    if _BASIS not in manifest["parts"]:
        return {}
    try:
        with (folder / _BASIS).open("rb") as f:  # (np.load leaks a broken zip's handle)
            data = np.load(f, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):  # one bare array
                raise ValueError("not an .npz archive")
            with data:
                users, digests = data["users"], data["digests"]
        if (users.ndim != 1 or users.dtype.kind != "U" or users.shape != digests.shape
                or digests.dtype != np.uint64):
            raise ValueError("not one id and one 64-bit digest per person")
        return dict(zip(users.tolist(), digests.tolist(), strict=True))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(
            f"{folder / _BASIS} cannot be read ({exc}); save the Personalizer again or "
            "fit anew"
        ) from None


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelFileError(
            f"{path} cannot be read ({exc}); a saved Personalizer needs its model/ and "
            "fallback/ folders as save() wrote them"
        ) from None


def _checksum(manifest: Mapping[str, Any]) -> str:
    """sha256 of every field but ``sha256``, as JSON with sorted keys and no spaces (the
    rule of model manifests, see ``persona.models``)."""
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_parts(folder: Path, manifest: dict[str, Any]) -> None:
    """personalizer.json is as saved, and model/ and fallback/ are the parts saved with it
    (each part's manifest checksums its own arrays and claims)."""
    if _checksum(manifest) != manifest.get("sha256"):
        raise ModelFileError(
            f"checksum mismatch for {folder / 'personalizer.json'}: its settings (store, "
            "purpose, privacy, curation) were changed or damaged after saving. Do not use "
            "this folder; save the Personalizer again or fit anew."
        )
    parts = manifest.get("parts")
    optional = (_BASIS,) if isinstance(parts, dict) and _BASIS in parts else ()
    for part in (*_PARTS, *optional):
        if not isinstance(parts, dict) or _file_sha256(folder / part) != parts.get(part):
            raise ModelFileError(
                f"{folder / part} is not the one saved with {folder / 'personalizer.json'} "
                "(it was replaced or edited, e.g. with another folder's or store's model). "
                "Do not use this folder; save the Personalizer again or fit anew."
            )


def _block(state: _Serving, curation: Curation) -> None:
    """Give the serving model and fallback the curation's block set (every path of theirs
    leaves the items out)."""
    state.model.block(curation.block)
    state.fallback.block(curation.block)


def _prune(state: _Serving, consented: set[str]) -> None:
    """Remove from the model and the fallback everyone not in ``consented``; the caller
    holds the state's write lock or owns a state not yet serving."""
    for part in (state.model, state.fallback):
        for user in [str(u) for u in part.users_ if str(u) not in consented]:
            part.forget(user)
    for user in [u for u in state.basis if u not in consented]:
        del state.basis[user]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _digest(signature: tuple[int, ...]) -> int:
    """A 64-bit digest of a person's ``(events, first, last)``: what is compared, and
    saved, instead of the counts and times themselves."""
    return int.from_bytes(
        hashlib.blake2b(repr(signature).encode(), digest_size=8).digest(), "little")


_NOTHING = _digest((0,))  # a person with no usable events


def _signatures(cols: EventColumns) -> dict[str, int]:
    """Per person in ``cols``: the :func:`_digest` of ``(events, first, last)`` of their
    events (times in µs)."""
    codes = np.asarray(cols.user, dtype=np.int64)
    if codes.size == 0:
        return {}
    at = np.asarray(cols.at, dtype="datetime64[us]").astype(np.int64)
    n = len(cols.users)
    rows = np.bincount(codes, minlength=n)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, codes, at)
    np.maximum.at(last, codes, at)
    have = np.flatnonzero(rows)
    users = np.asarray(cols.users, dtype=object)[have].tolist()
    return {
        str(u): _digest((r, f, la))
        for u, r, f, la in zip(
            users, rows[have].tolist(), first[have].tolist(), last[have].tolist(), strict=True
        )
    }


def _signature(person: PersonLineage) -> int:
    """The same digest, from a person's lineage read now."""
    if not person.rows:
        return _NOTHING
    return _digest((
        person.rows,
        (min(f.first_at for f in person.used) - _EPOCH) // _US,
        (max(f.last_at for f in person.used) - _EPOCH) // _US,
    ))


def _merge(
    recs: list[Recommendation], pins: list[tuple[int, Recommendation]], n: int
) -> list[Recommendation]:
    """Put pinned items at their positions, the model's items around them, ranks 1..n."""
    if not pins:
        return recs[:n]
    slots: dict[int, Recommendation] = dict(pins)
    rest = iter(recs)
    out: list[Recommendation] = []
    for pos in range(1, n + 1):
        r = slots.get(pos) or next(rest, None)
        if r is None:
            continue
        if r.rank != len(out) + 1:
            e = r.explanation
            if e is not None:
                e = e.model_copy(update={"rank": len(out) + 1})
            r = Recommendation.trusted(r.item, r.score, len(out) + 1, e)
        out.append(r)
    return out


def _check_privacy(model: Any, privacy: Any) -> None:
    """Refuse a model whose own ``privacy`` differs from the Personalizer's."""
    own = getattr(model, "privacy", None)
    if own is None or own == privacy:
        return
    name = type(model).__name__
    if privacy is None:
        raise ValidationError(
            f"the model was built with privacy={own!r} but the Personalizer has "
            "privacy=None, which would fit it without privacy. Give the privacy to the "
            f"Personalizer instead: Personalizer(store, model={name}(...), privacy=DP(...)); "
            "it is split between the model and the non-profiling fallback list "
            "(fallback_share) and charged to the store's budget.",
            errors=[{"row": None, "field": "privacy", "message": "conflicts with the model"}],
        )
    raise ValidationError(
        f"the Personalizer's privacy={privacy!r} differs from the model's own "
        f"privacy={own!r}; give it once, to the Personalizer (build the model without "
        "privacy=): the Personalizer splits it between the model and the fallback list.",
        errors=[{"row": None, "field": "privacy", "message": "conflicts with the model"}],
    )


def _check_settings(store: Any, purpose: Any, privacy: Any, half_life: Any) -> None:
    """Refuse settings of the wrong kind before anything is read or written."""
    from datetime import timedelta

    from persona.privacy import DP

    if not callable(getattr(store, "scope", None)):
        raise ValidationError(
            f"store must be a persona.Store, not {type(store).__name__}; e.g. "
            "Personalizer(persona.Store('shop.db'))",
            errors=[{"row": None, "field": "store", "message": "not a store"}],
        )
    if not isinstance(purpose, str):
        raise ValidationError(
            f"purpose must be the name of a defined purpose (a str), not "
            f"{type(purpose).__name__}",
            errors=[{"row": None, "field": "purpose", "message": "not a str"}],
        )
    if privacy is not None and not isinstance(privacy, DP):
        raise ValidationError(
            f"privacy must be a persona.DP or None, not {privacy!r}; e.g. "
            "privacy=persona.DP(epsilon=1.0)",
            errors=[{"row": None, "field": "privacy", "message": "not DP"}],
        )
    if half_life is not None and (
        not isinstance(half_life, timedelta) or half_life <= timedelta(0)
    ):
        raise ValidationError(
            f"half_life must be a positive datetime.timedelta or None, not {half_life!r}; "
            "e.g. half_life=timedelta(days=30)",
            errors=[{"row": None, "field": "half_life", "message": "invalid"}],
        )


def _non_profiling(
    not_used: list[Any], person: PersonLineage, features: Mapping[str, Any],
    since: datetime | None,
) -> list[Any]:
    """The data-not-used statements of a person who chose the non-profiling list: their
    own data is left out by their choice (``non_profiling_chosen``), said for each kind of
    their data the purpose may use (with how many events, 0 when none)."""
    from persona.explain import DataNotUsed

    out = [d.model_copy(update={"reason": "non_profiling_chosen", "since": since})
           if d.reason == "not_personalised" else d for d in not_used]
    if not any(d.reason == "non_profiling_chosen" for d in out):
        for name, spec in features.items():
            if person.purpose in spec.purposes:
                out.insert(0, DataNotUsed(
                    feature=name, category=spec.category, reason="non_profiling_chosen",
                    purpose=person.purpose, events=0, since=since,
                ))
    return out


def _check_at(at: Any) -> datetime:
    """A past moment to answer for: an aware datetime or an ISO 8601 string with a zone."""
    when = at
    if isinstance(at, str):
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            when = None
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValidationError(
            f"at must be a time with a time zone (a datetime or an ISO 8601 string such as "
            f"'2026-11-27T10:00:00Z'), not {at!r}",
            errors=[{"row": None, "field": "at", "message": "invalid time"}],
        )
    return when


def _check_user(user: Any) -> str:
    """The person's id in NFC, by persona's one id rule (:func:`persona.schema.check_id`)."""
    return check_id(user, "user")


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_N:
        raise ValidationError(
            f"field 'n': {n!r} is out of range; ask for 1 to {MAX_N} items",
            errors=[{"row": None, "field": "n", "message": "out of range"}],
        )
    return int(n)
