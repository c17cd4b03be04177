"""Guarding the server against slow and abusive clients: connection limits, header timeouts, quiet logs.

In review, 1,100 connections that each sent a byte at a time took every
file descriptor (an open-file limit of 1,024): every new connection timed
out, and the log grew 181 MB in 32 s with ``Too many open files``. uvicorn
has a keep-alive timeout but none for a request's head, and a concurrency
limit that answers 503 only once a request's head has arrived. So:

- :func:`guarded_protocol` makes uvicorn's h11 protocol close a connection
  whose request head has not arrived ``header_timeout`` seconds after it
  opened (or after its last answer), and refuse at once, with a 503 and
  ``Retry-After``, a connection beyond ``max_connections``. A body that
  does not arrive in time is the app's to refuse (408,
  :data:`~skcal.serve.app.BODY_TIMEOUT`).
- :func:`raise_open_file_limit` raises the soft open-file limit to the hard
  one, and :func:`connection_limit` keeps ``max_connections`` below it, with
  room for the journal, the model and the threads' files.
- :class:`RateLimitedLog` lets each kind of log line (logger and message
  template) through at most ``burst`` times per ``interval`` seconds, then
  says how many it held back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass, field

from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

#: Files kept free for the backend itself (journal, model, threads, Label Studio requests).
RESERVED_FILES = 64


@dataclass
class ConnectionStats:
    """Counts of what the guard did, for ``/health``."""

    refused: int = 0
    timed_out: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, what: str) -> None:
        """Add one to ``refused`` or ``timed_out``."""
        with self.lock:
            setattr(self, what, getattr(self, what) + 1)

    def snapshot(self) -> dict:
        """Return the counts as a plain dict."""
        with self.lock:
            return {"refused": self.refused, "timed_out": self.timed_out}


def _busy_response(max_connections: int) -> bytes:
    body = json.dumps(
        {"error": f"the server has {max_connections} connections open, its limit; retry shortly.", "status": 503}
    ).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
        f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_protocol(header_timeout: float, max_connections: int, stats: ConnectionStats) -> type:
    """Return uvicorn's h11 protocol with a request-head timeout and a connection limit.

    Parameters
    ----------
    header_timeout : float
        Seconds from a connection's opening (or its last answer) to a complete request head.
    max_connections : int
        Connections open at once; one more is answered 503 and closed.
    stats : ConnectionStats
        Counts refused and timed-out connections.

    Returns
    -------
    type
        A subclass of ``uvicorn.protocols.http.h11_impl.H11Protocol``, for
        ``uvicorn.Config(http=...)``.
    """
    busy = _busy_response(max_connections)

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                stats.count("refused")
                logger.warning("skcal serve: refused a connection: %d open, the limit", max_connections)
                transport.write(busy)
                transport.close()
                return
            self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            self._disarm_head_timer()
            self._head_timer = self.loop.call_later(header_timeout, self._head_overdue)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_overdue(self) -> None:
            self._head_timer = None
            waiting_for_head = self.cycle is None or self.cycle.response_complete
            if waiting_for_head and not self.transport.is_closing():
                stats.count("timed_out")
                logger.warning(
                    "skcal serve: closed a connection from %s: no complete request head within %g s",
                    self.client[0] if self.client else "?",
                    header_timeout,
                )
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_timer()
            super().connection_lost(exc)

    return GuardedH11Protocol


def raise_open_file_limit() -> int | None:
    """Raise the soft open-file limit to the hard limit; return the soft limit now in force.

    Returns
    -------
    int or None
        None where the platform has no such limit.
    """
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return None if soft == resource.RLIM_INFINITY else int(soft)


def connection_limit(requested: int, open_files: int | None) -> int:
    """Return the connection limit: ``requested``, kept :data:`RESERVED_FILES` below the open-file limit.

    Parameters
    ----------
    requested : int
    open_files : int or None

    Returns
    -------
    int
        At least 1.
    """
    if open_files is None:
        return requested
    return max(1, min(requested, open_files - RESERVED_FILES))


class RateLimitedLog(logging.Filter):
    """Let each kind of log record through at most ``burst`` times per ``interval`` seconds.

    A kind is a logger name and message template (so ``"refused %s"`` with
    different arguments is one kind). The next record of a kind after some
    were held back says how many.

    Parameters
    ----------
    burst : int, default=5
    interval : float, default=10
    """

    def __init__(self, burst: int = 5, interval: float = 10.0):
        super().__init__()
        self.burst = burst
        self.interval = interval
        self._lock = threading.Lock()
        self._windows: dict[tuple, list] = {}  # kind -> [window start, passed, held back]
        self.held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        """Return whether ``record`` is logged (noting how many of its kind were held back)."""
        kind = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(kind)
            if window is None or now - window[0] >= self.interval:
                held = 0 if window is None else window[2]
                if len(self._windows) > 1000:  # kinds are templates; a flood of new ones must not grow this
                    self._windows.clear()
                self._windows[kind] = [now, 1, 0]
                if held:
                    record.msg = f"{record.msg} [{held} more like this held back in {self.interval:g} s]"
                return True
            if window[1] < self.burst:
                window[1] += 1
                return True
            window[2] += 1
            self.held_back += 1
            return False


def quiet_logs(rate_limit: RateLimitedLog, loggers: tuple = ("", "uvicorn", "uvicorn.error", "asyncio")) -> None:
    """Put ``rate_limit`` on every handler of these loggers (the root logger's by default).

    Parameters
    ----------
    rate_limit : RateLimitedLog
    loggers : tuple of str
    """
    for name in loggers:
        for handler in logging.getLogger(name).handlers:
            if rate_limit not in handler.filters:
                handler.addFilter(rate_limit)


__all__ = [
    "ConnectionStats",
    "RESERVED_FILES",
    "RateLimitedLog",
    "connection_limit",
    "guarded_protocol",
    "quiet_logs",
    "raise_open_file_limit",
]
