"""The Personalizer: what a shop's backend imports.

It ties the parts together in the one direction DESIGN.md draws: it reads only through
``store.scope(purpose)``, fits the model (privately when asked, charging the store's budget
ledger before any data is read), and serves recommendations with a live consent check, human
curation, people's feedback and an explanation on every item.

This module is the façade: the public methods and their docstrings. The work is done by
one module per job: :mod:`._fit` (the privacy split, the ledger and the fit),
:mod:`._serve` (the serving path and folding a person in), :mod:`._curation` (pins and
blocks), :mod:`._explain` (explanations now and shown records), :mod:`._persist` (the saved
folder), :mod:`._shared` (publishing to the store's model registry and picking up what
other workers set), :mod:`._state` (the serving state and what each row was built from)
and :mod:`._checks` (argument rules).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from persona._columns import EventColumns
from persona.errors import ModelFileError, NotFittedError, PersonaError, ValidationError
from persona.explain import Recommendations, shown_items
from persona.models import ALS, MODELS, Popularity, Recommender
from persona.personalizer import _curation, _explain, _fit, _persist, _serve, _shared
from persona.personalizer._checks import (
    check_at,
    check_fallback_share,
    check_n,
    check_privacy,
    check_record_shown,
    check_refresh,
    check_scaling,
    check_settings,
    check_user,
)
from persona.personalizer._choice import ModelChoice
from persona.personalizer._curation import Curation
from persona.personalizer._persist import _checksum as _checksum  # (read by tests)
from persona.personalizer._state import ServingState, block, drop, prune
from persona.privacy import DP
from persona.schema import FeedbackKind, Recommendation, check_detail, check_id

if TYPE_CHECKING:
    from persona.explain import Explanation
    from persona.schema import ModelVersion
    from persona.store import ShownRecord, Store

__all__ = ["Curation", "Personalizer"]

_MODELS = MODELS  # (persona's one model registry)


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
        An unfitted recommender; :meth:`fit` fits a copy. Without one: ``ALS()`` without
        privacy; with ``privacy``, :meth:`fit` chooses by a private validation that is
        charged to the model's share (:func:`persona.personalizer.fit_private_choice`):
        the private popularity list, :class:`~persona.ContentKNN` on the store's item labels
        (public text; it spends nothing) or private ALS (from a model share of ε = 6),
        whichever has the largest noisy validation gain over popularity (people with a
        held-out item in its top 10 and none in popularity's, less the other way round) if
        that is clearly above 0, else popularity. :attr:`choice_`
        says how it chose and :attr:`model` becomes the chosen class. A :class:`~persona.ContentKNN`
        without ``item_text`` takes the store's item labels.
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
    refresh_every
        Seconds (a number, 0 or more; default 5) between checks of the store for what
        other workers on it set: a new curation (:meth:`curate`, ``store.set_curation``)
        or a new live model (:meth:`publish`, ``store.set_live_model``). The first request
        after the interval runs the check (one small read) and swaps a change in; ``0``
        checks on every request. See :meth:`refresh`.
    refresh_clock
        The monotonic clock (seconds) the interval is measured with; for tests. Default
        :func:`time.monotonic`.

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
        store: Store,
        purpose: str = "personalization",
        *,
        model: Recommender | None = None,
        privacy: DP | None = None,
        weights: Mapping[str, float] | None = None,
        scaling: str = "none",
        half_life: timedelta | None = None,
        fallback_share: float = 0.1,
        record_shown: bool = True,
        refresh_every: float = 5.0,
        refresh_clock: Callable[[], float] | None = None,
    ) -> None:
        check_settings(store, purpose, privacy, half_life)
        self.record_shown = check_record_shown(record_shown)
        #: Seconds between checks of the store for another worker's curation or live
        #: model (see the parameter above).
        self.refresh_every, self._refresh_clock = check_refresh(refresh_every, refresh_clock)
        self.store = store
        self.purpose = purpose
        #: ``True`` when no model was given: :meth:`fit` then chooses one from public
        #: inputs (see ``model`` above) and sets :attr:`model` to it.
        self.chooses_model = model is None
        self.model = model if model is not None else ALS()
        #: With privacy and no model given: how :meth:`fit` chose (``None`` until then).
        self.choice_: ModelChoice | None = None
        check_privacy(self.model, privacy)
        self.privacy = privacy
        self.weights = dict(weights) if weights is not None else None
        self.scaling = scaling
        self.half_life = half_life
        check_scaling(scaling, privacy)
        self.fallback_share = check_fallback_share(fallback_share)
        self._view = store.scope(purpose)  # raises UnknownPurposeError for unknown purposes
        self._state: ServingState | None = None
        self._fit_lock = threading.Lock()
        # held by a fit between its consent check and its swap, and by forget after the
        # erasure: a fit that read someone before their erasure never swaps them back in
        self._swap_lock = threading.Lock()
        # the serving state shared through the store: the counters last seen, then the
        # curation (read after them: a change in between is picked up again, harmlessly)
        self._seen_curation, self._seen_live = store.serving_versions(purpose)
        self._curation = store.curation(purpose)
        self._refresh_lock = threading.Lock()
        self._refresh_due = self._refresh_clock() + self.refresh_every
        #: Why the last live version could not be loaded (the one before keeps serving;
        #: the next check tries again), or ``None``.
        self.refresh_error: PersonaError | None = None

    # ------------------------------------------------------------------ fitting
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
            _fit.fit(self)
        return self

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

    def _require(self) -> ServingState:
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
        never appear, on any path. Replaces the previous curation. It is held in the store
        (``store.set_curation``, recorded in its audit log), so every Personalizer on the
        purpose, in every process, applies it within its ``refresh_every``; this one at
        once.
        """
        return _curation.curate(self, pin, block, reason, by)

    @property
    def curation(self) -> Curation:
        """The curation now applied (the store's, as of the last check)."""
        return self._curation

    # ------------------------------------------------------------------ workers
    def refresh(self) -> bool:
        """Check the store now (without waiting for ``refresh_every``) for a curation or a
        live model set by another worker, and swap it in. Returns whether anything
        changed. A live version that cannot be loaded leaves the one serving in place and
        is kept in :attr:`refresh_error`."""
        return _shared.refresh(self)

    def publish(self, folder: str | Path) -> ModelVersion:
        """Save the state now serving into a new sub-folder of ``folder`` named by its
        version id (:attr:`model_version_`; written whole, then renamed into place) and
        register it in the store as the live version of the purpose (recorded in the
        audit log). Every Personalizer on the purpose, in every process, loads it within
        its ``refresh_every``. Returns the registry entry (``store.model_versions``);
        roll back with ``store.set_live_model(purpose, version)``. A version already
        published raises :class:`~persona.ValidationError`."""
        return _shared.publish(self, folder)

    @classmethod
    def live(
        cls,
        store: Store,
        purpose: str = "personalization",
        *,
        refresh_every: float = 5.0,
        refresh_clock: Callable[[], float] | None = None,
    ) -> Personalizer:
        """A Personalizer serving the store's live version of ``purpose``'s model (see
        :meth:`publish`), following it and the store's curation within
        ``refresh_every`` seconds: what each serving worker starts with. The folder is
        checked as :meth:`load` checks one, and against the checksum registered with it.
        Raises :class:`~persona.NotFittedError` when no version was published."""
        every, clock = check_refresh(refresh_every, refresh_clock)
        seen = store.serving_versions(purpose)
        live = store.live_model(purpose)
        if live is None:
            raise NotFittedError(
                f"no model of {purpose!r} is published in this store yet; fit one and "
                "publish it with p.publish(folder)"
            )
        p = _shared.load_version(cls, store, live, every, clock)
        p._seen_live = seen[1]
        return p

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
        user = check_user(user)
        n = check_n(n)
        check_detail(detail)
        now = self._refresh_clock()
        if now >= self._refresh_due:  # (one comparison until the interval has passed)
            _shared.check(self, now)
        state = self._require()
        # consent, lineage, feedback and the non-profiling choice, read now in one snapshot
        served = self.store.read_for_serving(self.purpose, user)
        pending = served.pending
        try:
            recs = Recommendations(_serve.serve(self, state, user, n, served, detail))
            if self.record_shown:  # (texts rendered once, for the list and its reader)
                pending.recs, pending.model_version = shown_items(recs), state.version
        finally:
            self.store.enqueue_serving(pending)  # the read's audit entry, and what was shown
            for read in served.later:  # a re-fold's history read, after it
                self.store.enqueue_serving(read)
        return recs

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
        users = [check_user(u) for u in users]
        n = check_n(n)
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
    ) -> Explanation | ShownRecord:
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
        user = check_user(user)
        item, n = check_id(item, "item"), check_n(n)  # refused before any (audited) read
        if at is not None:
            return _explain.explain_shown(self, user, item, check_at(at))
        now = self._refresh_clock()
        if now >= self._refresh_due:
            _shared.check(self, now)
        return _explain.explain_now(self, self._require(), user, item, counterfactual, n)

    def _fold_in(self, state: ServingState, user: str, cols: EventColumns | None) -> None:
        """(Re)build ``user``'s model row from ``cols``, their usable events now (``None``:
        none), and remember what it was built from (see :func:`._serve.fold_in`)."""
        _serve.fold_in(self, state, user, cols)

    # ------------------------------------------------------------------ people
    def feedback(self, user: str, item: str, kind: FeedbackKind) -> None:
        """Record a person's correction and apply it at once.

        ``"not_interested"``: the item leaves their lists. ``"dont_use"``: the item leaves
        their profile (it is re-solved from their remaining history) and their
        explanations stop citing it.
        """
        user = check_user(user)
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
        user = check_user(user)
        state = self._state
        if state is not None:
            drop(state, user)
        self.store.erase(user)
        with self._swap_lock:  # a fit that swapped in meanwhile read them before the erasure
            state = self._state
            if state is not None:
                drop(state, user)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the serving model, the fallback and the settings to the folder ``path``
        (npz + JSON, no pickle). People whose consent is no longer active (withdrawn,
        erased) are removed from the model and the fallback first, so no saved file holds
        their id or their history."""
        return _persist.save(self, self._require(), path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        store: Store,
        *,
        refresh_every: float = 5.0,
        refresh_clock: Callable[[], float] | None = None,
    ) -> Personalizer:
        """Read a Personalizer written by :meth:`save`, serving from ``store``. The
        store's curation of the purpose applies when one was set there (else the one
        saved in the folder); ``refresh_every`` as in the constructor."""
        every, clock = check_refresh(refresh_every, refresh_clock)
        folder, manifest = _persist.read_manifest(path, store)
        return cls._from_folder(folder, manifest, store, every, clock)

    @classmethod
    def _from_folder(
        cls, folder: Path, manifest: dict[str, Any], store: Store, refresh_every: float,
        refresh_clock: Callable[[], float],
    ) -> Personalizer:
        """:meth:`load` of a folder whose manifest was read and checked."""
        model_cls = _MODELS.get(manifest["model_class"])
        if model_cls is None:
            raise ModelFileError(f"unknown model class {manifest['model_class']!r} in {folder}")
        privacy = None
        if manifest["privacy"] is not None:
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
            refresh_every=refresh_every,
            refresh_clock=refresh_clock,
        )
        p._state = state = _persist.restore(p, folder, manifest, model, fallback)
        if p._curation.version == 0:  # none set in the store: the folder's
            p._curation = Curation.model_validate(manifest["curation"])
        choice = manifest.get("choice")  # absent from folders saved before it was kept
        p.choice_ = None if choice is None else ModelChoice.model_validate(choice)
        block(state, p._curation.block)
        # consent may have changed since the save: whoever withdrew or was erased since
        # leaves the loaded parts now (and the next requests check consent live)
        prune(state, store.consented(p.purpose))
        precompute = getattr(model, "precompute", None)
        if callable(precompute):  # after the pruning, which resets the served vectors
            precompute()  # every served vector solved now, as after a fit: no request pays it
        return p
