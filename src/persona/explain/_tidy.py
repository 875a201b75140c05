"""Served lists as tidy tables: one row per recommended item (and person, for a batch).

``pd.DataFrame(recs)`` on a list of :class:`~persona.schema.Recommendation` gives each
model's (field, value) pairs; :meth:`Recommendations.to_pandas` and
:func:`recommendations_to_pandas` give one row per item with typed columns instead:

==========  =====================  ===================================================
column      dtype                  value
==========  =====================  ===================================================
``user``    ids as given           the person (batches only)
``rank``    ``int64``              the item's position in the list, from 1
``item``    ids as given           the item id
``score``   ``float64``            the served score
``label``   string                 the item's title from the explanation (missing
                                   without one)
``kind``    ``category``           the explanation's kind: ``decomposition``,
                                   ``justification``, ``non_personalised``, ``curated``
``model``   string                 the recommender's class name
``text``    string                 the explanation's plain-language text
==========  =====================  ===================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, get_args

import numpy as np

from persona import _frames
from persona.errors import ValidationError
from persona.schema import ExplanationKind, Recommendation, check_id_list, unread

__all__ = ["list_columns", "recommendations_to_pandas"]

KINDS: tuple[str, ...] = get_args(ExplanationKind)
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}


def list_columns(recs: Sequence[Recommendation], *, text: bool = True,
                 what: str = "recs") -> dict[str, _frames.Column]:
    """The columns of a served list (``text=False`` leaves the text column out: rendering
    it is the slow part)."""
    if not isinstance(text, bool):
        raise ValidationError(
            f"text must be True or False, not {text!r}",
            errors=[{"row": None, "field": "text", "message": "not a bool", "input": text}],
        )
    Column = _frames.Column
    ranks, items, scores, labels, kinds, models, texts = [], [], [], [], [], [], []
    for r in recs:
        if not isinstance(r, Recommendation):
            raise ValidationError(
                f"{what} must hold Recommendation objects (what recommend returns), not "
                f"{type(r).__name__}",
                errors=[{"row": None, "field": what, "message": "not a Recommendation"}],
            )
        ranks.append(r.rank)
        items.append(r.item)
        scores.append(r.score)
        e = r.__dict__.get("explanation")
        source = None if e is None else unread(e)
        if source is not None:  # served and not read yet: left unbuilt (as shown_items)
            served, k = source
            labels.append(served.label(k))
            kinds.append(_KIND_CODE[served.kind()])
            models.append(served.model_name())
            if text:  # rendered for the whole list at once; the text the item gives
                texts.append(served.texts()[k][1])
            continue
        labels.append(None if e is None else e.label)
        kinds.append(-1 if e is None else _KIND_CODE[e.kind])
        models.append(None if e is None else e.model)
        if text:
            texts.append(None if e is None else e.text)
    cols = {
        "rank": Column("int", np.asarray(ranks, dtype=np.int64)),
        "item": Column("ids", items),
        "score": Column("float", np.asarray(scores, dtype=np.float64)),
        "label": Column("text", labels),
        "kind": Column("codes", np.asarray(kinds, dtype=np.int64), KINDS),
        "model": Column("text", models),
    }
    if text:
        cols["text"] = Column("text", texts)
    return cols


def recommendations_to_pandas(
    batch: Sequence[Sequence[Recommendation]] | Mapping[Any, Sequence[Recommendation]],
    users: Sequence[Any] | None = None,
    *,
    text: bool = True,
) -> Any:
    """The lists of a batch as one tidy ``pandas.DataFrame``: one row per person and
    recommended item, the person in a ``user`` column before the columns of
    :meth:`Recommendations.to_pandas` (see the module doc for their dtypes).

    Parameters
    ----------
    batch
        One list per person, as ``recommend_batch`` returns them (pass ``users`` too), or a
        mapping person → list (``users`` then comes from its keys).
    users
        The people of ``batch``, in order (the ids passed to ``recommend_batch``).
    text
        Include the ``text`` column (rendering every explanation's text is the slow part).

    Notes
    -----
    Needs pandas (``pip install 'persona[pandas]'``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from persona.data import Interactions
    >>> from persona.models import ItemKNN
    >>> X = Interactions.from_csr(sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]])),
    ...                          ["u1", "u2", "u3"], ["boots", "socks", "tent"])
    >>> model = ItemKNN().fit(X)
    >>> users = ["u1", "u3"]
    >>> df = recommendations_to_pandas(model.recommend_batch(users, n=1), users)
    >>> df[["user", "rank", "item", "kind"]]
      user  rank   item           kind
    0   u1     1   tent  decomposition
    1   u3     1  boots  decomposition
    """
    if isinstance(batch, Mapping):
        if users is not None:
            raise ValidationError("pass users= with a list of lists, not with a mapping")
        users, lists = list(batch.keys()), list(batch.values())
    else:
        if isinstance(batch, str | bytes) or not isinstance(batch, Sequence):
            raise ValidationError(
                f"batch must be a list of lists of recommendations, not {type(batch).__name__}"
            )
        lists = list(batch)
        if users is None:
            raise ValidationError(
                "pass users=, the people of the batch in order (the ids given to "
                "recommend_batch), or a mapping person -> list"
            )
        users = check_id_list(users, "users", len(lists))
    flat: list[Recommendation] = []
    who: list[Any] = []
    for user, recs in zip(users, lists, strict=True):
        if isinstance(recs, str | bytes | Recommendation) or not isinstance(recs, Sequence):
            raise ValidationError(
                f"batch must hold one list of Recommendation per person, not "
                f"{type(recs).__name__}"
            )
        flat.extend(recs)
        who.extend([user] * len(recs))
    cols = {"user": _frames.Column("ids", who), **list_columns(flat, text=text, what="batch")}
    return _frames.to_pandas(cols)
