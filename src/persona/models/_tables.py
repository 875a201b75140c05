"""Batch results as a tidy table: :meth:`RecommendationArrays.to_pandas` and ``to_arrow``.

One row per person and recommended item, in batch order then rank (lists shorter than
``n`` leave no padding rows):

==========  =============  ==========================================================
column      dtype          value
==========  =============  ==========================================================
``user``    ids as given   the person
``rank``    ``int64``      the item's position in their list, from 1
``item``    ids as given   the item id
``score``   ``float64``    the served score
==========  =============  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from persona import _frames
from persona.errors import ValidationError
from persona.schema import check_id_list

__all__ = ["arrays_columns"]


def arrays_columns(
    items: np.ndarray, scores: np.ndarray, lengths: np.ndarray,
    known: np.ndarray | None, users: Sequence[Any] | None,
) -> dict[str, _frames.Column]:
    """The columns of a batch (``users``: ids given by the caller; else ``known``, the ids
    the batch was scored for)."""
    b = len(lengths)
    if users is not None:
        who: list[Any] = check_id_list(users, "users")
    elif known is not None:
        who = list(known)
    else:
        raise ValidationError(
            "these arrays do not say whom they are for; pass users=, the people of the "
            "batch in order",
            errors=[{"row": None, "field": "users", "message": "missing"}],
        )
    if len(who) != b:
        raise ValidationError(
            f"{len(who)} users for {b} people's lists: pass one id per person, in order",
            errors=[{"row": None, "field": "users", "message": "length differs"}],
        )
    lengths = np.asarray(lengths, dtype=np.int64)
    n = items.shape[1] if items.ndim == 2 else 0
    keep = np.arange(n)[None, :] < lengths[:, None]  # (b, n): the filled positions
    person = np.repeat(np.arange(b), lengths)
    ranks = np.nonzero(keep)[1] + 1
    Column = _frames.Column
    return {
        "user": Column("ids", _objects(who)[person]),
        "rank": Column("int", ranks.astype(np.int64)),
        "item": Column("ids", items[keep]),
        "score": Column("float", np.asarray(scores, dtype=np.float64)[keep]),
    }


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
