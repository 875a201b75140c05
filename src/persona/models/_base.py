"""The shared interface of every persona recommender.

Subclasses implement a handful of hooks (``_fit``, ``_rank_scores``, ``_exact_scores``,
``_arrays``/``_restore``, ``_after_fold_in``/``_after_forget``); everything a user calls
(``recommend``, ``recommend_batch``, ``similar_items``, ``fold_in``, ``forget``, ``save``,
``load``) lives here, written once, so that every model behaves the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import pydantic
import scipy.sparse as sp

from persona._progress import check_show_progress
from persona.data import Interactions
from persona.errors import (
    PersonaError,
    ValidationError,
)
from persona.explain import Recommendations, attach_explanations, explained_lists
from persona.explain import explain as explain_item
from persona.models import _attribution, _block, _private
from persona.models._attribution import Attribution, AttributionKind
from persona.models._history import history_row, rows_on, with_row, with_rows, without_row
from persona.models._persistence import load_model, save_model
from persona.models._scoring import BusinessRule, Scoring, _user_list
from persona.models._tables import RecommendationArrays, _package
from persona.models._threads import _one_blas_thread
from persona.models._topk import _top_per_row
from persona.privacy import DP
from persona.schema import (
    Counterfactual,
    Explanation,
    PrivacySpent,
    Recommendation,
    check_detail,
    check_id,
    check_id_list,
)

__all__ = [
    "BusinessRule",
    "History",
    "NoExactDecompositionError",
    "PrivateTrainingUnavailableError",
    "RecommendationArrays",
    "Recommender",
]

#: A person's own events for ``fold_in``: item → confidence, or a list of item ids (1 each).
History = Mapping[str, float] | Sequence[str]


class PrivateTrainingUnavailableError(PersonaError, NotImplementedError):
    """``privacy=`` was given to a model that has no private training (BPR). HTTP 422
    (Unprocessable Content): fit it without ``privacy=`` or choose a model that has it."""

    code = "private_training_unavailable"
    http_status = 422


class NoExactDecompositionError(PersonaError, NotImplementedError):
    """The model's scores cannot be split exactly into per-item contributions. HTTP 422
    (Unprocessable Content): ask for a justification instead of an exact split."""

    code = "no_exact_decomposition"
    http_status = 422


class Recommender(Scoring):
    """Base class: the scikit-learn style contract and the serving logic.

    Parameters are declared once, in the constructor's signature, stored unchanged by
    ``__init__`` and validated by a pydantic config at :meth:`fit` (the config declares
    bounds and documentation; its defaults are the constructor's); :meth:`get_params`,
    :meth:`set_params` and ``sklearn.base.clone`` work as in scikit-learn; learned
    attributes end in ``_``; using a model before ``fit`` raises
    :class:`~persona.errors.NotFittedError`.

    Attributes
    ----------
    users_ : numpy.ndarray
        The people the model knows (training people plus those added by :meth:`fold_in`).
    items_ : numpy.ndarray
        The catalogue.
    lineage_ :
        The :attr:`Interactions.lineage` of the training data (``None`` if unknown): a
        :class:`persona.schema.Lineage` for data read from a store, after :meth:`fit` and
        after :meth:`load` alike (a lineage of the caller's own kind loads as a dict).
    privacy_spent_ :
        What a private fit spent (a :class:`persona.privacy.PrivacySpent`); ``None`` for
        non-private fits. Saved and loaded with the model.
    params_ : dict
        The parameters the fitted state was learned with (:meth:`get_params` at :meth:`fit`,
        or as loaded); :meth:`save` writes these. They differ from :meth:`get_params` after
        :meth:`set_params` until the next fit.
    config_ :
        The same parameters validated by the model's pydantic config (``ALSConfig``, ...),
        without ``privacy`` and ``show_progress``; serving reads its settings here.

    Notes
    -----
    **Private training.** ``ALS``, ``ItemKNN`` and ``Popularity`` accept
    ``privacy=persona.DP(...)``. The unit of privacy is one person. What is pooled across
    people (item factors, item co-occurrences, popularity counts) is released once, at
    :meth:`fit`, with differential privacy; each person's own profile is computed from
    their own data and shown only to them (joint / billboard DP). Afterwards
    :meth:`fold_in` computes a person's profile from their own events against the released
    pooled part, and :meth:`forget` removes the person's history and profile but does
    **not** recompute the pooled part (recomputing it without noise would release it
    without privacy; the released part already satisfies DP with or without them). Refit
    (a fresh private charge) to drop their contribution from the pooled part too.
    """

    _config_class: ClassVar[type[pydantic.BaseModel]]
    privacy_spent_: PrivacySpent | None
    #: ``True`` when scores depend on the person (everything but Popularity).
    personalised: ClassVar[bool] = True
    #: ``True`` when the model can train with ``privacy=DP(...)`` (``_fit_private``).
    _private_training: ClassVar[bool] = False

    # ----------------------------------------------------------- blocked items

    # ----------------------------------------------------------- sklearn contract

    # ------------------------------------------------------------------- fit
    def fit(self, X: Interactions) -> Self:
        """Learn from ``X`` and return ``self``.

        Parameters
        ----------
        X
            The training interactions (build with :class:`persona.data.Interactions`).
        """
        if not isinstance(X, Interactions):
            raise ValidationError(
                f"fit expects persona Interactions, not {type(X).__name__}; build one with "
                "Interactions.from_pandas, from_view or from_csr"
            )
        privacy = self._validated_privacy()
        config = self._validated_config()
        check_show_progress(getattr(self, "show_progress", None))
        if privacy is None:
            if X.nnz == 0:
                note = getattr(X.lineage, "retention_note", None)
                why = note() if callable(note) else ""
                raise ValidationError(
                    f"{X!r} has no interactions, so there is nothing to learn from; "
                    + (why or "check the weights (features not listed are dropped) and the "
                       "consent scope")
                )
            self._start(X, X.lineage, config)
            with _one_blas_thread():
                self._fit(X.matrix, config)
            return self
        _private.fit(self, X, privacy, config)
        return self

    def _start(self, X: Interactions, lineage: Any, config: Any) -> None:
        """The state every fit begins with: config, catalogue, history, lineage."""
        self.config_ = config
        self.params_ = self.get_params(deep=False)
        self._set_catalogue(X.users, X.items, X.matrix)
        self.lineage_ = lineage
        self.privacy_spent_ = None

    def _validated_privacy(self) -> Any:
        """``self.privacy`` checked: ``None`` or a :class:`persona.DP`."""
        privacy = getattr(self, "privacy", None)
        if privacy is None:
            return None
        if not isinstance(privacy, DP):
            raise ValidationError(
                f"privacy must be a persona.DP, not {type(privacy).__name__}; pass for "
                "example privacy=persona.DP(epsilon=1.0, delta=1e-6, "
                "max_events_per_person=50)"
            )
        if not self._private_training:
            raise PrivateTrainingUnavailableError(
                f"{type(self).__name__} has no private training: its fit would reveal more "
                "about single people than a DP claim allows. Use ALS(privacy=...), "
                "ItemKNN(privacy=...) or Popularity(privacy=...), or fit without privacy=."
            )
        return privacy

    def _set_catalogue(self, users: np.ndarray, items: np.ndarray, matrix: sp.csr_matrix) -> None:
        self.users_ = np.asarray(users, dtype=object)
        self.items_ = np.asarray(items, dtype=object)
        # ids are str already (Interactions and model files hold only str ids)
        self._uidx = dict(zip(self.users_.tolist(), range(len(self.users_)), strict=True))
        self._iidx = dict(zip(self.items_.tolist(), range(len(self.items_)), strict=True))
        hist = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
        hist.sort_indices()
        self.history_ = hist

    # ---------------------------------------------------------------- hooks
    def _fit(self, matrix: sp.csr_matrix, config: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def _fit_private(
        self, matrix: sp.csr_matrix, config: Any, privacy: Any
    ) -> None:  # pragma: no cover
        """Private training: release the pooled parts with DP, set ``privacy_spent_``."""
        raise NotImplementedError

    def _after_fold_in(self, row: int) -> None:
        """Update learned state after a person's history row was set."""

    def _after_fold_in_rows(self, rows: np.ndarray) -> None:
        """:meth:`_after_fold_in` for each of ``rows`` (ascending), or all together."""
        for row in rows.tolist():
            self._after_fold_in(row)

    def _after_forget(self, row: int, items: np.ndarray) -> None:
        """Update learned state after row ``row`` (with ``items``) left the model."""

    def _arrays(self) -> dict[str, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError

    # --------------------------------------------------------------- serving

    def recommend(
        self,
        user: str | int,
        n: int = 10,
        *,
        exclude_seen: bool | None = None,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
        rule: BusinessRule | None = None,
        explain: bool = True,
        detail: Literal["summary", "full"] = "summary",
    ) -> list[Recommendation]:
        """The ``n`` best items for one person, best first.

        Parameters
        ----------
        user
            The person's id. Unknown people raise :class:`~persona.errors.UnknownUserError`
            (use :meth:`fold_in` for someone new).
        n
            How many items. If fewer items are eligible (small catalogue, filters), the list
            is shorter; it is never padded.
        exclude_seen
            Leave out items in the person's history. Default ``True`` (``False`` for the
            non-profiling :class:`Popularity`).
        exclude
            Item ids never to return.
        include
            Only rank these item ids (everything else is left out).
        rule
            Business-rule hook ``rule(user, item_ids) -> keep_mask``, called with the whole
            catalogue; items where the mask is ``False`` are left out.
        explain
            Attach an :class:`~persona.explain.Explanation` to each recommendation (the
            default); ``False`` skips it for raw speed.
        detail
            ``"summary"`` (default): each explanation lists its top reasons (up to three
            for the item, the largest against it) and totals the rest; ``"full"``: every
            reason. Either way its reasons are computed when first read.

        Returns
        -------
        list of Recommendation
            Ties in score are broken by catalogue order, so results are deterministic. A
            person whose history is empty (all their events were dropped or weighted 0)
            gets all-zero scores, i.e. catalogue order; serve them a non-personalised model.
        """
        self._check_fitted()
        if self.personalised or exclude_seen:
            rows = np.array([self._row(user)], dtype=np.int64)
            if type(user) is not str:
                user = check_id(user, "user")  # an int stands for its decimal string
        else:
            user = check_id(user, "user")
            rows = np.zeros(1, dtype=np.int64)
        _check_detail(detail)
        out = self._recommend_rows(rows, [user], n, exclude_seen, exclude, include, rule)
        recs = (self._explained([user], out, detail) if explain else out)[0]
        return recs if isinstance(recs, Recommendations) else Recommendations(recs)

    def recommend_batch(
        self,
        users: Sequence[str],
        n: int = 10,
        *,
        exclude_seen: bool | None = None,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
        rule: BusinessRule | None = None,
        block_size: int | None = None,
        explain: bool = True,
        detail: Literal["summary", "full"] = "summary",
    ) -> list[list[Recommendation]]:
        """:meth:`recommend` for many people at once; identical to calling it per person.

        Scores a block of people with one matrix product, masks their seen items in one
        vectorised step and selects the top ``n`` without a per-person Python loop; blocks
        run on the model's ``num_threads`` (numpy releases the GIL for this work).
        See :meth:`recommend_arrays` for the same result as arrays (never explained).
        Explanations are computed when first read; ``detail="summary"`` (default) lists
        each item's top reasons and totals the rest, ``"full"`` lists every history item
        behind it (about 0.1 KB of JSON each). ``block_size`` (people per
        matrix product) is chosen from the catalogue size and the threads when not given;
        it changes the speed, never the result.
        """
        _check_detail(detail)
        res = self.recommend_arrays(
            users, n, exclude_seen=exclude_seen, exclude=exclude, include=include, rule=rule,
            block_size=block_size,
        )
        if not explain:
            return res.to_lists()
        return explained_lists(self, _user_list(users), res, detail=detail)

    def _explained(
        self, users: list[str], lists: list[list[Recommendation]],
        detail: Literal["summary", "full"] = "summary",
    ) -> list[list[Recommendation]]:
        return attach_explanations(self, users, lists, detail=detail)

    def explain(
        self,
        user: str | int,
        item: str,
        *,
        counterfactual: bool = False,
        n: int = 10,
        store: Any = None,
        view: Any = None,
        labels: Mapping[str, str] | None = None,
        language: str = "en",
        detail: Literal["summary", "full"] = "full",
    ) -> Explanation:
        """Explain the score of any ``item`` for ``user``, recommended or not.

        See :func:`persona.explain.explain` for the parameters (``detail="full"``, the
        default here, lists every reason); returns an
        :class:`~persona.explain.Explanation`.
        """
        return explain_item(
            self, user, item, counterfactual=counterfactual, n=n,  # type: ignore[arg-type]  # an int id is read as its decimal string there (check_id)
            store=store, view=view, labels=labels, language=language, detail=detail)

    # ------------------------------------------------------------ attribution
    @property
    def attribution_kind(self) -> AttributionKind:
        """What :meth:`attribute` gives: ``"decomposition"`` (the exact split of each
        score over the person's history: ALS, ItemKNN), ``"justification"`` (similarities
        of the history items, for models with no exact split: BPR) or
        ``"non_personalised"`` (no personal data: Popularity)."""
        exact = type(self)._contribution_matrix is not Recommender._contribution_matrix
        return _attribution.kind(self, exact)

    def attribute(self, user: str, items: Sequence[str]) -> Attribution:
        """How the served scores of ``items`` for ``user`` come from their history, for
        all the items at once (what explanations are built from).

        Returns an :class:`~persona.models.Attribution` of :attr:`attribution_kind`:
        ``parts[:, k]`` splits the score of ``items[k]`` over ``history`` (decompositions)
        or holds each history item's similarity to it (justifications).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from persona.data import Interactions
        >>> from persona.models import ItemKNN
        >>> X = Interactions.from_csr(sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1],
        ...     [0, 1, 1]])), ["u1", "u2", "u3"], ["boots", "socks", "tent"])
        >>> model = ItemKNN(neighbours=3).fit(X)
        >>> a = model.attribute("u1", ["tent"])
        >>> a.kind, a.history, a.seen
        ('decomposition', ['boots', 'socks'], [False])
        >>> bool(np.isclose(a.parts[:, 0].sum(), model.score("u1", ["tent"])[0]))
        True
        """
        self._check_fitted()
        items = check_id_list(items, "items")  # a list of ids, never one str
        return _attribution.attribute(self, user, items, self.attribution_kind)

    def rank_of(self, user: str | int, item: str, score: float | None = None) -> int | None:
        """The rank ``item`` has among the items :meth:`recommend` would consider for
        ``user`` (``None`` for an item of their history, which is not ranked); ``score``:
        its served score when the caller holds it. Ties go by catalogue order."""
        self._check_fitted()
        return _attribution.rank(self, user, item, score)  # type: ignore[arg-type]

    def counterfactual(
        self, user: str, item: str, candidates: Sequence[str], *, n: int = 10,
        labels: Mapping[str, str] | None = None, max_steps: int = 10,
    ) -> Counterfactual:
        """The smallest part of ``user``'s history found (trying ``candidates`` in order,
        at most ``max_steps``) whose removal takes ``item`` out of their top ``n``, each
        step verified by re-scoring the reduced history through fold-in (the model itself
        is not changed). ``labels``: item titles for ``removed_labels``."""
        self._check_fitted()
        return _attribution.counterfactual(self, user, item, candidates, n, labels or {},
                                           max_steps)

    def set_item_labels(self, labels: Mapping[str, str]) -> Self:
        """Human-readable item titles for explanations (catalogue data; not saved).

        Items without a label are shown by their id. Returns ``self``.
        """
        self._check_fitted()
        current = dict(self.__dict__.get("item_labels_") or {})
        current.update({str(k): str(v) for k, v in labels.items()})
        self.item_labels_ = current
        return self

    def has_user(self, user: str) -> bool:
        """Whether the fitted model holds a row for ``user`` (as given: no id rule)."""
        return isinstance(user, str) and user in self._uidx

    def has_item(self, item: str) -> bool:
        """Whether ``item`` is in the fitted model's catalogue (as given: no id rule)."""
        return isinstance(item, str) and item in self._iidx

    def history_length(self, user: str) -> int | None:
        """How many items ``user``'s row of the fitted history holds; ``None`` when the
        model holds no row for them."""
        row = self._uidx.get(user) if isinstance(user, str) else None
        if row is None:
            return None
        indptr = self.history_.indptr
        return int(indptr[row + 1] - indptr[row])

    def score(self, user: str | int, items: Sequence[str]) -> np.ndarray:
        """The served scores of ``items`` for ``user`` (as :meth:`recommend` reports them)."""
        self._check_fitted()
        rows = np.array([self._row(user) if self.personalised else 0], dtype=np.int64)
        cols = self._item_rows(items, "items")
        assert cols is not None
        self._prepare_rows(rows)
        S = self._rank_scores(rows)
        return np.asarray(
            self._exact_scores(np.repeat(rows, cols.size), cols, S[0, cols]), dtype=np.float64
        )

    def similar_items(
        self,
        item: str,
        n: int = 10,
        *,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> list[Recommendation]:
        """Items most similar to ``item`` (itself excluded), best first.

        ALS and BPR use the cosine of item factors, ItemKNN its neighbour similarities,
        Popularity the closeness in popularity.
        """
        self._check_fitted()
        j = self._item(item)
        n = self._check_n(n, None)
        s = np.array(self._similar_scores(j), dtype=np.float64, copy=True)[None, :]
        s[0, j] = -np.inf
        exc = _block.with_blocked(self, self._item_rows(exclude, "exclude"))
        inc = self._item_rows(include, "include")
        if exc is not None and exc.size:
            s[0, exc] = -np.inf
        if inc is not None:
            keep = np.zeros(s.shape[1], dtype=bool)
            keep[inc] = True
            s[0, ~keep] = -np.inf
        r_idx, c_idx, sc = _top_per_row(s, min(int(n), s.shape[1]))
        return _package(r_idx, c_idx, sc, 1, self.items_)[0]

    # ------------------------------------------------------- fold-in / forget
    def fold_in(
        self,
        user: str | int,
        history: History | Interactions,
        *,
        unknown_items: str = "raise",
    ) -> Self:
        """Add (or update) one person from their own events, without refitting.

        The person's vector is computed from ``history`` against the fitted item side
        (ALS: the exact least-squares solve; ItemKNN: their history is the profile). Their
        history replaces any earlier one. Afterwards :meth:`recommend` works for them.

        Parameters
        ----------
        user
            The person's id.
        history
            ``{item: confidence}``, a list of item ids (1 each, repeats summed), or a
            one-person :class:`Interactions`. An empty history is allowed: the person then
            gets all-zero scores (catalogue order); prefer a non-personalised fallback.
        unknown_items
            ``"raise"`` (default) or ``"ignore"`` items that are not in the catalogue.
        """
        self._check_fitted()
        return self._fold_in(check_id(user, "user"), history, unknown_items=unknown_items)

    def _fold_in(
        self, user: str, history: History | Interactions, *, unknown_items: str = "raise"
    ) -> Self:
        """:meth:`fold_in` of an id already checked (or persona's own sandbox id, which the
        id rule keeps apart from every real person's)."""
        if unknown_items not in ("raise", "ignore"):
            raise ValidationError("unknown_items must be 'raise' or 'ignore'")
        cols, vals = history_row(self._iidx, history, unknown_items)
        row = self._uidx.get(user)
        if row is None:
            row = self.history_.shape[0]
            self.users_ = np.append(self.users_, np.array([user], dtype=object))
            self._uidx[user] = row
        self.history_ = with_row(self.history_, row, cols, vals)
        self._after_fold_in(row)
        return self

    def fold_in_many(self, X: Interactions, *, unknown_items: str = "raise") -> Self:
        """Add (or update) every person of ``X`` from their own events, as :meth:`fold_in`
        does for each (their row of ``X`` replaces their history; an empty row leaves them
        with none), in one pass over the model's history instead of one per person.

        Items the model does not know raise :class:`~persona.errors.UnknownItemError`
        before anything changes, or are skipped with ``unknown_items="ignore"``.
        """
        self._check_fitted()
        if not isinstance(X, Interactions):
            raise ValidationError(f"fold_in_many takes Interactions, not {type(X).__name__}")
        if unknown_items not in ("raise", "ignore"):
            raise ValidationError("unknown_items must be 'raise' or 'ignore'")
        R, users = rows_on(self._iidx, X, unknown_items), X.users.tolist()
        rows = np.fromiter((self._uidx.get(u, -1) for u in users), np.int64, len(users))
        if (new := np.flatnonzero(rows < 0)).size:  # people new to the model are added
            added = [check_id(users[k], "user") for k in new.tolist()]
            rows[new] = len(self.users_) + np.arange(new.size)
            self.users_ = np.append(self.users_, np.array(added, dtype=object))
            self._uidx.update(zip(added, rows[new].tolist(), strict=True))
        self.history_ = with_rows(self.history_, rows, R)
        self._after_fold_in_rows(np.sort(rows))
        return self

    def forget(self, user: str | int) -> Self:
        """Remove a person: their history, their vector and their id leave the model.

        What else changes is model specific and documented on each model (ALS re-solves
        the items they touched; ItemKNN and Popularity recompute from the remaining data).
        A privately trained model (``privacy=DP(...)``) keeps its pooled part as released
        under DP and does not recompute it: refit for a fresh private release.
        """
        row = self._row(user)
        self.history_, keep, items = without_row(self.history_, row)
        self.users_ = self.users_[keep]
        self._uidx = {str(u): k for k, u in enumerate(self.users_)}
        self._after_forget(row, items)
        return self

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path, *, store_id: str | None = None) -> Path:
        """Write the fitted model to the directory ``path`` (npz + JSON manifest).

        No pickle is used; :meth:`load` verifies a sha256 checksum that covers the arrays
        and every field of the manifest (parameters, lineage, privacy spent), and the
        format version. ``store_id`` records the store the model was fitted for (by
        default the one its lineage names, if any).
        """
        self._check_fitted()
        return save_model(self, Path(path), store_id=store_id)

    @classmethod
    def load(cls, path: str | Path, *, store_id: str | None = None) -> Self:
        """Read a model written by :meth:`save`; refuses damaged, edited, foreign or unsafe
        files, and, with ``store_id``, a model saved for another store."""
        return load_model(cls, Path(path), store_id=store_id)  # type: ignore[return-value]

    def _contribution_matrix(self, row: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(history_columns, parts)``: ``parts[:, k]`` splits the served score of item
        ``cols[k]`` for person ``row`` over their history (what :meth:`contributions` gives,
        for several items at once). Models without an exact split raise."""
        raise NoExactDecompositionError(
            f"{type(self).__name__} scores have no exact per-item decomposition"
        )

    def contributions(self, user: str, item: str) -> tuple[np.ndarray, np.ndarray]:
        """Split ``score(user, item)`` into one contribution per item in their history.

        Returns ``(history_item_ids, contributions)``; the contributions sum to the served
        score. Models without an exact decomposition raise
        :class:`NoExactDecompositionError`.
        """
        raise NoExactDecompositionError(
            f"{type(self).__name__} scores have no exact per-item decomposition; "
            "use ALS or ItemKNN when faithful explanations are needed"
        )


_check_detail = check_detail  # (the models' name for it)
