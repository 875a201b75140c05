"""In-memory index of stored event ids, kept in sync with the ``eid_chunks`` table."""

from __future__ import annotations

import sqlite3

import numpy as np


class EventIdIndex:
    """Sorted runs of 64-bit event ids, merged geometrically (a small LSM tree).

    Membership of a batch of ids costs one ``searchsorted`` per run. The index follows the
    table: :meth:`sync` loads chunks written since the last call (by this process or another),
    and is called inside the write transaction, so the check-then-insert is race-free.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []
        self._last_chunk = 0
        self._generation = -1

    def sync(self, con: sqlite3.Connection, generation: int) -> None:
        if generation != self._generation:
            self._runs, self._last_chunk, self._generation = [], 0, generation
        rows = con.execute(
            "SELECT id, eids FROM eid_chunks WHERE id > ? ORDER BY id", (self._last_chunk,)
        ).fetchall()
        for chunk_id, blob in rows:
            self._add(np.frombuffer(blob, dtype="<u8"))
            self._last_chunk = chunk_id

    def contains(self, eids: np.ndarray) -> np.ndarray:
        found = np.zeros(eids.shape[0], dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, eids)
            pos[pos == run.shape[0]] = 0
            found |= run[pos] == eids
        return found

    def append(self, con: sqlite3.Connection, sorted_new: np.ndarray) -> None:
        """Write a chunk of new, sorted, unique ids and add it to the index."""
        cur = con.execute(
            "INSERT INTO eid_chunks(eids) VALUES (?)", (sorted_new.astype("<u8").tobytes(),)
        )
        self._last_chunk = int(cur.lastrowid or 0)
        self._add(sorted_new)

    def _add(self, run: np.ndarray) -> None:
        if run.size == 0:
            return
        self._runs.append(run)
        while len(self._runs) > 1 and self._runs[-1].size * 2 >= self._runs[-2].size:
            merged = np.concatenate([self._runs.pop(), self._runs.pop()])
            merged.sort(kind="stable")
            self._runs.append(merged)

    def __len__(self) -> int:
        return sum(r.size for r in self._runs)
