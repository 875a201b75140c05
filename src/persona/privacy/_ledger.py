"""The privacy budget ledger: every private computation reserves its planned spend before it
reads data, in one atomic step, and is settled with what it actually spent.

:class:`BudgetLedger`, the :class:`ChargeStorage` protocol and :class:`MemoryChargeStorage`
live in :mod:`persona.schema` (so the store can hand out ledgers bound to its own file, see
``store.privacy_ledger``) and are re-exported here; this module adds the JSON-lines file
storage, made atomic across processes with a file lock.

Budgets add up ε and δ over charges (basic composition: always valid, whatever the mechanisms).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from persona.errors import StoreError
from persona.schema import (
    BudgetLedger,
    ChargeStorage,
    LedgerCheck,
    LedgerEntry,
    MemoryChargeStorage,
    PrivacyCharge,
    ledger_entry_from_json,
)

try:  # POSIX; elsewhere appends are atomic between the threads of one process only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["BudgetLedger", "ChargeStorage", "JsonlChargeStorage", "MemoryChargeStorage"]


class JsonlChargeStorage:
    """Ledger lines as JSON lines in a file, flushed and fsynced on every append.

    Appends hold an exclusive ``flock`` on the file while they read it, run the ledger's
    check and write, so reservations from several processes sharing the file never
    overspend (on POSIX systems; the file should be on a local disk, where ``flock`` is
    reliable).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ledger.jsonl"
    >>> JsonlChargeStorage(path).load_charges()
    []
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextmanager
    def _locked(self, mode: str, *, exclusive: bool) -> Iterator[IO[str]]:
        with self.path.open(mode, encoding="utf-8") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield fh
            finally:
                if fcntl is not None:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _parse(self, fh: IO[str]) -> list[LedgerEntry]:
        out = []
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(ledger_entry_from_json(line))
            except ValueError as exc:
                raise StoreError(
                    f"privacy ledger {self.path} line {lineno} is damaged ({exc}); "
                    "restore it from a backup: spending cannot be verified without it"
                ) from None
        return out

    def load_entries(self) -> list[LedgerEntry]:
        if not self.path.exists():
            return []
        with self._locked("r", exclusive=False) as fh:
            return self._parse(fh)

    def append_entries(
        self, entries: Sequence[LedgerEntry], *, check: LedgerCheck | None = None
    ) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked("a+", exclusive=True) as fh:
            if check is not None:
                fh.seek(0)
                check(self._parse(fh))
            fh.write("".join(e.model_dump_json() + "\n" for e in entries))
            fh.flush()
            os.fsync(fh.fileno())

    def load_charges(self) -> list[PrivacyCharge]:
        return [e for e in self.load_entries() if isinstance(e, PrivacyCharge)]

    def append_charge(self, charge: PrivacyCharge) -> None:
        self.append_entries([charge])
