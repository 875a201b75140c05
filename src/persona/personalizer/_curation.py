"""Curation: items people (merchandisers) pin to positions or block, with a plain reason,
and how pinned items are merged into a served list. The curation of a purpose is held in
the store (``store.set_curation``), so every worker serving it applies the same one; a
Personalizer picks a change made elsewhere up within its ``refresh_every`` (see
:mod:`._shared`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from persona.errors import ValidationError
from persona.explain import curated_explanation
from persona.personalizer._state import block as block_state
from persona.schema import Curation, Recommendation, check_curation

if TYPE_CHECKING:
    from persona.personalizer._personalizer import Personalizer

__all__ = ["Curation", "apply", "curate", "merge", "pinned"]


def curate(
    p: Personalizer,
    pin: Sequence[str] | Mapping[str, int],
    block: Iterable[str],
    reason: str,
    by: str | None,
) -> Curation:
    """:meth:`Personalizer.curate`: check, write to the store (which records it in the
    audit log and shares it with every worker), apply here at once."""
    pins, blocked, why = check_curation(pin, block, reason, by)
    unknown = _unservable(p, pins)
    if unknown:
        raise ValidationError(
            f"cannot pin {sorted(unknown)[:5]}: not in the store's catalogue nor in the "
            "model; declare them first with store.define_items([...])",
            errors=[{"row": None, "field": "pin", "message": "unknown item"}],
        )
    curation = p.store.set_curation(p.purpose, pin=pins, block=blocked, reason=why, by=by)
    apply(p, curation)
    return curation


def apply(p: Personalizer, curation: Curation) -> None:
    """Serve ``curation`` from now on: swapped in whole, with the block set given to the
    models now serving (they carry it themselves)."""
    with p._swap_lock:
        if curation.version and curation.version < p._curation.version:
            return  # a newer one was applied meanwhile
        p._curation = curation
        p._seen_curation = max(p._seen_curation, curation.version)
        state = p._state
        if state is not None:
            with state.lock.write():
                block_state(state, curation.block)


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
