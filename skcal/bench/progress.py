"""Progress bars of a benchmark run, with an ETA: all the rounds still to train, and each campaign's."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from numbers import Integral
from typing import Any

from ..utils.params import Interval, validate_params


class BenchmarkProgress:
    """Progress bars with an ETA: one over all the rounds still to train, one per campaign over its rounds.

    Parameters
    ----------
    total_rounds : int, optional
        Rounds of all campaigns this progress will follow (across datasets);
        None lets each :func:`~skcal.bench.run_benchmark` call add its own.
    enabled : bool, default=True
        False shows nothing.
    stream : file-like, optional
        Where the bars go; by default ``sys.stderr``.
    """

    @validate_params({"total_rounds": [Interval(Integral, 0, None, closed="left"), None], "enabled": ["boolean"]})
    def __init__(self, total_rounds: int | None = None, enabled: bool = True, stream: Any = None):
        from tqdm import tqdm

        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.fixed_total = total_rounds is not None
        self.overall = tqdm(
            total=total_rounds or 0,
            desc="all campaigns",
            unit="round",
            position=0,
            disable=not enabled,
            file=self.stream,
            dynamic_ncols=True,
        )

    def expect(self, n_rounds: int) -> None:
        """Add ``n_rounds`` to the overall total, unless the total was given up front."""
        if not self.fixed_total:
            self.overall.total += n_rounds
            self.overall.refresh()

    @contextmanager
    def campaign(self, description: str, n_rounds: int) -> Iterator[Callable[[], None]]:
        """Show one campaign's bar; yield the function that marks a round done."""
        from tqdm import tqdm

        bar = tqdm(
            total=n_rounds,
            desc=description,
            unit="round",
            position=1,
            leave=False,
            disable=not self.enabled,
            file=self.stream,
            dynamic_ncols=True,
        )

        def advance() -> None:
            bar.update()
            self.overall.update()

        try:
            yield advance
        finally:
            bar.close()

    def rounds_done(self, n_rounds: int) -> None:
        """Count ``n_rounds`` rounds done at once on the overall bar: a campaign that finished elsewhere."""
        self.overall.update(n_rounds)

    def log(self, line: str) -> None:
        """Print a line above the bars (nothing when disabled)."""
        if self.enabled:
            self.overall.write(line, file=self.stream)

    def close(self) -> None:
        """Close the overall bar."""
        self.overall.close()
