"""Background threads of the backend: the training worker and the prediction refresher.

:class:`TrainingWorker` runs the backend's step (read the journal, apply the
events, train a round when one is due, commit) in its own thread, woken by
every acknowledged webhook, so that ``/predict`` and ``/webhook`` answer while
a round trains. A step that fails is retried after ``retry_seconds``, or at
the next wake-up; its error is kept for ``/health``.

:class:`CoalescingRunner` runs a slow call (asking Label Studio to retrieve
predictions) in its own thread: requests that arrive while it runs are
merged into one more run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class TrainingWorker:
    """Calls ``step(train_now)`` in a background thread whenever woken.

    Parameters
    ----------
    step : callable
        ``step(train_now: bool) -> None``; raises on failure.
    retry_seconds : float, default=30
        After a failed step, try again this long later (and no sooner).
    max_retry_seconds : float, default=300
        The longest wait between two tries, however many failed.
    name : str, default="skcal-training"
        The thread's name.
    """

    def __init__(
        self,
        step: Callable[[bool], None],
        retry_seconds: float = 30.0,
        max_retry_seconds: float = 300.0,
        name: str = "skcal-training",
    ):
        self.step = step
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max(max_retry_seconds, retry_seconds)
        self.condition = threading.Condition()
        self.wakeups = 0
        self.train_now = False
        self.busy = False
        self.stopping = False
        self.failed = False
        self.failures = 0
        self.retry_at: float | None = None
        self.last_error: str | None = None
        self.steps_done = 0
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed steps in a row.

        Parameters
        ----------
        failures : int

        Returns
        -------
        float
        """
        return min(self.retry_seconds * 2.0 ** max(failures - 1, 0), self.max_retry_seconds)

    def retry_soon(self) -> None:
        """Cut the current back-off short: what made the steps fail is known to have cleared."""
        with self.condition:
            if self.failed:
                self.retry_at = time.monotonic()
                self.condition.notify_all()

    def start(self) -> None:
        """Start the thread."""
        self.thread.start()

    def wake(self, train_now: bool = False) -> None:
        """Ask for a step (with ``train_now``: train on whatever labels are pending).

        Parameters
        ----------
        train_now : bool, default=False
        """
        with self.condition:
            self.wakeups += 1
            self.train_now = self.train_now or train_now
            self.condition.notify_all()

    def _due(self) -> bool:
        if self.failed:  # backing off: only the retry time starts the next step
            return time.monotonic() >= self.retry_at
        return bool(self.wakeups)

    def _run(self) -> None:
        while True:
            with self.condition:
                while not self.stopping and not self._due():
                    remaining = None if not self.failed else max(self.retry_at - time.monotonic(), 0.0)
                    self.condition.wait(remaining)
                if self.stopping:
                    return
                train_now, self.train_now, self.wakeups, self.busy = self.train_now, False, 0, True
            try:
                self.step(train_now)
            except Exception as error:  # a failed round is reported and retried, never fatal to the server
                with self.condition:
                    self.failures += 1
                    delay = self.backoff(self.failures)
                    self.failed, self.last_error = True, f"{type(error).__name__}: {error}"
                    self.retry_at = time.monotonic() + delay
                    self.train_now = self.train_now or train_now
                    failures = self.failures
                if failures <= 3 or failures % 10 == 0:  # the traceback once, then a line now and then
                    logger.error("skcal serve: training step failed (%d in a row; next try in %.0f s): %s",
                                 failures, delay, self.last_error, exc_info=failures == 1)  # fmt: skip
            else:
                with self.condition:
                    self.failed, self.last_error, self.failures, self.retry_at = False, None, 0, None
            finally:
                with self.condition:
                    self.busy = False
                    self.steps_done += 1
                    self.condition.notify_all()

    def wait_idle(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until no step is running or queued and ``done()`` holds, or the last step failed.

        Parameters
        ----------
        done : callable
            ``done() -> bool``: the work is finished (e.g. every journal event applied).
        timeout : float
            Seconds.

        Returns
        -------
        bool
            True when ``done()`` holds; False on timeout or a failed step.
        """
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                if not self.busy and (not self.wakeups or self.failed):
                    if done():
                        return True
                    if self.failed:
                        return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.condition.wait(min(remaining, 0.2))

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop after the current step (waiting at most ``timeout`` seconds for it).

        Parameters
        ----------
        timeout : float, default=60

        Returns
        -------
        bool
            True when the thread has ended; False when the step was still
            running after ``timeout`` (it is abandoned: a daemon thread).
        """
        with self.condition:
            self.stopping = True
            self.condition.notify_all()
        if self.thread.is_alive():
            self.thread.join(timeout)
        return not self.thread.is_alive()


class CoalescingRunner:
    """Runs ``call()`` in a background thread on request; requests during a run make one more run.

    Parameters
    ----------
    call : callable
        ``call() -> None``; exceptions are logged.
    name : str
    """

    def __init__(self, call: Callable[[], None], name: str = "skcal-refresh"):
        self.call = call
        self.condition = threading.Condition()
        self.requested = False
        self.running = False
        self.stopping = False
        self.runs = 0
        self.last_error: str | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def request(self) -> None:
        """Ask for a run."""
        with self.condition:
            self.requested = True
            self.condition.notify_all()

    def _run(self) -> None:
        while True:
            with self.condition:
                while not self.requested and not self.stopping:
                    self.condition.wait()
                if self.stopping:
                    return
                self.requested, self.running = False, True
            try:
                self.call()
                error = None
            except Exception as exception:  # reported on /health; the next round asks again
                logger.warning("skcal serve: %s", exception)
                error = f"{type(exception).__name__}: {exception}"
            with self.condition:
                self.running, self.last_error = False, error
                self.runs += 1
                self.condition.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is running or requested.

        Parameters
        ----------
        timeout : float

        Returns
        -------
        bool
            False on timeout.
        """
        deadline = time.monotonic() + timeout
        with self.condition:
            while self.running or self.requested:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.condition.wait(remaining)
            return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current run.

        Parameters
        ----------
        timeout : float, default=10
        """
        with self.condition:
            self.stopping = True
            self.condition.notify_all()
        self.thread.join(timeout)


__all__ = ["CoalescingRunner", "TrainingWorker"]
