"""persona's exceptions.

Every error persona raises on purpose is a :class:`PersonaError`. Each subclass has a
stable ``code`` and a message that says what went wrong *and what to do about it*::

    PersonaError
    ├── ValidationError          bad input at the edge (names the row and the field)
    │   └── SuppressedSubjectError   events for an erased person, before a new grant
    ├── UnknownPurposeError      a purpose that was never defined
    ├── UnknownFeatureError      a feature that was never defined
    ├── ConsentError             an operation that needs consent the person has not given
    ├── StoreError               the store file cannot be used (busy, locked, corrupt, closed)
    ├── AuditError               the audit log failed verification
    ├── NotFittedError           a model used before ``fit``
    ├── UnknownUserError         a person the model (or store) does not know
    ├── UnknownItemError         an item the model does not know
    │   └── NotShownError            no record of an item shown to a person at that time
    ├── ModelFileError           a model file that is damaged, foreign or unsafe to load
    └── PrivacyBudgetExceeded    a private computation would spend more than the budget

The classes also subclass the closest built-in exception (``ValueError``, ``KeyError``,
``RuntimeError``), so code written against the built-ins keeps working.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditError",
    "ConsentError",
    "ModelFileError",
    "NotFittedError",
    "NotShownError",
    "PersonaError",
    "PrivacyBudgetExceeded",
    "PrivateInputError",
    "StoreError",
    "SuppressedSubjectError",
    "UnknownFeatureError",
    "UnknownItemError",
    "UnknownPurposeError",
    "UnknownUserError",
    "ValidationError",
]


class PersonaError(Exception):
    """Base class of every error persona raises on purpose.

    Attributes
    ----------
    code:
        A short stable identifier (``"validation_error"``, ``"unknown_user"``, ...) that
        programs can match on; the message text may improve between releases.
    """

    code: str = "persona_error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        return self.message


class ValidationError(PersonaError, ValueError):
    """Input was rejected at the edge. Nothing was written.

    ``errors`` lists every problem found as dicts with ``row`` (position in the batch, or
    ``None``), ``field``, ``message`` and ``input``.
    """

    code = "validation_error"

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None, **context: Any):
        super().__init__(message, **context)
        self.errors: list[dict[str, Any]] = errors or []


class PrivateInputError(ValidationError):
    """A private fit refused its inputs before anything was released: no declared item
    catalogue, or preprocessing that mixes people's rows. Decided from public facts only
    (how the data was built), never from the data, so the refusal itself reveals nothing;
    a reservation made for the fit may be cancelled."""

    code = "private_input_refused"


class SuppressedSubjectError(ValidationError):
    """Events arrived for a person who was erased and has not granted consent since."""

    code = "suppressed_subject"


class UnknownPurposeError(PersonaError, KeyError):
    code = "unknown_purpose"

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class UnknownFeatureError(PersonaError, KeyError):
    code = "unknown_feature"

    def __str__(self) -> str:
        return self.message


class ConsentError(PersonaError):
    code = "consent_error"


class StoreError(PersonaError, RuntimeError):
    code = "store_error"


class AuditError(PersonaError):
    code = "audit_error"


class NotFittedError(PersonaError, RuntimeError):
    code = "not_fitted"


class UnknownUserError(PersonaError, KeyError):
    code = "unknown_user"

    def __str__(self) -> str:
        return self.message


class UnknownItemError(PersonaError, KeyError):
    code = "unknown_item"

    def __str__(self) -> str:
        return self.message


class NotShownError(UnknownItemError):
    """No record of the item shown to the person at or before the time asked about."""

    code = "not_shown"


class ModelFileError(PersonaError, ValueError):
    code = "model_file_error"


class PrivacyBudgetExceeded(PersonaError):
    code = "privacy_budget_exceeded"
