"""The :class:`~persona.Store` methods about one person: their feedback, the export and
erasure of their data, what they were shown (and the serving reads that record it), and
their choice of lists not based on profiling. :class:`PersonMethods` is a base of
``Store``; like the rest of the façade it checks arguments and calls modules by job with
the store's database handle."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from persona.errors import ValidationError
from persona.schema import EraseReport, FeedbackKind, FeedbackRecord, check_id
from persona.store import _profiling, _rights, _serving, _shown
from persona.store._common import parse_time
from persona.store._serving import Served

if TYPE_CHECKING:
    from persona._columns import EventColumns
    from persona.store._db import Db

__all__ = ["PersonMethods"]


class PersonMethods:
    """What a :class:`~persona.Store` does for one person (see the module docstring)."""

    _db: Db

    # ------------------------------------------------------------------ feedback
    def feedback(
        self,
        user: str,
        item: str,
        kind: FeedbackKind,
        *,
        source: str = "api",
        at: datetime | str | None = None,
    ) -> FeedbackRecord:
        """Record a person's correction of what the system assumes about them.

        ``kind="dont_use"``: their events with ``item`` are left out of every read from now
        on (and so out of models fitted afterwards and of their explanations).
        ``kind="not_interested"``: the item should not be suggested to them; serving layers
        read these with :meth:`ScopedView.not_interested`.
        Feedback is personal data: it is exported, and erased with the person.
        """
        return _rights.feedback(self._db, user, item, kind, source=source, at=at)

    def clear_feedback(
        self, user: str, item: str | None = None, kind: FeedbackKind | None = None
    ) -> int:
        """Undo feedback: all of the person's, one item's, or one kind's. Returns rows removed."""
        return _rights.clear_feedback(self._db, user, item, kind)

    def feedback_of(self, user: str) -> list[FeedbackRecord]:
        """Every piece of feedback held for ``user``, oldest first."""
        return _rights.feedback_of(self._db, user)

    # ------------------------------------------------------------------ rights
    def export(self, user: str) -> dict[str, Any]:
        """Everything held about ``user``, as a JSON-serialisable dict (GDPR Art. 15 and 20).

        The shape (``format_version`` 1) is documented in ``docs/export-format.md``: the
        person's consent history and current state per purpose, every event held (with its
        feature, data category, allowed purposes and whether it is inside retention), the
        audit-log entries about them since their last erasure, and the definitions needed
        to read it. For a person erased (and not back since), ``erased`` is true and
        nothing about them is returned: no audit entries, no pseudonym, no times; the
        export itself is recorded under no one.
        """
        return _rights.export(self._db, user)

    def erase(self, user: str) -> EraseReport:
        """Erase everything held about ``user``: events, consent history, feedback, the id
        itself and the items only they had (unless declared with :meth:`define_items`),
        also from the file's free pages and write-ahead log.

        The audit log keeps a pseudonymous record that an erasure happened. The id is then
        suppressed: later events for it are refused until the person grants consent again.
        Erasing someone not held still records the suppression.

        Copies outside the store are not reached: a saved model folder, and Parquet
        exports made with :meth:`ScopedView.to_parquet` (each listed by a
        ``scoped_export`` audit entry with its folder); export again and delete those.
        """
        return _rights.erase(self._db, user)

    # ------------------------------------------------------------------ explanations
    def record_explanation(self, user: str, explanation: Any) -> int:
        """Record that ``user`` was shown ``explanation`` (GDPR Art. 15 transparency).

        ``explanation`` is a :class:`persona.explain.Explanation` (or any JSON-serialisable
        mapping). The audit log gets an ``explanation_shown`` entry under the person's
        pseudonym whose detail holds only a keyed digest of the explanation; the
        explanation itself is kept apart and erased with the person, because it names
        items they chose. Returns the audit sequence number. A person who was erased is
        refused (:class:`~persona.errors.SuppressedSubjectError`) until they grant consent
        again, as their events and feedback are.

        Examples
        --------
        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> seq = store.record_explanation("u1", {"item": "sku-9", "text": "We picked it."})
        >>> [e["explanation"]["item"] for e in store.shown_explanations("u1")]
        ['sku-9']
        """
        return _rights.record_explanation(self._db, user, explanation)

    def shown_explanations(self, user: str) -> list[dict[str, Any]]:
        """Explanations ``user`` was shown, oldest first: those recorded with
        :meth:`record_explanation` and those a Personalizer recorded itself (one per item
        served, sharing their request's ``seq``). Each is ``seq`` (audit entry), ``at``,
        ``explanation`` (as recorded; for served items ``item``, ``label``, ``text``,
        ``rank``, ``score``, ``kind``, ``reasons_digest``, ``model_version``, ``purpose``)
        and ``verified`` (it matches the digest in the audit log). :meth:`shown` gives the
        same as typed records."""
        return _shown.as_explanations(self.shown(user))

    def read_for_serving(self, purpose: str, user: str) -> Served:
        """Consent, lineage, not-interested items and the non-profiling choice of ``user``
        for ``purpose``, read now in one snapshot (what a serving request needs). The
        read's audit entry waits in ``served.pending``: pass it to :meth:`enqueue_serving`
        (with what was shown, if anything) so that it is committed."""
        if not isinstance(purpose, str):
            raise ValidationError(
                f"purpose must be a defined purpose's name (a str), not {purpose!r}",
                errors=[{"row": None, "field": "purpose", "message": "not a str"}],
            )
        return _serving.read_for_serving(self._db, purpose, check_id(user, "user"))

    def history_for_serving(self, served: Served, user: str) -> EventColumns:
        """``user``'s events usable now for the purpose ``served`` was read for, read in a
        snapshot while serving (a re-fold of a person whose data changed): what
        ``ScopedView.history`` reads, but its audit entry waits in ``served.later`` and is
        committed with the request's (:meth:`enqueue_serving`), so serving takes no write
        lock."""
        if not isinstance(served, Served):
            raise ValidationError(
                f"history_for_serving takes what read_for_serving returned, not a "
                f"{type(served).__name__}",
                errors=[{"row": None, "field": "served", "message": "not a Served"}],
            )
        return _serving.history_for_serving(self._db, served, check_id(user, "user"))

    def enqueue_serving(self, pending: _shown.Pending) -> None:
        """Queue a serving request (its read's audit entry and what it showed) for the
        store's next group commit, within 0.05 s (see :meth:`flush`)."""
        if not isinstance(pending, _shown.Pending):
            raise ValidationError(
                f"enqueue_serving takes the pending request of read_for_serving "
                f"(served.pending), not a {type(pending).__name__}",
                errors=[{"row": None, "field": "pending", "message": "not a Pending"}],
            )
        self._db.journal.add(pending)

    def last_shown(self, user: str, item: str, at: datetime,
                   purpose: str | None = None) -> _shown.ShownRecord | None:
        """The latest record of ``item`` shown to ``user`` at or before ``at`` (for
        ``purpose``, if given), or ``None``."""
        if purpose is not None and not isinstance(purpose, str):
            raise ValidationError(
                f"purpose must be a purpose's name (a str) or None, not {purpose!r}",
                errors=[{"row": None, "field": "purpose", "message": "not a str"}],
            )
        return _shown.last_shown(self._db, check_id(user, "user"), check_id(item, "item"),
                                 parse_time(at, "at"), purpose)

    def shown(self, user: str, *, newest_first: bool = False) -> list[_shown.ShownRecord]:
        """What ``user`` was shown and is still held, oldest first (``newest_first=True``
        for the other order): every item a :class:`persona.Personalizer` served them (it
        records by default), and every explanation recorded with
        :meth:`record_explanation`, as :class:`~persona.store.ShownRecord`.

        Records past the shown-record retention (:meth:`set_shown_retention`, 90 days by
        default) are never returned, and are deleted by :meth:`apply_retention`; all of a
        person's records are deleted by :meth:`erase`, and are part of :meth:`export`.

        Examples
        --------
        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> _ = store.record_explanation("u1", {"item": "sku-9", "text": "We picked it."})
        >>> [(r.item, r.text, r.source, r.verified) for r in store.shown("u1")]
        [('sku-9', 'We picked it.', 'record_explanation', True)]
        """
        user = check_id(user, "user")
        if not isinstance(newest_first, bool):
            raise ValidationError(
                f"newest_first must be True or False, not {newest_first!r}",
                errors=[{"row": None, "field": "newest_first", "message": "not a bool"}],
            )
        return _shown.records(self._db, user, newest_first=newest_first)

    def reasons_digest(self, reasons: Any) -> str:
        """The keyed digest of an explanation's reasons as :meth:`shown` records it
        (``ShownRecord.reasons_digest``): give the full list of reasons of an explanation
        (or the explanation) to check that it is the one that was shown."""
        reasons = getattr(reasons, "reasons", reasons)
        if isinstance(reasons, str | bytes | Mapping) or not isinstance(reasons, Iterable):
            raise ValidationError(
                f"give an explanation or its list of reasons, not a {type(reasons).__name__}",
                errors=[{"row": None, "field": "reasons", "message": "not a list"}],
            )
        return _shown.reasons_digest(self._db.key, reasons)

    @property
    def shown_retention_days(self) -> int | None:
        """How many days shown records are kept (``None``: until the person is erased)."""
        with self._db.lock:
            self._db.check_open()
            return _shown.retention_days(self._db.con)

    def set_shown_retention(self, days: int | None) -> None:
        """Keep shown records (:meth:`shown`) for ``days`` days (1 to 36500; ``None``: until
        the person is erased). Older records are never returned, and
        :meth:`apply_retention` deletes them. Recorded in the audit log."""
        days = _shown.check_retention(days)
        with self._db.lock:
            self._db.refresh()
            with self._db.transaction():
                _shown.set_retention(self._db, days)

    # ------------------------------------------------------------------ profiling choice
    def prefer_non_profiling(self, user: str, *, source: str = "api") -> bool:
        """Record that ``user`` wants recommendations not based on profiling them (DSA
        Art. 38): a :class:`persona.Personalizer` then serves them its non-profiling
        (popularity) list, saying why, until :meth:`allow_profiling`. Their consent is
        left as it is. Recorded in the audit log, exported, erased with them. Returns
        whether it changed anything.

        Examples
        --------
        >>> import persona
        >>> store = persona.Store(":memory:")
        >>> store.prefer_non_profiling("u1", source="settings page")
        True
        >>> store.prefers_non_profiling("u1"), store.allow_profiling("u1")
        (True, True)
        >>> store.prefers_non_profiling("u1")
        False
        """
        return _profiling.profiling_choice(self._db, user, True, source)

    def allow_profiling(self, user: str, *, source: str = "api") -> bool:
        """Undo :meth:`prefer_non_profiling`: lists may be based on ``user`` again (as their
        consent allows). Recorded in the audit log. Returns whether it changed anything."""
        return _profiling.profiling_choice(self._db, user, False, source)

    def prefers_non_profiling(self, user: str) -> bool:
        """Whether ``user`` asked for lists not based on profiling them."""
        return _profiling.prefers_non_profiling(self._db, user)

