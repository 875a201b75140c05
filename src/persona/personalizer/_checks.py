"""The Personalizer's argument rules: settings of the right kind, people's ids, list
lengths and past moments, refused before anything is read or written."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from persona.errors import ValidationError
from persona.privacy import DP
from persona.schema import check_id

if TYPE_CHECKING:
    from persona.models import Recommender

__all__ = [
    "MAX_N", "check_at", "check_fallback_share", "check_n", "check_privacy", "check_record_shown",
    "check_refresh", "check_scaling", "check_settings", "check_user",
]

MAX_N = 1000


def check_privacy(model: Recommender, privacy: DP | None) -> None:
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


def check_settings(store: Any, purpose: Any, privacy: Any, half_life: Any) -> None:
    """Refuse settings of the wrong kind before anything is read or written."""
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


def check_record_shown(record_shown: Any) -> bool:
    """``record_shown`` is a bool."""
    if not isinstance(record_shown, bool):
        raise ValidationError(
            f"record_shown must be True or False, not {record_shown!r}",
            errors=[{"row": None, "field": "record_shown", "message": "not a bool"}],
        )
    return record_shown


def check_fallback_share(fallback_share: Any) -> float:
    """``fallback_share`` is a number strictly between 0 and 1."""
    if (isinstance(fallback_share, bool) or not isinstance(fallback_share, int | float)
            or not 0.0 < fallback_share < 1.0):
        raise ValidationError(
            f"fallback_share must be between 0 and 1 (exclusive), not {fallback_share}",
            errors=[{"row": None, "field": "fallback_share", "message": "out of range"}],
        )
    return float(fallback_share)


def check_scaling(scaling: str, privacy: DP | None) -> None:
    """BM25 mixes people's rows, so it is refused with privacy."""
    if privacy is not None and scaling == "bm25":
        raise ValidationError(
            "scaling='bm25' weighs each person's row with statistics of everyone's rows "
            "(idf, average length), so one person would move everyone's data past the "
            "privacy bound; with privacy= use scaling='log', 'row' or 'none'",
            errors=[{"row": None, "field": "scaling", "message": "mixes people"}],
        )


def check_at(at: Any) -> datetime:
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


def check_user(user: Any) -> str:
    """The person's id in NFC, by persona's one id rule (:func:`persona.schema.check_id`)."""
    return check_id(user, "user")


def check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_N:
        raise ValidationError(
            f"field 'n': {n!r} is out of range; ask for 1 to {MAX_N} items",
            errors=[{"row": None, "field": "n", "message": "out of range"}],
        )
    return int(n)


def check_refresh(
    refresh_every: Any, refresh_clock: Any,
) -> tuple[float, Callable[[], float]]:
    """``refresh_every``: a finite number of seconds, 0 or more (not a bool); and
    ``refresh_clock``: ``None`` (``time.monotonic``) or a callable returning seconds."""
    if (isinstance(refresh_every, bool) or not isinstance(refresh_every, int | float)
            or not math.isfinite(refresh_every) or refresh_every < 0):
        raise ValidationError(
            f"refresh_every must be a number of seconds, 0 or more (how often to check the "
            f"store for another worker's curation or model), not {refresh_every!r}; e.g. "
            "refresh_every=5.0, or refresh_every=0 to check on every request",
            errors=[{"row": None, "field": "refresh_every", "message": "invalid"}],
        )
    if refresh_clock is not None and not callable(refresh_clock):
        raise ValidationError(
            f"refresh_clock must be None or a function returning seconds (such as "
            f"time.monotonic), not {refresh_clock!r}",
            errors=[{"row": None, "field": "refresh_clock", "message": "not callable"}],
        )
    return float(refresh_every), refresh_clock or time.monotonic
