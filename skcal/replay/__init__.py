"""Round-training strategies: the AL baselines and replay-based continual learning.

``replay=`` on :class:`~skcal.ContinualActiveClassifier` accepts one of the
aliases in :data:`REPLAY_STRATEGIES`, a :class:`ReplayStrategy` subclass, or
an instance of one.
"""

from __future__ import annotations

from typing import Any

from ..utils.params import make_component
from .base import LabelledSetTraining, ReplayDraw, ReplayStrategy, Trainer
from .baselines import FineTune, Retrain, SeedRound, WarmStart
from .der import DarkExperienceReplay
from .er import ExperienceReplay
from .mir import MaximallyInterferedRetrieval
from .sd import ScaledDistillation
from .sds2 import SubmodularScaledDistillation

#: Strategy classes by the alias ``replay=`` accepts.
REPLAY_STRATEGIES: dict[str, type[ReplayStrategy]] = {
    cls.name: cls
    for cls in (
        Retrain,
        WarmStart,
        FineTune,
        ExperienceReplay,
        MaximallyInterferedRetrieval,
        DarkExperienceReplay,
        ScaledDistillation,
        SubmodularScaledDistillation,
    )
}


def make_strategy(replay: Any, params: dict | None = None) -> ReplayStrategy:
    """Build a fresh strategy from an alias, a class or an instance, with ``params`` set.

    Parameters
    ----------
    replay : str, type or ReplayStrategy
        An alias from :data:`REPLAY_STRATEGIES`, a subclass of
        :class:`ReplayStrategy`, or an instance (which is cloned, not modified).
    params : dict, optional
        Hyperparameters to set, e.g. ``{"alpha": 0.1}`` from ``replay__alpha``.
        A name the strategy lacks but another built-in strategy accepts is
        ignored, so one parameter grid can mix methods (``replay__alpha``
        means nothing to ``"retrain"``); a name no strategy accepts is an
        error.

    Returns
    -------
    ReplayStrategy
        A new strategy, its hyperparameters set and checked.

    Raises
    ------
    ValueError
        For an unknown alias (the message lists the valid ones), an
        unknown hyperparameter, or a hyperparameter value out of range
        (the message names ``replay__<name>``).
    TypeError
        For anything that is not a strategy.
    """
    return make_component(replay, REPLAY_STRATEGIES, ReplayStrategy, params, "replay", "replay strategy")


def display_name(replay: Any) -> str:
    """Return the name tables and plots give a strategy (``"retrain"`` is ``"AL"``, ``"er"`` is ``"CAL-ER"``).

    Parameters
    ----------
    replay : str, type or ReplayStrategy
        As ``replay=`` accepts; an unknown name is returned unchanged.

    Returns
    -------
    str
        The strategy's ``display_name``.
    """
    if isinstance(replay, str):
        strategy = REPLAY_STRATEGIES.get(replay.lower())
        return strategy.display_name if strategy is not None else replay
    cls = replay if isinstance(replay, type) else type(replay)
    return getattr(cls, "display_name", "") or cls.__name__


__all__ = [
    "REPLAY_STRATEGIES",
    "DarkExperienceReplay",
    "ExperienceReplay",
    "FineTune",
    "LabelledSetTraining",
    "MaximallyInterferedRetrieval",
    "ReplayDraw",
    "ReplayStrategy",
    "Retrain",
    "ScaledDistillation",
    "SeedRound",
    "SubmodularScaledDistillation",
    "Trainer",
    "WarmStart",
    "display_name",
    "make_strategy",
]
