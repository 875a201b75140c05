"""Curation: items people (merchandisers) pin to positions or block, with a plain reason,
and how pinned items are merged into a served list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from persona.errors import ValidationError
from persona.explain import curated_explanation
from persona.personalizer._state import block as block_state
from persona.schema import Recommendation, check_id

if TYPE_CHECKING:
    from persona.personalizer._personalizer import Personalizer

__all__ = ["Curation", "curate", "merge", "pinned"]


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


def _checked(
    pin: Sequence[str] | Mapping[str, int], block: Iterable[str], reason: str, by: str | None,
) -> tuple[dict[str, int], frozenset[str]]:
    """The pins (item → position) and the block set, or a ValidationError saying why not."""
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
    return checked, frozenset(check_id(i, "block") for i in block)


def curate(
    p: Personalizer,
    pin: Sequence[str] | Mapping[str, int],
    block: Iterable[str],
    reason: str,
    by: str | None,
) -> Curation:
    """:meth:`Personalizer.curate`: check, record in the audit log, apply at once."""
    pins, blocked = _checked(pin, block, reason, by)
    unknown = _unservable(p, pins)
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
    p.store.record(
        "app.curation",
        {
            "pin": pins,
            "block": sorted(blocked),
            "reason": curation.reason,
            "by": by,
            "purpose": p.purpose,
        },
    )
    with p._swap_lock:  # the models now serving carry the block set themselves
        p._curation = curation
        state = p._state
        if state is not None:
            with state.lock.write():
                block_state(state, curation.block)
    return curation


def _unservable(p: Personalizer, items: Iterable[str]) -> set[str]:
    """Items that are neither in the serving model nor declared in the store."""
    state = p._state
    missing = {i for i in items if state is None or not state.model.has_item(i)}
    return missing - set(p.store.catalogue()) if missing else set()


def pinned(
    labels: Mapping[str, str], curation: Curation, not_interested: set[str], n: int,
) -> list[tuple[int, Recommendation]]:
    """The pinned items within the first ``n`` positions, each with its position and the
    curated explanation (people's reason), but not those the person is not interested in."""
    out = []
    for item, pos in sorted(curation.pin.items(), key=lambda kv: kv[1]):
        if pos > n or item in not_interested or item in curation.block:
            continue
        label = labels.get(item, item)
        e = curated_explanation(item, label, curation.reason, rank=pos)
        out.append((pos, Recommendation.trusted(item, 0.0, pos, e)))
    return out


def merge(
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
