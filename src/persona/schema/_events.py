"""The rules of an event, as data: its fields, which are required, the largest value, how far
ahead of the store's clock a time may be, the fix to suggest for each field, and the column
shapes pydantic validates a batch against. ``persona.store`` applies them at ingest (column
by column, with numpy for what pydantic does not check); they live here so that every part
reads one definition."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, Field, Strict, StringConstraints
from typing_extensions import TypedDict

__all__ = [
    "EVENT_FIELDS",
    "EVENT_FIXES",
    "MAX_EVENT_VALUE",
    "MAX_FUTURE_US",
    "REQUIRED_EVENT_FIELDS",
    "EventBatch",
    "EventBatchWithId",
    "EventId",
    "EventTime",
    "EventValue",
    "TimedEventBatch",
    "TimedEventBatchWithId",
]

EVENT_FIELDS = ("user", "item", "feature", "value", "at", "id")
"""The fields an event may have, in order."""
REQUIRED_EVENT_FIELDS = ("user", "item", "feature", "at")
"""The fields every event must have (``value`` defaults to 1.0, ``id`` is optional)."""
MAX_FUTURE_US = 5 * 60 * 1_000_000
"""How far (µs) an event may lie ahead of the store's clock: clocks drift, five minutes is
tolerated."""
MAX_EVENT_VALUE = 1e9
"""The largest event value any feature accepts. Values are confidences (counts, amounts,
seconds): 0 to 1e9 holds every real one, and larger ones overflow the models' float32
arithmetic (an ALS fit on one value of 1e12 gives NaN factors)."""

EVENT_FIXES = {
    "user": "give each event the person's id: a non-empty string without control characters, "
    "e.g. 'u1', or an int, e.g. 170, which is the same id as '170'; never a float or a bool "
    "(a pandas column of integer ids turns float when some are missing: drop those rows "
    "and convert it with .astype('int64'), or read it as dtype 'Int64')",
    "item": "give each event the item's id: a non-empty string without control characters, "
    "e.g. 'sku-9', or an int, e.g. 170, which is the same id as '170'; never a float or a "
    "bool (a pandas column of integer ids turns float when some are missing: drop those "
    "rows and convert it with .astype('int64'), or read it as dtype 'Int64')",
    "feature": "use a feature defined with store.define_feature(...)",
    "value": "use a finite number from 0 to 1e9 (int or float), e.g. 1.0",
    "at": "use an ISO 8601 time with a time zone, e.g. '2026-11-01T10:00:00Z', or a "
    "timezone-aware datetime; numbers need ingest(..., at_unit='s'), 'ms', 'us' or 'ns' "
    "(what they count since 1970-01-01 UTC); times without a zone need ingest(..., "
    "tz='UTC'), or the zone they were written in, e.g. tz='Europe/London'",
    "id": "an event id is a non-empty str, or an int (the same id as its decimal string), "
          "never a bool or a float; or leave it out",
}


EventId = Annotated[str, Strict(), StringConstraints(min_length=1, max_length=512, pattern=r"\S")]
EventValue = Annotated[float, Strict(), Field(allow_inf_nan=False, ge=0.0, le=MAX_EVENT_VALUE)]
EventTime = AwareDatetime


class EventBatch(TypedDict):
    """A batch's columns, times validated apart (plain UTC strings are read faster)."""

    user: list[Any]  # persona's id rule (check_ids) applies after pydantic: str or int
    item: list[Any]
    feature: list[Annotated[str, Strict()]]
    value: list[EventValue]


class EventBatchWithId(EventBatch):
    """:class:`EventBatch` with event ids."""

    id: list[EventId | None]


class TimedEventBatch(EventBatch):
    """:class:`EventBatch` with its times, validated by pydantic."""

    at: list[EventTime]


class TimedEventBatchWithId(TimedEventBatch):
    """:class:`TimedEventBatch` with event ids."""

    id: list[EventId | None]
