"""persona's exceptions.

Every error persona raises on purpose is a :class:`PersonaError`. Each subclass has a
stable ``code`` and a message that says what went wrong *and what to do about it*::

    PersonaError                     HTTP
    ├── ValidationError          422  bad input at the edge (names the row and the field)
    │   ├── PrivateInputError    422  a private fit refused its inputs
    │   └── SuppressedSubjectError 409  events for an erased person, before a new grant
    ├── UnknownPurposeError      404  a purpose that was never defined
    ├── UnknownFeatureError      404  a feature that was never defined
    ├── ConsentError             403  an operation that needs consent the person has not given
    ├── StoreError               503  the store file cannot be used (busy, locked, corrupt, closed)
    ├── AuditError               500  the audit log failed verification
    ├── NotFittedError           503  a model used before ``fit``
    ├── UnknownUserError         404  a person the model (or store) does not know
    ├── UnknownItemError         404  an item the model does not know
    │   └── NotShownError        404  no record of an item shown to a person at that time
    ├── ModelFileError           500  a model file that is damaged, foreign or unsafe to load
    ├── MissingDependencyError   500  an optional extra (pandas, pyarrow) is not installed
    └── PrivacyBudgetExceeded    429  a private computation would spend more than the budget

    UserWarning
    └── RetentionWarning              events ingested already outside their retention

The classes also subclass the closest built-in exception (``ValueError``, ``KeyError``,
``RuntimeError``), so code written against the built-ins keeps working.

Every class carries ``http_status``, the status code a web service should answer with when
the error reaches a request: 4xx where the caller can fix the request (the message says
how), 5xx where the service itself is not ready or not sound. One exception handler is
enough (see ``docs/examples/fastapi_app.py``)::

    @app.exception_handler(PersonaError)
    def persona_error(request, exc):
        return JSONResponse({"code": exc.code, "message": exc.message},
                            status_code=exc.http_status)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditError",
    "ConsentError",
    "MissingDependencyError",
    "ModelFileError",
    "NotFittedError",
    "NotShownError",
    "PersonaError",
    "PrivacyBudgetExceeded",
    "PrivateInputError",
    "RetentionWarning",
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
    http_status:
        The HTTP status a web service should answer with. HTTP 500 for this base class
        (an error without a more specific meaning is the service's); every subclass
        chooses its own.
    """

    code: str = "persona_error"
    http_status: int = 500

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

    HTTP 422 (Unprocessable Content): the request's content was refused; send it
    again fixed as the message says.
    """

    code = "validation_error"
    http_status = 422

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None, **context: Any):
        super().__init__(message, **context)
        self.errors: list[dict[str, Any]] = errors or []


class PrivateInputError(ValidationError):
    """A private fit refused its inputs before anything was released: no declared item
    catalogue, or preprocessing that mixes people's rows. Decided from public facts only
    (how the data was built), never from the data, so the refusal itself reveals nothing;
    a reservation made for the fit may be cancelled.

    HTTP 422, as every :class:`ValidationError`.
    """

    code = "private_input_refused"
    http_status = 422


class SuppressedSubjectError(ValidationError):
    """Events arrived for a person who was erased and has not granted consent since.

    HTTP 409 (Conflict): the request conflicts with the person's erasure; it
    succeeds once they grant consent again.
    """

    code = "suppressed_subject"
    http_status = 409


class UnknownPurposeError(PersonaError, KeyError):
    """A purpose that was never defined. HTTP 404 (Not Found)."""

    code = "unknown_purpose"
    http_status = 404

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class UnknownFeatureError(PersonaError, KeyError):
    """A feature that was never defined. HTTP 404 (Not Found)."""

    code = "unknown_feature"
    http_status = 404

    def __str__(self) -> str:
        return self.message


class ConsentError(PersonaError):
    """An operation that needs consent the person has not given. HTTP 403 (Forbidden):
    it is allowed once they consent.
    """

    code = "consent_error"
    http_status = 403


class StoreError(PersonaError, RuntimeError):
    """The store file cannot be used now (busy, locked, corrupt, closed). HTTP 503
    (Service Unavailable): the service, not the request, must be fixed or retried.
    """

    code = "store_error"
    http_status = 503


class AuditError(PersonaError):
    """The audit log failed verification. HTTP 500 (Internal Server Error): the
    service's own records are not sound.
    """

    code = "audit_error"
    http_status = 500


class NotFittedError(PersonaError, RuntimeError):
    """A model used before ``fit``. HTTP 503 (Service Unavailable): the service is
    not ready to answer yet.
    """

    code = "not_fitted"
    http_status = 503


class UnknownUserError(PersonaError, KeyError):
    """A person the model (or store) does not know. HTTP 404 (Not Found)."""

    code = "unknown_user"
    http_status = 404

    def __str__(self) -> str:
        return self.message


class UnknownItemError(PersonaError, KeyError):
    """An item the model does not know. HTTP 404 (Not Found)."""

    code = "unknown_item"
    http_status = 404

    def __str__(self) -> str:
        return self.message


class NotShownError(UnknownItemError):
    """No record of the item shown to the person at or before the time asked about.
    HTTP 404 (Not Found): there is no such record.
    """

    code = "not_shown"
    http_status = 404


class ModelFileError(PersonaError, ValueError):
    """A model file that is damaged, foreign or unsafe to load. HTTP 500 (Internal
    Server Error): the service's own file must be replaced.
    """

    code = "model_file_error"
    http_status = 500


class MissingDependencyError(PersonaError, ImportError):
    """A feature needs an optional package that is not installed (pandas for
    ``to_pandas``, pyarrow for ``to_arrow``); the message names the extra to install.
    HTTP 500 (Internal Server Error): the service's own environment lacks it.
    """

    code = "missing_dependency"
    http_status = 500


class PrivacyBudgetExceeded(PersonaError):
    """A private computation would spend more than the privacy budget. HTTP 429 (Too
    Many Requests): the purpose's budget is spent (for a budget per period, until the
    period rolls on).
    """

    code = "privacy_budget_exceeded"
    http_status = 429


class RetentionWarning(UserWarning):
    """Events given to ``Store.ingest`` that are already older than their feature's
    retention: they were not stored (``IngestReport.outside_retention`` counts them by
    feature). Raise the feature's ``retention_days`` and ingest them again to use them.

    A warning, not an error: the rest of the batch was stored. Filter it like any warning,
    e.g. ``warnings.simplefilter("ignore", persona.errors.RetentionWarning)``.
    """
