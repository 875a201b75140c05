"""The :class:`~persona.Store` methods about consent: one person's choice (grant, withdraw,
decline), the machine signals (Global Privacy Control, IAB TCF v2.2, Google Consent Mode),
many choices at once (a consent platform's export, a bulk import of grants), and the
consent history and state read back. :class:`ConsentMethods` is a base of ``Store``; like
the rest of the façade it checks arguments and calls modules by job with the store's
database handle."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from persona.schema import ConsentRecord
from persona.store import _consent, _consent_bulk

if TYPE_CHECKING:
    from persona.store._db import Db

__all__ = ["ConsentMethods"]


class ConsentMethods:
    """What a :class:`~persona.Store` does with consent (see the module docstring)."""

    _db: Db

    # ------------------------------------------------------------------ consent
    def grant(
        self,
        user: str,
        purpose: str,
        *,
        source: str,
        notice_version: str | None = None,
        at: datetime | str | None = None,
    ) -> ConsentRecord:
        """Record that ``user`` consented to ``purpose``.

        ``source`` says where (a form, a banner, an API); ``notice_version`` which privacy
        notice they saw; ``at`` when they chose (defaults to now; never in the future).
        A grant lifts the suppression left by an earlier erasure.
        """
        return _consent.consent(self._db, user, purpose, "grant", source, notice_version, at)

    def withdraw(
        self,
        user: str,
        purpose: str,
        *,
        source: str = "api",
        notice_version: str | None = None,
        at: datetime | str | None = None,
    ) -> ConsentRecord:
        """Record that ``user`` withdrew consent to ``purpose``. Effective at the next read."""
        return _consent.consent(self._db, user, purpose, "withdraw", source, notice_version, at)

    def decline(
        self,
        user: str,
        purpose: str,
        *,
        source: str,
        notice_version: str | None = None,
        at: datetime | str | None = None,
    ) -> ConsentRecord:
        """Record that ``user`` was asked and said no (distinct from withdrawing later)."""
        return _consent.consent(self._db, user, purpose, "decline", source, notice_version, at)

    def do_not_sell(
        self, user: str, *, source: str = "Global Privacy Control"
    ) -> list[ConsentRecord]:
        """Apply a "do not sell or share" / Global Privacy Control signal: withdraw every
        purpose defined with ``sharing=True``. Returns the records written."""
        return _consent.do_not_sell(self._db, user, source=source)

    def apply_tcf(
        self,
        user: str,
        purposes: Iterable[int],
        *,
        source: str = "IAB TCF v2.2 consent string",
        notice_version: str | None = None,
    ) -> list[ConsentRecord]:
        """Apply the purposes a TCF v2.2 consent string allows (``purposes``: TCF purpose ids).

        Each persona purpose mapped with ``tcf_purposes`` is granted when all its ids are
        allowed and withdrawn otherwise; only changes of state are recorded.
        """
        return _consent.apply_tcf(
            self._db, user, purposes, source=source, notice_version=notice_version
        )

    def apply_consent_mode(
        self,
        user: str,
        signals: Mapping[str, str],
        *,
        source: str = "Google Consent Mode",
    ) -> list[ConsentRecord]:
        """Apply Google Consent Mode v2 signals (``{"ad_personalization": "denied", ...}``).

        A persona purpose mapped with ``consent_mode`` is granted when all its signals are
        ``"granted"`` and withdrawn when any is ``"denied"``; missing signals leave it as is.
        """
        return _consent.apply_consent_mode(self._db, user, signals, source=source)

    def record_consents(self, choices: Iterable[Mapping[str, Any]]) -> list[ConsentRecord]:
        """Record many people's consent choices at once, all or none (e.g. a consent
        platform's export).

        Each choice is a mapping with ``user``, ``purpose``, ``action`` (``"grant"``,
        ``"withdraw"`` or ``"decline"``) and ``source``, and optionally ``at`` and
        ``notice_version``, as the arguments of :meth:`grant`. Every choice is checked
        first; one bad choice raises :class:`~persona.ValidationError` whose ``errors``
        name its index (``row``, from 0) and field, and nothing is recorded. Then all are
        written in one transaction, in the order given. Returns the records written.

        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.define_purpose("marketing", description="Send offers")
        >>> records = store.record_consents([
        ...     {"user": "u1", "purpose": "marketing", "action": "grant", "source": "CMP"},
        ...     {"user": "u2", "purpose": "marketing", "action": "decline", "source": "CMP",
        ...      "at": "2026-01-05T10:00:00Z"}])
        >>> [r.action for r in records], store.has_consent("u1", "marketing")
        (['grant', 'decline'], True)
        """
        return _consent_bulk.record_consents(self._db, choices)

    def grant_many(
        self,
        rows: Iterable[Mapping[str, Any]] | Any,
        *,
        source: str | None = None,
        notice_version: str | None = None,
    ) -> int:
        """Record many grants at once, all or none: a bulk import of consent (a consent
        platform's export, a migration). Returns the number recorded.

        ``rows`` is a list of mappings (or a pandas ``DataFrame`` with those columns) with
        ``user`` and ``purpose``, and optionally ``source``, ``at`` and
        ``notice_version``, as the arguments of :meth:`grant`; ``source`` and
        ``notice_version`` given here apply to the rows without their own. Every row is
        checked first; one bad row raises :class:`~persona.ValidationError` whose
        ``errors`` name its index (``row``, from 0) and field, and nothing is recorded.

        What is recorded is what :meth:`grant` once per row, in order, records: each
        grant in the person's consent history with its audit entry, the consent state the
        latest grant by time, an erased person's suppression lifted. Only the writes are
        batched, so a million grants take seconds, not hours (``benchmarks/bench_store.py``
        measures it). To record withdrawals and declines as well, use
        :meth:`record_consents`.

        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.define_purpose("marketing", description="Send offers")
        >>> store.grant_many([{"user": "u1", "purpose": "marketing"},
        ...                   {"user": "u2", "purpose": "marketing",
        ...                    "at": "2026-01-05T10:00:00Z"}], source="CMP export")
        2
        >>> sorted(store.consented("marketing"))
        ['u1', 'u2']
        """
        return _consent_bulk.grant_many(
            self._db, rows, source=source, notice_version=notice_version
        )

    def consent_history(self, user: str) -> list[ConsentRecord]:
        """Every consent event recorded for ``user``, oldest first (empty if none)."""
        return _consent.consent_history(self._db, user)

    def consent_status(self, user: str) -> dict[str, ConsentRecord | None]:
        """The latest consent event for each defined purpose (``None``: never asked)."""
        return _consent.consent_status(self._db, user)

    def consented(self, purpose: str) -> set[str]:
        """Everyone whose latest consent event for ``purpose`` is a grant, now."""
        return _consent.consented(self._db, purpose)

    def has_consent(self, user: str, purpose: str) -> bool:
        """True when the latest consent event of ``user`` for ``purpose`` is a grant, now."""
        return _consent.has_consent(self._db, user, purpose)

