"""Every exception skcal defines, in one place; each is also importable from the module that raises it."""

from __future__ import annotations

from typing import Any


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: corrupt, inconsistent, of another format, or for another module."""


class BenchmarkInputError(ValueError):
    """A benchmark input that cannot be used, found before any training.

    Parameters
    ----------
    parameter : str
        The argument at fault, as :mod:`skcal.bench` names it
        (``"dataset"``, ``"label_key"``, ``"data_root"``, ``"medmnist_flag"``,
        ``"model"``, ``"methods"``, ``"budgets"``, ``"initial"``, ``"query"``,
        ``"seeds"``, ``"pool_size"``, ``"test_size"``, ``"round_epochs"``,
        ``"max_epochs"``, ``"device"``, ``"out"``); ``skcal bench`` reports
        it as the flag ``--<parameter>`` with dashes.
    message : str
        What is wrong, and what would be right.

    Attributes
    ----------
    parameter : str
        As passed.
    """

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


class CampaignFailedError(RuntimeError):
    """Campaigns failed on the cluster; the other campaigns of the run finished (and were stored).

    Parameters
    ----------
    failures : list of tuple
        ``(campaign, exception or reason)`` of each failed campaign.

    Attributes
    ----------
    failures : list of tuple
        As passed.
    """

    def __init__(self, failures: list):
        self.failures = failures
        shown = "; ".join(f"{campaign.description}: {_describe(error)}" for campaign, error in failures)
        super().__init__(f"{len(failures)} campaign(s) failed on the Dask cluster: {shown}")


def _describe(error: Any) -> str:
    return f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)


class RoundFailedOnAnotherProcess(RuntimeError):
    """Raised on every process whose round was fine when another process's round failed.

    The round is rolled back on every process; the failing ones raise their
    own error.

    Parameters
    ----------
    index : int
        The round's id.
    ranks : list of int
        The processes that reported the failure.
    """

    def __init__(self, index: int, ranks: list):
        super().__init__(f"Round {index} failed on process(es) {ranks}; it was rolled back here too (see their error).")
        self.index = index
        self.ranks = ranks


__all__ = ["BenchmarkInputError", "CampaignFailedError", "CheckpointError", "RoundFailedOnAnotherProcess"]
