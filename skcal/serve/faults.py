"""Faults the backend meets while serving, named for what went wrong, and kept for ``/health``.

Two kinds of fault are not the caller's mistake and must still be answered
clearly:

- **Storage faults**: the state folder cannot be written (disk full, a
  read-only file system, an I/O error). SQLite and the file system report
  them in many forms (``database or disk is full``, ``attempt to write a
  readonly database``, ``OSError: [Errno 28] No space left on device``);
  :func:`storage_error` recognises them and :class:`StorageError` carries the
  original message. A webhook that cannot be journalled is answered 507 with
  that message (its labels are not acknowledged, so none is ever silently
  lost), and a commit that cannot be written fails the round, which is
  retried.
- **Everything else the backend does in the background**: failed rounds,
  Label Studio that cannot be reached, images that cannot be fetched.

:class:`FaultBoard` keeps what is wrong now (``/health``'s ``faults``) and
the last faults that cleared or happened once (``recent_faults``), so that
every fault shows in ``/health`` while it lasts and for a while after.
"""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
from collections import deque

#: errno values of a state folder that cannot be written: nothing the caller can fix.
STORAGE_ERRNOS = frozenset(
    code
    for code in (
        errno.ENOSPC,
        errno.EROFS,
        errno.EDQUOT if hasattr(errno, "EDQUOT") else None,
        errno.EIO,
        errno.EACCES,
        errno.EPERM,
        errno.EFBIG,
    )
    if code is not None
)
#: Phrases of SQLite's messages for the same faults (sqlite3 raises OperationalError with a message only).
SQLITE_STORAGE_MESSAGES = (
    "database or disk is full",
    "readonly database",
    "disk i/o error",
    "unable to open database file",
    "file is not a database",
    "database disk image is malformed",
)


class StorageError(RuntimeError):
    """The state folder cannot be written or read: ``reason`` is what the operating system or SQLite said.

    Parameters
    ----------
    what : str
        What could not be done ("journal the webhook's labels", "commit round 3").
    reason : str
        The underlying error, e.g. ``"database or disk is full"``.
    """

    def __init__(self, what: str, reason: str):
        super().__init__(f"cannot {what}: {reason}")
        self.what = what
        self.reason = reason


def storage_error(error: BaseException, what: str) -> StorageError | None:
    """Return ``error`` as a :class:`StorageError` if it is a storage fault, else None.

    Parameters
    ----------
    error : BaseException
    what : str
        What was being done, for the message.

    Returns
    -------
    StorageError or None
    """
    if isinstance(error, StorageError):
        return error
    if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
        return StorageError(what, f"{error.strerror or error} ({type(error).__name__}, errno {error.errno})")
    if isinstance(error, sqlite3.Error):
        text = str(error)
        if any(phrase in text.lower() for phrase in SQLITE_STORAGE_MESSAGES):
            return StorageError(what, f"{text} (SQLite)")
    return None


class FaultBoard:
    """What is wrong now, and what went wrong recently, for ``/health``; thread-safe.

    Parameters
    ----------
    history : int, default=20
        Cleared or one-off faults kept.
    """

    def __init__(self, history: int = 20):
        self._lock = threading.Lock()
        self._active: dict[str, dict] = {}
        self._recent: deque = deque(maxlen=history)

    def report(self, name: str, message: str) -> None:
        """Record that ``name`` is failing now (a repeat counts, and keeps the first time).

        Parameters
        ----------
        name : str
            The fault's kind: ``"journal"``, ``"commit"``, ``"training"``, ...
        message : str
        """
        now = time.time()
        with self._lock:
            fault = self._active.get(name)
            if fault is None:
                self._active[name] = {"error": message, "since": now, "last": now, "count": 1}
            else:
                fault.update(error=message, last=now, count=fault["count"] + 1)

    def clear(self, name: str, note: str | None = None) -> bool:
        """Record that ``name`` works again; return whether it was failing.

        Parameters
        ----------
        name : str
        note : str, optional
            What healing did (kept with the fault in the recent list).

        Returns
        -------
        bool
        """
        with self._lock:
            fault = self._active.pop(name, None)
            if fault is None:
                return False
            self._recent.append({"fault": name, **fault, "cleared": time.time(), "note": note})
            return True

    def note(self, name: str, message: str) -> None:
        """Record a fault that happened once and is already dealt with (e.g. a corrupt commit rebuilt).

        Parameters
        ----------
        name : str
        message : str
        """
        now = time.time()
        with self._lock:
            self._recent.append(
                {"fault": name, "error": message, "since": now, "last": now, "count": 1, "cleared": now, "note": None}
            )

    def active(self, name: str) -> bool:
        """Whether ``name`` is failing now.

        Parameters
        ----------
        name : str

        Returns
        -------
        bool
        """
        with self._lock:
            return name in self._active

    def snapshot(self) -> tuple[dict, list]:
        """Return the active faults and the recent ones, as plain values.

        Returns
        -------
        (dict, list)
        """
        with self._lock:
            return {name: dict(fault) for name, fault in self._active.items()}, [dict(f) for f in self._recent]


__all__ = ["FaultBoard", "StorageError", "storage_error"]
