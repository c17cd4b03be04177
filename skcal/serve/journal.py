"""The journal of acknowledged label events: written to disk before the webhook answers.

Label Studio sends each annotation event once and does not retry, so the
backend must not lose one it acknowledged. Every :class:`LabelEvent` the
webhook accepts is appended here, in one SQLite transaction committed with
``synchronous=FULL``, before the HTTP answer goes out. Events get increasing
sequence numbers; a campaign checkpoint records the number up to which it
has used them, and a restarted backend replays the rest (see
:mod:`skcal.serve.campaign`). The journal also keeps the labelling config and
project of the last ``/setup``, so a restart knows them before Label Studio
calls again.

A journal that cannot be written (disk full, read-only, I/O error) raises
:class:`~skcal.serve.faults.StorageError` naming SQLite's own message: the
transaction is rolled back if SQLite has not already done so (it has, on a
full disk), so the real error is never hidden behind "cannot rollback - no
transaction is active", and nothing of the failed write remains.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .faults import storage_error
from .protocol import LabelEvent

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class AnnotationJournal:
    """An append-only, durable list of label events (SQLite, one file).

    Thread-safe: one connection behind a lock.

    Parameters
    ----------
    path : str or Path
        The database file; created (with its folder) if missing.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        with self._storage("open the journal"):
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.executescript(_SCHEMA)

    @contextmanager
    def _storage(self, what: str) -> Iterator[None]:
        """Turn SQLite's disk-full, read-only and I/O errors into a StorageError naming them."""
        try:
            yield
        except sqlite3.Error as error:
            fault = storage_error(error, what)
            if fault is None:
                raise
            raise fault from error

    def _write(self, what: str, statements: list) -> None:
        """Run ``(sql, rows)`` statements in one immediate transaction; roll back on failure if still open."""
        with self._storage(what):
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in statements:
                    self._connection.executemany(sql, rows)
                self._connection.execute("COMMIT")
            except BaseException:
                if self._connection.in_transaction:  # SQLite rolls back by itself on a full disk
                    self._connection.execute("ROLLBACK")
                raise

    def append(self, action: str, events: list) -> int:
        """Write events in one transaction, durable when this returns.

        Parameters
        ----------
        action : str
            The webhook action that brought them (kept for inspection).
        events : list of LabelEvent

        Returns
        -------
        int
            The sequence number of the last event written (the journal's end
            if ``events`` is empty).
        """
        rows = [(action, json.dumps(event.to_json())) for event in events]
        with self._lock:
            self._write(
                f"journal {len(rows)} label event(s)", [("INSERT INTO events (action, event) VALUES (?, ?)", rows)]
            )
            with self._storage("read the journal"):
                return self._last_seq()

    def _last_seq(self) -> int:
        row = self._connection.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def last_seq(self) -> int:
        """Return the sequence number of the newest event (0 when empty).

        Returns
        -------
        int
        """
        with self._lock, self._storage("read the journal"):
            return self._last_seq()

    def events_after(self, seq: int) -> list:
        """Return ``(seq, LabelEvent)`` pairs newer than ``seq``, oldest first.

        Parameters
        ----------
        seq : int

        Returns
        -------
        list of (int, LabelEvent)
        """
        with self._lock, self._storage("read the journal"):
            rows = self._connection.execute("SELECT seq, event FROM events WHERE seq > ? ORDER BY seq", (seq,))
            return [(int(number), LabelEvent.from_json(json.loads(text))) for number, text in rows.fetchall()]

    def __len__(self) -> int:
        with self._lock, self._storage("read the journal"):
            return int(self._connection.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def set_setting(self, key: str, value: str) -> None:
        """Store a setting durably (the labelling config, the project id).

        Parameters
        ----------
        key : str
        value : str
        """
        with self._lock:
            self._write(f"store the setting {key!r}", [("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                                                        [(key, value)])])  # fmt: skip

    def probe(self) -> None:
        """Write and remove a row, durably, to tell whether the journal can be written again.

        Raises
        ------
        StorageError
            While it cannot (a full disk, a read-only file system).
        """
        with self._lock:
            self._write(
                "write to the journal",
                [
                    ("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [("probe", "x" * 4096)]),
                    ("DELETE FROM settings WHERE key = ?", [("probe",)]),
                ],
            )

    def setting(self, key: str) -> str | None:
        """Return a stored setting, or None.

        Parameters
        ----------
        key : str

        Returns
        -------
        str or None
        """
        with self._lock, self._storage("read the journal"):
            row = self._connection.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._connection.close()


__all__ = ["AnnotationJournal"]
