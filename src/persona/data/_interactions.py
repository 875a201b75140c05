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

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from persona import _frames
from persona._columns import EventColumns
from persona._times import check_unit, check_zone, pandas_times_us
from persona.errors import UnknownUserError, ValidationError
from persona.schema import ID_RULE, check_id, check_ids

__all__ = ["Interactions", "Scaling"]

Scaling = Literal["none", "log", "row", "bm25"]
_SCALINGS = ("none", "log", "row", "bm25")


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
        users_arr = _ids(users, "users")
        items_arr = _ids(items, "items")
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
            catalogue = _ids(catalogue, "catalogue")
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
        unit = None if at_unit is None else check_unit(at_unit)
        zone = None if tz is None else check_zone(tz)
        if at is None and (unit is not None or zone is not None):
            raise ValidationError(
                f"{'at_unit' if unit is not None else 'tz'} says how to read event times, but "
                "no time column is given; pass at=<the column of times>"
            )
        missing = [c for c in (user, item, value, at, feature) if c is not None and c not in df]
        if missing:
            raise ValidationError(
                f"column(s) {missing} not in the frame; it has {list(df.columns)}"
            )
        if df[user].isna().any() or df[item].isna().any():
            raise ValidationError(
                "some events have no person or item id (e.g. guest checkouts); "
                "drop those rows first, e.g. df.dropna(subset=[user, item])"
            )
        u_codes, users = _id_codes(df[user], user)
        i_codes, seen = _id_codes(df[item], item)
        catalogue = None
        if items is not None:
            catalogue = _ids(_id_list(items, "items"), "items")
            col = {name: k for k, name in enumerate(catalogue.tolist())}
            used = seen[np.unique(i_codes)].tolist()  # (a categorical's unused are no events)
            missing_items = [i for i in used if i not in col]
            if missing_items:
                raise ValidationError(
                    f"{len(missing_items)} item(s) of the events are not in 'items' (e.g. "
                    f"{missing_items[0]!r}); add them to the catalogue or drop their events"
                )
            i_codes = np.fromiter((col.get(i, -1) for i in seen.tolist()), np.int64,
                                  len(seen))[i_codes]
            seen = catalogue
        n = len(df)
        vals = (
            np.ones(n) if value is None else np.asarray(df[value].to_numpy(), dtype=np.float64)
        )
        times = None if at is None else pandas_times_us(df[at], at, unit, zone)
        if feature is not None:
            f_codes, features = _factorize(df[feature].astype(str).to_numpy())
        else:
            f_codes, features = np.zeros(n, dtype=np.int64), np.array(["event"], dtype=object)
            if weights is not None:
                raise ValidationError("'weights' needs a 'feature' column to apply to")
        return cls._from_codes(
            u_codes, i_codes, f_codes, vals, times, users, seen, tuple(features),
            weights=weights, scaling=scaling, half_life=half_life, now=now, lineage=lineage,
            catalogue=catalogue,
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
        declared = getattr(view, "catalogue", None)
        catalogue = None if declared is None else list(declared())
        cols = view.events()
        if not isinstance(cols, EventColumns):
            raise ValidationError(
                f"view.events() returned {type(cols).__name__}, expected EventColumns"
            )
        item_codes = np.asarray(cols.item, dtype=np.int64)
        items = np.asarray(cols.items, dtype=object)
        if catalogue:
            col = {name: k for k, name in enumerate(catalogue)}
            extra = [i for i in items.tolist() if i not in col]
            for name in extra:
                col[name] = len(col)
            remap = np.fromiter(map(col.__getitem__, items.tolist()), np.int64, len(items))
            item_codes = remap[item_codes]
            items = np.asarray(catalogue + extra, dtype=object)
        return cls._from_codes(
            np.asarray(cols.user, dtype=np.int64),
            item_codes,
            np.asarray(cols.feature, dtype=np.int64),
            np.asarray(cols.value, dtype=np.float64),
            np.asarray(cols.at, dtype="datetime64[us]"),
            np.asarray(cols.users, dtype=object),
            items,
            tuple(cols.features),
            weights=weights, scaling=scaling, half_life=half_life, now=now,
            lineage=getattr(view, "lineage", None),
            catalogue=catalogue or None,
            ledger=getattr(view, "privacy_ledger", None),
        )

    @classmethod
    def _from_codes(
        cls,
        u: np.ndarray,
        i: np.ndarray,
        f: np.ndarray,
        value: np.ndarray,
        at: np.ndarray | None,
        users: np.ndarray,
        items: np.ndarray,
        features: tuple[str, ...],
        *,
        weights: Mapping[str, float] | None,
        scaling: Scaling,
        half_life: timedelta | None,
        now: datetime | np.datetime64 | None,
        lineage: Any,
        catalogue: Sequence[str] | np.ndarray | None = None,
        ledger: Any = None,
    ) -> Interactions:
        if scaling not in _SCALINGS:
            raise ValidationError(f"scaling must be one of {_SCALINGS}, not {scaling!r}")
        if not np.all(np.isfinite(value)):
            bad = int(np.flatnonzero(~np.isfinite(value))[0])
            raise ValidationError(
                f"event {bad} has a non-finite value; drop it or give it a number",
                errors=[{"row": bad, "field": "value", "message": "not finite",
                         "input": float(value[bad])}],
            )
        if value.size and value.min() < 0:
            bad = int(np.flatnonzero(value < 0)[0])
            raise ValidationError(
                f"event {bad} has a negative value ({value[bad]}); confidences must be >= 0 "
                "(model returns and cancellations by removing the original events)",
                errors=[{"row": bad, "field": "value", "message": "negative",
                         "input": float(value[bad])}],
            )
        # feature weights
        if weights is None:
            w = np.ones(len(features))
            used = features
        else:
            for name, wt in weights.items():
                if not np.isfinite(wt) or wt < 0:
                    raise ValidationError(f"weight of {name!r} must be finite and >= 0, not {wt}")
            w = np.array([float(weights.get(name, 0.0)) for name in features])
            used = tuple(name for name in features if weights.get(name, 0.0) > 0)
        conf = value * w[f] if len(features) else value
        preprocessing: dict[str, Any] = {"scaling": scaling}
        if half_life is not None:
            if not isinstance(half_life, timedelta):
                raise ValidationError(
                    f"half_life must be a datetime.timedelta, not {type(half_life).__name__}"
                )
            if at is None:
                raise ValidationError("half_life needs event times; pass 'at'")
            seconds = half_life.total_seconds()
            if seconds <= 0:
                raise ValidationError("half_life must be positive")
            preprocessing["half_life_s"] = seconds
            preprocessing["now"] = "latest event" if now is None else "given"
            ref = at.max() if now is None else _as_time(now)
            age = (ref - at).astype("timedelta64[us]").astype(np.float64) / 1e6
            conf = conf * np.power(0.5, np.maximum(age, 0.0) / seconds)
        keep = conf > 0
        u, i, conf = u[keep], i[keep], conf[keep]
        if at is not None:
            at = at[keep]
        # canonical CSR with duplicates summed and the latest time per pair
        order = np.lexsort((i, u))
        u, i, conf = u[order], i[order], conf[order]
        n_users, n_items = len(users), len(items)
        if u.size:
            key = u * n_items + i
            starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            data = np.add.reduceat(conf, starts)
            cols = i[starts]
            rows = u[starts]
            last = None if at is None else np.maximum.reduceat(at[order].view(np.int64), starts)
        else:
            data, cols, rows, last = conf, i, u, (None if at is None else at.view(np.int64))
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
        m = sp.csr_matrix((data, cols.astype(np.int32), indptr), shape=(n_users, n_items))
        m.has_canonical_format = True
        X = cls(
            m, users, items,
            at=None if last is None else last.view("datetime64[us]"),
            lineage=lineage, features=used, catalogue=catalogue,
            preprocessing=preprocessing, ledger=ledger,
        )
        return X._rescaled(scaling)

    def _rescaled(self, scaling: Scaling) -> Interactions:
        if scaling not in _SCALINGS:
            raise ValidationError(f"scaling must be one of {_SCALINGS}, not {scaling!r}")
        if scaling == "none":
            return self
        m = self.matrix.copy()
        if scaling == "log":
            m.data = np.log1p(m.data)
        elif scaling == "row":
            m = _row_scaled(m)
        else:
            m = _bm25(m)
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


def _ids(values: Sequence[str] | np.ndarray, name: str) -> np.ndarray:
    # persona's one id rule: ints as their decimal strings, strs in NFC, so two spellings
    # of one id are one id (and collide)
    listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
    arr = np.asarray(check_ids(listed, name), dtype=object)
    if len(set(arr.tolist())) != len(arr):
        raise ValidationError(
            f"{name} ids must be unique (compared in Unicode NFC); merge the duplicates"
        )
    return arr


def _id_list(values: Any, name: str) -> list[str]:
    if isinstance(values, str | bytes) or not hasattr(values, "__iter__"):
        raise ValidationError(f"{name} must be a list of ids, not {type(values).__name__}")
    return check_ids(values.tolist() if isinstance(values, np.ndarray) else list(values), name)


def _id_column(series: Any, name: str) -> np.ndarray:
    """A pandas column of ids by persona's id rule (:data:`persona.schema.ID_RULE`): an
    integer column becomes its decimal strings, a column of str (or str and int) is
    checked id by id; float and bool columns are refused with the fix."""
    kind = getattr(series.dtype, "kind", "O")
    if kind == "b":
        raise ValidationError(
            f"column {name!r} holds bools, and a bool is never an id ({ID_RULE}); "
            "use the column that names the person or item",
            errors=[{"row": None, "field": name, "message": "bool ids", "input": None}],
        )
    if kind == "f" and len(series):
        check_id(series.iloc[0], name)  # raises: a float is not an id, with the fix
    if kind in "iu":
        ids: np.ndarray = series.astype(str).to_numpy(dtype=object)
        return ids
    return np.asarray(check_ids(series.tolist(), name), dtype=object)


def _as_time(value: Any, name: str = "now") -> np.datetime64:
    """A reference time as ``datetime64[us]`` in UTC (aware datetimes and ISO strings with
    an offset are converted; naive ones are read in UTC, the zone of :attr:`at`)."""
    if value is None or isinstance(value, bool | int | float | np.number):
        raise ValidationError(  # a number counts in no stated unit (the time rule)
            f"{name} must be a time (a datetime, or an ISO 8601 string such as "
            f"'2026-01-01T00:00:00Z'), not {value!r}; for a unix time in seconds write "
            f"datetime.fromtimestamp(t, UTC)")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # else numpy's reading ('2026-01') is kept
            value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    try:
        out = np.datetime64(value, "us")
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be a time, not {value!r} ({exc})") from None
    if np.isnat(out):
        raise ValidationError(f"{name} must be a time, not {value!r} (not a time)")
    return out


def _row_scaled(m: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its own largest value (reads that person's row only)."""
    m = m.copy()
    if m.nnz:
        counts = np.diff(m.indptr)
        nonempty = counts > 0
        peak = np.zeros(m.shape[0])
        peak[nonempty] = np.maximum.reduceat(m.data, m.indptr[:-1][nonempty])
        m.data = m.data / np.repeat(peak, counts)
    return m


def _id_codes(column: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Codes and ids of a frame's id column, by the id rule (:func:`_id_column`): a
    categorical column's categories, in their order and unused ones too (people or items
    without events, as :meth:`Interactions.to_pandas` writes them), else the ids in order
    of first appearance."""
    if getattr(column.dtype, "name", None) == "category":
        codes = np.asarray(column.cat.codes.to_numpy(), dtype=np.int64)
        return codes, _id_column(column.cat.categories.to_series(), name)
    return _factorize(_id_column(column, name))


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes and uniques in order of first appearance (stable, no pandas needed)."""
    uniques, first, codes = np.unique(values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes].astype(np.int64), np.asarray(uniques[order], dtype=object)


def _bm25(m: sp.csr_matrix, k1: float = 100.0, b: float = 0.8) -> sp.csr_matrix:
    """Okapi BM25 weighting of each row (as ``implicit.nearest_neighbours.bm25_weight``)."""
    m = m.copy()
    n = m.shape[0]
    df = np.bincount(m.indices, minlength=m.shape[1])
    idf = np.log(n) - np.log1p(df)
    row_sums = np.asarray(m.sum(axis=1)).ravel()
    avg = row_sums.mean() if n else 1.0
    length_norm = (1.0 - b) + b * row_sums / (avg or 1.0)
    rows = np.repeat(np.arange(n), np.diff(m.indptr))
    m.data = m.data * (k1 + 1.0) / (k1 * length_norm[rows] + m.data) * idf[m.indices]
    m.data = np.maximum(m.data, 0.0)  # zeros are dropped by Interactions (with their times)
    return m
