"""Sharing one model between requests: short calls go first, long ones in bounded slices.

A ``/predict`` of 10,000 tasks and one of a single task both need the
sentence encoder, which runs one batch at a time. Holding the encoder for a
whole long call made a 1-task request wait for all of it (17 s in review).
Long calls therefore take the model one batch at a time, and between two of
their batches a waiting *urgent* call (a short one) goes first:
:class:`PriorityLock` serves urgent waiters before the others, each kind in
arrival order, so neither kind starves the other kind's queue order and a
short call waits for at most one batch of a long one.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class PriorityLock:
    """A mutual-exclusion lock that hands itself to urgent waiters first, each kind in arrival order.

    Examples
    --------
    >>> lock = PriorityLock()
    >>> with lock.hold(urgent=True):
    ...     pass
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._held = False
        self._waiting: dict[bool, deque] = {True: deque(), False: deque()}

    def _my_turn(self, ticket: object, urgent: bool) -> bool:
        if self._held:
            return False
        if urgent:
            return self._waiting[True][0] is ticket
        return not self._waiting[True] and self._waiting[False][0] is ticket

    @contextmanager
    def hold(self, urgent: bool = False) -> Iterator[None]:
        """Hold the lock for the ``with`` block.

        Parameters
        ----------
        urgent : bool, default=False
            Served before every non-urgent waiter.

        Yields
        ------
        None
        """
        ticket = object()
        with self._condition:
            queue = self._waiting[urgent]
            queue.append(ticket)
            try:
                while not self._my_turn(ticket, urgent):
                    self._condition.wait()
            except BaseException:  # interrupted while waiting: the next in line may go now
                queue.remove(ticket)
                self._condition.notify_all()
                raise
            queue.remove(ticket)
            self._held = True
        try:
            yield
        finally:
            with self._condition:
                self._held = False
                self._condition.notify_all()

    @property
    def waiting(self) -> int:
        """Callers waiting for the lock now."""
        with self._condition:
            return len(self._waiting[True]) + len(self._waiting[False])


__all__ = ["PriorityLock"]
