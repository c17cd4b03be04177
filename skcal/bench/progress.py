"""Progress of a benchmark run: bars with an ETA on a terminal, one plain line per campaign in a log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import Any, TextIO

from ..utils.params import Interval, validate_params


def is_terminal(stream: Any) -> bool:
    """Return whether ``stream`` is an open terminal (where progress bars can redraw themselves).

    Parameters
    ----------
    stream : file-like

    Returns
    -------
    bool
        False for files, pipes, closed streams and objects without ``isatty``.
    """
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or closed
        return False


def format_duration(seconds: float) -> str:
    """Return ``seconds`` as ``m:ss``, or ``h:mm:ss`` from an hour on.

    Parameters
    ----------
    seconds : float

    Returns
    -------
    str
    """
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class BenchmarkProgress:
    """The progress of a benchmark run, for a person at a terminal or for a log file.

    On a terminal: a bar with an ETA over all the rounds still to train, and
    one per campaign over its rounds (tqdm), with the log lines printed above
    them. Anywhere else (a file, a pipe, a CI log): no bars, no carriage
    returns and no escape sequences, only the log lines, and each finished
    campaign's line ends with the rounds done, the time so far and the time
    left, e.g. ``[12/48 rounds, 0:21 so far, about 1:03 left]``.

    Parameters
    ----------
    total_rounds : int, optional
        Rounds of all campaigns this progress will follow (across datasets);
        None lets each :func:`~skcal.bench.run_benchmark` call add its own.
    enabled : bool, default=True
        False shows nothing (:meth:`write` still writes the results).
    stream : file-like, optional
        Where the bars and log lines go; by default ``sys.stderr``.
    bars : bool, optional
        Draw progress bars; by default only when ``stream`` is a terminal.

    Attributes
    ----------
    bars : bool
        Whether bars are drawn (never when ``enabled`` is False).
    rounds_total, rounds_completed : int
        The rounds to train, and those trained so far.
    """

    @validate_params(
        {
            "total_rounds": [Interval(Integral, 0, None, closed="left"), None],
            "enabled": ["boolean"],
            "bars": ["boolean", None],
        }
    )
    def __init__(
        self, total_rounds: int | None = None, enabled: bool = True, stream: Any = None, bars: bool | None = None
    ):
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.bars = enabled and (is_terminal(self.stream) if bars is None else bars)
        self.fixed_total = total_rounds is not None
        self.rounds_total = total_rounds or 0
        self.rounds_completed = 0
        self.started = time.monotonic()
        self._campaign_ended = False
        self.overall = None
        if self.bars:
            from tqdm import tqdm

            self.overall = tqdm(
                total=self.rounds_total,
                desc="all campaigns",
                unit="round",
                position=0,
                file=self.stream,
                dynamic_ncols=True,
            )

    def expect(self, n_rounds: int) -> None:
        """Add ``n_rounds`` to the overall total, unless the total was given up front."""
        if self.fixed_total:
            return
        self.rounds_total += n_rounds
        if self.overall is not None:
            self.overall.total = self.rounds_total
            self.overall.refresh()

    @contextmanager
    def campaign(self, description: str, n_rounds: int) -> Iterator[Callable[[], None]]:
        """Follow one campaign (with its own bar on a terminal); yield the function that marks a round done."""
        bar = None
        if self.bars:
            from tqdm import tqdm

            bar = tqdm(
                total=n_rounds,
                desc=description,
                unit="round",
                position=1,
                leave=False,
                file=self.stream,
                dynamic_ncols=True,
            )

        def advance() -> None:
            self.rounds_completed += 1
            if bar is not None:
                bar.update()
                self.overall.update()

        try:
            yield advance
        finally:
            if bar is not None:
                bar.close()
            self._campaign_ended = True

    def rounds_done(self, n_rounds: int) -> None:
        """Count ``n_rounds`` rounds done at once: a campaign that finished elsewhere (on a cluster)."""
        self.rounds_completed += n_rounds
        if self.overall is not None:
            self.overall.update(n_rounds)
        self._campaign_ended = True

    def status(self) -> str:
        """Return the rounds done of all, the time so far and, once a round is done, the time left.

        Returns
        -------
        str
            E.g. ``12/48 rounds, 0:21 so far, about 1:03 left``.
        """
        elapsed = time.monotonic() - self.started
        text = f"{self.rounds_completed}/{self.rounds_total} rounds, {format_duration(elapsed)} so far"
        if 0 < self.rounds_completed < self.rounds_total:
            left = elapsed / self.rounds_completed * (self.rounds_total - self.rounds_completed)
            text += f", about {format_duration(left)} left"
        return text

    def log(self, line: str) -> None:
        """Print a line: above the bars on a terminal; else as is, a finished campaign's with :meth:`status`.

        Nothing is printed when the progress is disabled.
        """
        if not self.enabled:
            return
        if self.overall is not None:
            self.overall.write(line, file=self.stream)
            return
        if self._campaign_ended:
            line = f"{line} [{self.status()}]"
            self._campaign_ended = False
        print(line, file=self.stream, flush=True)

    def write(self, text: str, file: TextIO | None = None) -> None:
        """Write results (a table) to ``file``, ``sys.stdout`` by default, without breaking the bars."""
        file = sys.stdout if file is None else file
        if self.overall is not None:
            from tqdm import tqdm

            tqdm.write(text, file=file)
        else:
            print(text, file=file, flush=True)

    def close(self) -> None:
        """Close the overall bar (if any)."""
        if self.overall is not None:
            self.overall.close()
