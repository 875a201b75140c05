"""``Interactions``: a person × item confidence matrix with its id maps and lineage.

Every model in persona is fitted on an :class:`Interactions`. It is built from events in one
of three ways (a store's scoped view, a pandas frame, or a SciPy matrix) and all three go
through the same weighting rules:

1. each event's confidence is ``weight[feature] × value`` (optionally decayed with age);
2. events of the same person and item are **summed** (duplicates are not an error: buying
   the same thing twice is more evidence), the pair keeps its latest time;
3. the summed confidence is optionally rescaled (``scaling="log"``, ``"row"`` or ``"bm25"``).

An ``Interactions`` may carry a **catalogue**: the declared, public item universe (the
store's :meth:`~persona.Store.define_items`, the ``items`` of :meth:`Interactions.from_csr`
and of :meth:`Interactions.from_pandas`). Private fits take their items from it, never from
the events, and refuse preprocessing that mixes people's rows (:attr:`Interactions.mixes_people`).

Only ``numpy``/``scipy`` are imported here, so the store and the models can both use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from persona import _frames
from persona.data import _build
from persona.data._convert import unique_ids
from persona.data._scaling import Scaling, bm25, check_scaling, row_scaled
from persona.errors import UnknownUserError, ValidationError
from persona.schema import check_id

__all__ = ["Interactions", "Scaling"]



class Interactions:
    """Confidence that each person likes each item, as a CSR matrix with string ids.

    Rows are people (``users``), columns are items (``items``); a stored value is the
    confidence ``c_ui > 0`` built from that person's events. Missing entries mean "no
    event", not "dislike".

    Parameters
    ----------
    matrix
        ``(n_users, n_items)`` sparse matrix of non-negative, finite confidences.
    users, items
        The ids of the rows and columns, unique, by persona's id rule
        (:data:`persona.schema.ID_RULE`): ints are kept as their decimal strings.
    at
        Optional latest event time per stored entry (``datetime64[us]``, aligned with
        ``matrix.data`` after canonicalisation); needed by :func:`persona.data.time_split`.
    lineage
        Opaque description of where the data came from (the store's lineage model), kept
        so that models and explanations can say which data was used. May be ``None``.
    catalogue
        The declared public item universe, a subset of ``items`` (``None``: the items came
        from the data). Private fits use exactly these items.
    preprocessing
        How the confidences were derived (``scaling``, ``half_life``, ``now``), for
        :attr:`mixes_people`.
    ledger
        A callable returning the privacy budget ledger of the data's source (set by
        :meth:`from_view`); private fits on these interactions are charged to it.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = Interactions.from_csr(sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0]])),
    ...                           users=["u1", "u2"], items=["a", "b"])
    >>> X
    Interactions(2 people × 2 items, 2 entries)
    >>> X.history("u2")
    {'b': 2.0}
    """

    __slots__ = ("_user_index", "at", "catalogue", "features", "items", "ledger", "lineage",
                 "matrix", "preprocessing", "users")

    def __init__(
        self,
        matrix: sp.spmatrix | sp.sparray,
        users: Sequence[str] | np.ndarray,
        items: Sequence[str] | np.ndarray,
        *,
        at: np.ndarray | None = None,
        lineage: Any = None,
        features: tuple[str, ...] | None = None,
        catalogue: Sequence[str] | np.ndarray | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        ledger: Any = None,
    ) -> None:
        m = sp.csr_matrix(matrix, dtype=np.float64)
        users_arr = unique_ids(users, "users")
        items_arr = unique_ids(items, "items")
        if m.shape != (len(users_arr), len(items_arr)):
            raise ValidationError(
                f"matrix has shape {m.shape} but there are {len(users_arr)} users and "
                f"{len(items_arr)} items; pass one id per row and per column"
            )
        if at is not None:
            at = np.asarray(at, dtype="datetime64[us]")
            if at.shape != m.data.shape:
                raise ValidationError("'at' must have one time per stored matrix entry")
        if not m.has_canonical_format:
            if at is not None:
                raise ValidationError("pass a canonical CSR matrix (sorted, no duplicates)")
            m.sum_duplicates()
        if m.data.size and (not np.all(np.isfinite(m.data)) or m.data.min() < 0):
            raise ValidationError(
                "confidences must be finite and non-negative; drop or clip bad values first"
            )
        if m.data.size and m.data.min() == 0:
            keep = m.data != 0
            if at is not None:
                at = at[keep]
            m.eliminate_zeros()
        self.matrix: sp.csr_matrix = m
        self.users: np.ndarray = users_arr
        self.items: np.ndarray = items_arr
        self.at: np.ndarray | None = at
        self.lineage: Any = lineage
        self.features: tuple[str, ...] | None = features
        if catalogue is not None:
            catalogue = unique_ids(catalogue, "catalogue")
            known = set(items_arr.tolist())
            if not known.issuperset(catalogue.tolist()):
                raise ValidationError(
                    "every catalogue item must be one of the items (matrix columns)"
                )
        self.catalogue: np.ndarray | None = catalogue
        self.preprocessing: dict[str, Any] = dict(preprocessing or {"scaling": "none"})
        self.ledger: Any = ledger
        self._user_index: dict[str, int] | None = None

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_csr(
        cls,
        matrix: sp.spmatrix | sp.sparray,
        users: Sequence[str] | np.ndarray,
        items: Sequence[str] | np.ndarray,
        *,
        scaling: Scaling = "none",
        lineage: Any = None,
    ) -> Interactions:
        """Wrap a SciPy matrix of confidences (duplicates summed, zeros dropped).

        ``items`` names the columns and is taken as the declared, public catalogue: a
        private fit scores and releases noisy statistics for every one of them. Pass the
        full list of what the shop sells, not the items that happen to appear in the data
        (a column set derived from people's events would reveal who bought what).

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> Interactions.from_csr(sp.eye(3, format="csr"), ["a", "b", "c"], ["x", "y", "z"]).nnz
        3
        """
        X = cls(matrix, users, items, lineage=lineage, catalogue=items)
        return X._rescaled(scaling)

    @classmethod
    def from_pandas(
        cls,
        df: Any,
        *,
        user: str = "user",
        item: str = "item",
        value: str | None = None,
        at: str | None = None,
        feature: str | None = None,
        weights: Mapping[str, float] | None = None,
        scaling: Scaling = "none",
        half_life: timedelta | None = None,
        now: datetime | np.datetime64 | None = None,
        lineage: Any = None,
        items: Sequence[str] | None = None,
        at_unit: Literal["s", "ms", "us", "ns"] | None = None,
        tz: str | tzinfo | None = None,
    ) -> Interactions:
        """Build from a pandas frame with one row per event.

        Parameters
        ----------
        df
            The events.
        user, item
            Columns with the person and item ids, by persona's id rule
            (:data:`persona.schema.ID_RULE`): str, or int (a numpy or nullable ``Int64``
            integer column), kept as its decimal string (``170`` becomes ``"170"``, so
            ``recommend(170)`` and ``recommend("170")`` both find that person). Float and
            bool columns are refused: a column of integer ids turns float when some are
            missing; drop those rows and convert it (``.astype("int64")``), or read it as
            ``"Int64"``. The people (rows) and items (columns) are in order of first
            appearance; for a ``category`` column, its categories in their order, unused
            ones too (people or items without events), as :meth:`to_pandas` writes them.
        value
            Column with the event's value (quantity, play count, ...); 1 per event if ``None``.
        at
            Column with the event time; needed for ``half_life`` and time-based splits.
            Timezone-aware datetimes and ISO 8601 strings with an offset name their
            instant. Numbers need ``at_unit``, naive times need ``tz``; a missing time is
            refused (the message says how to drop those rows).
        at_unit
            What numeric times count since 1970-01-01 UTC: ``"s"`` (unix seconds, as in
            MovieLens), ``"ms"``, ``"us"`` or ``"ns"``. Numbers without a unit are refused,
            and the message names the unit their size suggests.
        tz
            The time zone that naive times (no offset) were written in, e.g. ``"UTC"`` or
            ``"Europe/London"`` (a name, or a ``tzinfo``). Naive times without it are
            refused; a wall time that a daylight-saving change skips or repeats is refused.
        feature, weights
            Column naming the event's feature and the weight of each feature; see
            :meth:`from_view` for the rules.
        scaling, half_life, now
            See :meth:`from_view`.
        items
            The declared catalogue (public item universe): the columns are exactly these
            items, in this order, with or without events; an event on another item is an
            error. Needed for private fits (``None``: the items are those in the frame, which
            a private fit refuses).

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"user": ["u1", "u1", "u2"], "item": ["a", "a", "b"],
        ...                    "value": [1.0, 2.0, 5.0]})
        >>> X = Interactions.from_pandas(df, value="value")
        >>> X.history("u1")  # duplicate events are summed
        {'a': 3.0}
        """
        return _build.from_frame(
            cls, df, user=user, item=item, value=value, at=at, feature=feature,
            weights=weights, scaling=scaling, half_life=half_life, now=now, lineage=lineage,
            items=items, at_unit=at_unit, tz=tz,
        )

    @classmethod
    def from_view(
        cls,
        view: Any,
        weights: Mapping[str, float] | None = None,
        *,
        scaling: Scaling = "none",
        half_life: timedelta | None = None,
        now: datetime | np.datetime64 | None = None,
    ) -> Interactions:
        """Build from a consent-scoped view of the store (``store.scope(purpose)``).

        The view's declared catalogue (``view.catalogue()``, when it has one) becomes
        :attr:`catalogue`: its items come first, in declared order, with or without events;
        items seen only in events follow. ``view.privacy_ledger`` (when present) becomes
        :attr:`ledger`, so private fits on these interactions are charged to the store.

        The view is duck-typed: ``view.events()`` returns :class:`persona._columns.EventColumns`
        and ``view.lineage`` (kept as :attr:`lineage`) says what data the view covered.

        Parameters
        ----------
        view
            A scoped view. Only the data the view returns is used; nothing else is read.
        weights
            Feature name → weight. Each event's confidence is ``weight × value``. When given,
            **features not listed are dropped** (so a feature is never used by accident);
            ``None`` weighs every feature in the view 1.0. A weight of 0 also drops it.
        scaling
            ``"none"`` (confidence as summed), ``"log"`` (``log1p``, damps heavy users and
            repeat purchases), ``"row"`` (each person's confidences divided by their own
            largest) or ``"bm25"`` (Okapi BM25 weighting of each person's row, ``K1=100,
            B=0.8`` as in implicit; its idf and average row length read everyone's rows, so
            private fits refuse it).
        half_life
            Optional time decay: an event ``age`` old counts ``0.5 ** (age / half_life)``.
        now
            The reference time for the decay; the latest event time if ``None`` (anyone's
            latest event, so private fits need an explicit ``now``).


        Examples
        --------
        >>> import numpy as np
        >>> from persona._columns import EventColumns
        >>> class View:  # what store.scope(purpose) returns, reduced to what is read here
        ...     lineage = None
        ...     def events(self):
        ...         return EventColumns(
        ...             users=np.array(["u1", "u2"], dtype=object),
        ...             items=np.array(["a", "b"], dtype=object),
        ...             features=("purchases", "views"),
        ...             user=np.array([0, 0, 1], dtype=np.int32),
        ...             item=np.array([0, 1, 1], dtype=np.int32),
        ...             feature=np.array([0, 1, 1], dtype=np.int16),
        ...             value=np.array([1.0, 3.0, 1.0]),
        ...             at=np.array(["2026-11-01", "2026-11-02", "2026-11-03"],
        ...                         dtype="datetime64[us]"))
        >>> X = Interactions.from_view(View(), weights={"purchases": 1.0, "views": 0.2})
        >>> X.history("u1")
        {'a': 1.0, 'b': 0.6000000000000001}
        """
        return _build.from_view(cls, view, weights, scaling=scaling, half_life=half_life,
                                now=now)

    def _rescaled(self, scaling: Scaling) -> Interactions:
        check_scaling(scaling)
        if scaling == "none":
            return self
        m = self.matrix.copy()
        if scaling == "log":
            m.data = np.log1p(m.data)
        elif scaling == "row":
            m = row_scaled(m)
        else:
            m = bm25(m)
        return Interactions(m, self.users, self.items, at=self.at, lineage=self.lineage,
                            features=self.features, catalogue=self.catalogue,
                            preprocessing={**self.preprocessing, "scaling": scaling},
                            ledger=self.ledger)

    # ------------------------------------------------------------------ accessors
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_users, n_items)``."""
        shape: tuple[int, int] = self.matrix.shape
        return shape

    @property
    def n_users(self) -> int:
        """Number of people (rows)."""
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        """Number of items (columns)."""
        return int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        """Number of stored person–item pairs."""
        return int(self.matrix.nnz)

    @property
    def mixes_people(self) -> str | None:
        """Why one person's confidences depend on other people's data, or ``None`` when
        each row was derived from that person's own events alone (with public settings).

        Under differential privacy each person's contribution is bounded *before* anything
        pooled is computed; a transform that reads other rows (BM25's idf and average row
        length, a decay whose reference time is anyone's latest event) lets one person move
        everyone's rows, so private fits refuse it.

        >>> import scipy.sparse as sp
        >>> X = Interactions.from_csr(sp.eye(2, format="csr"), ["a", "b"], ["x", "y"])
        >>> X.mixes_people is None
        True
        >>> Interactions.from_csr(sp.eye(2, format="csr"), ["a", "b"], ["x", "y"],
        ...                       scaling="bm25").mixes_people  # doctest: +ELLIPSIS
        "scaling='bm25' weighs each row with statistics of everyone's rows..."
        """
        p = self.preprocessing
        if p.get("scaling") == "bm25":
            return ("scaling='bm25' weighs each row with statistics of everyone's rows (idf, "
                    "average row length); use scaling='log', 'row' or 'none'")
        if p.get("now") == "latest event":
            return ("half_life with now=None decays from the latest event of anyone; pass a "
                    "public reference time, e.g. now=<the time of the fit>")
        return None

    def on_catalogue(self) -> Interactions:
        """The same interactions restricted to :attr:`catalogue` (columns in catalogue order;
        events on undeclared items are left out). Raises if there is no catalogue.

        >>> import scipy.sparse as sp
        >>> X = Interactions.from_csr(sp.eye(2, format="csr"), ["a", "b"], ["x", "y"])
        >>> X.on_catalogue().items.tolist()
        ['x', 'y']
        """
        if self.catalogue is None:
            raise ValidationError(
                "these interactions have no declared catalogue; declare the items with "
                "store.define_items(...) or pass items= to Interactions.from_pandas"
            )
        if len(self.catalogue) == len(self.items) and np.array_equal(self.catalogue, self.items):
            return self
        col = {name: k for k, name in enumerate(self.items.tolist())}
        cols = np.fromiter(map(col.__getitem__, self.catalogue.tolist()), np.int64,
                           len(self.catalogue))
        m = self.matrix[:, cols].tocsr()
        m.sort_indices()
        at = None
        if self.at is not None:
            times = sp.csr_matrix(
                (self.at.view(np.int64).astype(np.float64) + 1.0, self.matrix.indices,
                 self.matrix.indptr), shape=self.matrix.shape)[:, cols].tocsr()
            times.sort_indices()
            at = (times.data - 1.0).astype(np.int64).view("datetime64[us]")
        return Interactions(m, self.users, self.catalogue, at=at, lineage=self.lineage,
                            features=self.features, catalogue=self.catalogue,
                            preprocessing=self.preprocessing, ledger=self.ledger)

    def user_index(self, user: str | int) -> int:
        """Row of ``user`` (a str, or an int standing for its decimal string); raises
        :class:`~persona.errors.UnknownUserError` if absent."""
        index = self._user_index
        if index is None:
            index = self._user_index = {u: k for k, u in enumerate(self.users)}
        found = index.get(user) if isinstance(user, str) else None
        if found is not None:
            return found
        key = check_id(user, "user")  # an int is its decimal string; NFC
        try:
            return index[key]
        except KeyError:
            raise UnknownUserError(f"{user!r} has no events in these interactions") from None

    def history(self, user: str | int) -> dict[str, float]:
        """The person's items and confidences, as a dict."""
        r = self.user_index(user)
        a, b = self.matrix.indptr[r], self.matrix.indptr[r + 1]
        return {
            str(self.items[j]): float(c)
            for j, c in zip(self.matrix.indices[a:b], self.matrix.data[a:b], strict=True)
        }

    def with_matrix(self, matrix: sp.csr_matrix, at: np.ndarray | None = None) -> Interactions:
        """Same people, items, catalogue and lineage, other confidences (used by splits)."""
        return Interactions(matrix, self.users, self.items, at=at, lineage=self.lineage,
                            features=self.features, catalogue=self.catalogue,
                            preprocessing=self.preprocessing, ledger=self.ledger)

    # ------------------------------------------------------------------ tables out
    def to_pandas(self) -> Any:
        """The stored entries as a tidy ``pandas.DataFrame``, one row per person–item pair
        (in matrix order: by row, then column). Needs pandas (``pip install
        'persona[pandas]'``).

        ==========  ==========================  ==========================================
        column      dtype                       value
        ==========  ==========================  ==========================================
        ``user``    ``category``                the person; categories: :attr:`users`, in
                                                row order (people without entries too)
        ``item``    ``category``                the item; categories: :attr:`items`
        ``value``   ``float64``                 the confidence (after weights and scaling)
        ``at``      ``datetime64[us, UTC]``     the pair's latest event time (only when
                                                :attr:`at` is set)
        ==========  ==========================  ==========================================

        ``Interactions.from_pandas(X.to_pandas(), value="value", at="at")`` (``at`` when
        there is one; ``items=X.catalogue`` to keep the catalogue) gives ``X`` back: the
        same people, items, confidences and times. The lineage, feature names and
        preprocessing are not in the frame.

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> X = Interactions.from_csr(sp.csr_matrix([[1.0, 0.0], [0.0, 2.5]]),
        ...                           ["u1", "u2"], ["a", "b"])
        >>> X.to_pandas()
          user item  value
        0   u1    a    1.0
        1   u2    b    2.5
        >>> Y = Interactions.from_pandas(X.to_pandas(), value="value")
        >>> (Y.matrix != X.matrix).nnz, Y.users.tolist() == X.users.tolist()
        (0, True)
        """
        return _frames.to_pandas(self._columns())

    def to_arrow(self) -> Any:
        """:meth:`to_pandas` as a ``pyarrow.Table`` (``user``, ``item``:
        ``dictionary<int32, string>``; ``value``: ``double``; ``at``:
        ``timestamp[us, tz=UTC]``). Needs pyarrow (``pip install 'persona[arrow]'``)."""
        return _frames.to_arrow(self._columns())

    def _columns(self) -> dict[str, _frames.Column]:
        Column = _frames.Column
        m = self.matrix
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        cols = {
            "user": Column("codes", rows, self.users),
            "item": Column("codes", m.indices, self.items),
            "value": Column("float", m.data),
        }
        if self.at is not None:
            cols["at"] = Column("time", self.at)
        return cols

    def __repr__(self) -> str:
        return f"Interactions({self.n_users} people × {self.n_items} items, {self.nnz} entries)"


