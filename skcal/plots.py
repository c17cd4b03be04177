"""Shim: the paper's figures moved to :mod:`skcal.bench.plots`; every name keeps working from here.

Shims of this kind: ``skcal.plots`` (this module) and ``skcal.campaigns``
(:mod:`skcal.bench.campaign`, :mod:`skcal.bench.runners`, :mod:`skcal.bench.progress`).
"""

from .bench.plots import (
    CAL_METHODS,
    entropy_correlation,
    forgetting,
    speedup_vs_accuracy,
    speedup_vs_budget,
    write_all,
)

__all__ = [
    "CAL_METHODS",
    "entropy_correlation",
    "forgetting",
    "speedup_vs_accuracy",
    "speedup_vs_budget",
    "write_all",
]
