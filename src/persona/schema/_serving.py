"""Value types of the serving state every worker shares through the store (issue 21): the
merchandisers' :class:`Curation` of a purpose, with the rule its input follows
(:func:`check_curation`), and one published model version of the registry
(:class:`ModelVersion`). Neither holds anything about a person: items, a reason, who
curated (a member of staff), folders and checksums."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from persona.errors import ValidationError
from persona.schema._ids import check_id

__all__ = ["Curation", "ModelVersion", "check_curation", "check_version"]


class Curation(BaseModel):
    """Choices made by people (merchandisers), applied on every path.

    ``pin`` maps items to 1-based positions; ``block`` lists items that never appear.
    Held in the store per purpose (``store.curation(purpose)``), so every worker serving
    the purpose applies the same one.
    """

    model_config = ConfigDict(frozen=True)

    pin: dict[str, int] = Field(default_factory=dict)
    block: frozenset[str] = frozenset()
    reason: str = ""
    """Why, in plain words, shown to people: "chosen by our team: <reason>"."""
    by: str | None = None
    at: datetime | None = None
    version: int = 0
    """The store's count of curations of the purpose, this one included (0: none was
    set in the store; a curation read from an older saved folder)."""


class ModelVersion(BaseModel):
    """One published version of a purpose's model in the store's registry."""

    model_config = ConfigDict(frozen=True)

    purpose: str
    version: str
    """The version id: the published Personalizer's ``model_version_``."""
    folder: str
    """The absolute path of the folder :meth:`Personalizer.save` wrote."""
    sha256: str
    """The checksum of the folder's ``personalizer.json`` (its ``sha256`` field), which
    binds every part of the folder; a folder whose checksum differs is not loaded."""
    model_class: str
    published_at: datetime
    live: bool
    """Whether this is the version every worker serves now."""


def check_curation(
    pin: Any, block: Any, reason: Any, by: Any,
) -> tuple[dict[str, int], frozenset[str], str]:
    """The pins (item → position), the block set and the stripped reason of a curation,
    or a :class:`~persona.ValidationError` saying how to fix them. ``pin`` is a list
    (positions 1, 2, … in order) or ``{item: position}``; an item may not be both pinned
    and blocked."""
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
    blocked = frozenset(check_id(i, "block") for i in block)
    clash = blocked & checked.keys()
    if clash:
        raise ValidationError(
            f"{sorted(clash)} are both pinned and blocked; choose one",
            errors=[{"row": None, "field": "pin", "message": "also blocked"}],
        )
    return checked, blocked, reason.strip()


def check_version(version: Any) -> str:
    """A model version id (a non-empty str), or a ValidationError saying where to find
    one."""
    if not isinstance(version, str) or not version.strip():
        raise ValidationError(
            f"version must be a published version id (a str), not {version!r}; list them "
            "with store.model_versions(purpose)",
            errors=[{"row": None, "field": "version", "message": "not a version id"}],
        )
    return version
