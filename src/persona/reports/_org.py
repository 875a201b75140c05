"""The organisation's own details for the GDPR reports: controller, data-protection officer,
recipients, transfers to third countries, security measures. Validated strictly: a string
is never taken as a list, a number never as a name; a mistake raises persona's
:class:`~persona.ValidationError` naming the field and the fix."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter
from pydantic import ValidationError as PydanticError

from persona.errors import ValidationError

_M = TypeVar("_M", bound=BaseModel)

__all__ = ["SAFEGUARDS", "Contact", "Organisation", "Recipient", "Transfer"]

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Contact(_Strict):
    """A name and how to reach them (e-mail, postal address, web form or phone)."""

    name: Text
    contact: Text


class Recipient(_Strict):
    """Someone outside the controller who receives personal data."""

    name: Text
    role: Text
    """What they do with it, e.g. ``"processor: hosting"`` or ``"third party: advertising"``."""
    purposes: tuple[Text, ...] = ()
    """The purposes whose data they receive (defined in the store); empty: every purpose."""
    country: Text | None = None


#: The safeguards of a transfer to a third country (GDPR Art. 45-49), in words.
SAFEGUARDS = {
    "adequacy_decision": "adequacy decision of the European Commission (Art. 45)",
    "standard_contractual_clauses": "standard contractual clauses (Art. 46(2)(c))",
    "binding_corporate_rules": "binding corporate rules (Art. 47)",
    "code_of_conduct": "approved code of conduct (Art. 46(2)(e))",
    "certification": "approved certification (Art. 46(2)(f))",
    "derogation": "derogation for a specific situation (Art. 49)",
}
Safeguard = Literal["adequacy_decision", "standard_contractual_clauses",
                    "binding_corporate_rules", "code_of_conduct", "certification",
                    "derogation"]


class Transfer(_Strict):
    """A transfer of personal data to a third country or an international organisation."""

    recipient: Text
    country: Text
    safeguard: Safeguard
    documents: Text | None = None
    """Where a copy of the safeguards can be obtained."""

    @property
    def safeguard_words(self) -> str:
        return SAFEGUARDS[self.safeguard]


#: What the report functions accept for a contact, a recipient and a transfer: the value
#: itself or its fields as a mapping (validated strictly, see :func:`checked`).
ContactLike = Contact | Mapping[str, Any]
RecipientLike = Recipient | Mapping[str, Any]
TransferLike = Transfer | Mapping[str, Any]


class Organisation(_Strict):
    """All of the organisation's details, e.g. from a JSON or TOML file
    (:meth:`load`); :meth:`arguments` gives them to a report function."""

    controller: Contact | None = None
    dpo: Contact | None = None
    representative: Contact | None = None
    supervisory_authority: Contact | None = None
    recipients: tuple[Recipient, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    security_measures: tuple[Text, ...] = ()
    data_subjects: tuple[Text, ...] = ()
    data_sources: dict[Text, Text] = Field(default_factory=dict)
    """Feature name → where that kind of data comes from, for the Art. 15 report."""

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Organisation:
        """The details from a dict (lists welcome), strictly checked; persona's
        :class:`~persona.ValidationError` on a mistake."""
        return checked(cls, obj, "")

    @classmethod
    def load(cls, path: str | Path) -> Organisation:
        """Read ``path`` (``.json`` or ``.toml``)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8-sig")
        try:
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ValidationError(
                f"{path} is not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: "
                f"{exc}; fix the file (see the privacy reviewer guide for an example)",
                errors=[{"row": None, "field": "file", "message": str(exc)}],
            ) from None
        if not isinstance(data, dict):
            raise ValidationError(f"{path} must hold one object of the organisation's details")
        return checked(cls, data, "")

    def arguments(self, report: Literal["records_of_processing", "transparency"] =
                  "records_of_processing") -> dict[str, Any]:
        """Keyword arguments for :func:`records_of_processing` or :func:`transparency`."""
        keys = (("controller", "dpo", "representative", "recipients", "transfers",
                 "security_measures", "data_subjects")
                if report == "records_of_processing" else
                ("controller", "dpo", "supervisory_authority", "recipients", "data_sources"))
        return {k: getattr(self, k) for k in keys}


def _tuples(data: Any) -> Any:
    """Lists as tuples, all the way down (JSON, TOML and callers write lists)."""
    if isinstance(data, Mapping):
        return {k: _tuples(v) for k, v in data.items()}
    if isinstance(data, list):
        return tuple(_tuples(v) for v in data)
    return data


_HOW = {
    "controller": "give it as {'name': ..., 'contact': ...}",
    "dpo": "give it as {'name': ..., 'contact': ...}",
    "representative": "give it as {'name': ..., 'contact': ...}",
    "supervisory_authority": "give it as {'name': ..., 'contact': ...}",
    "recipients": "give a list of {'name': ..., 'role': ..., 'purposes': [...], 'country': ...}",
    "transfers": "give a list of {'recipient': ..., 'country': ..., 'safeguard': one of "
                 + ", ".join(repr(s) for s in SAFEGUARDS) + ", 'documents': ...}",
    "security_measures": "give a list of sentences, e.g. ['disks encrypted at rest']",
    "data_subjects": "give a list of sentences, e.g. ['customers of the online shop']",
    "data_sources": "give a dict of feature name to where that data comes from",
}


@overload
def checked(kind: type[_M], value: Any, field: str) -> _M: ...


@overload
def checked(kind: Any, value: Any, field: str) -> Any: ...


def checked(kind: Any, value: Any, field: str) -> Any:
    """``value`` validated as ``kind`` in strict mode; persona's ValidationError otherwise.

    A list is accepted where a tuple is declared; nothing else is converted (a string is
    never a list, a number never a name)."""
    if isinstance(kind, type) and issubclass(kind, BaseModel) and isinstance(value, kind):
        return value
    value = _tuples(value)
    try:
        return TypeAdapter(kind).validate_python(value, strict=True)
    except PydanticError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in (field, *first["loc"]) if p != "")
        how = _HOW.get(loc.split(".")[0], "see persona.reports.Organisation")
        raise ValidationError(
            f"field '{loc}': {first['msg']} (got {str(first.get('input'))[:60]!r}); {how}",
            errors=[{"row": None,
                     "field": ".".join(str(p) for p in (field, *e["loc"]) if p != ""),
                     "message": e["msg"], "input": repr(e.get("input"))[:80]}
                    for e in exc.errors()],
        ) from None


def check_recipients(named: tuple[Recipient, ...], purposes: Mapping[str, Any]) -> None:
    """Every purpose a recipient is named for must be one of the store's ``purposes``."""
    for k, r in enumerate(named):
        unknown = [p for p in r.purposes if p not in purposes]
        if unknown:
            raise ValidationError(
                f"field 'recipients.{k}.purposes': {unknown[0]!r} is not a purpose of this "
                f"store; use one of {sorted(purposes)}",
                errors=[{"row": None, "field": f"recipients.{k}.purposes",
                         "message": "unknown purpose"}])
