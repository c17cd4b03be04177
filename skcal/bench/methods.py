"""What the benchmark can run: every replay strategy, and baselines that are a strategy with settings.

A method is a replay alias (:data:`skcal.replay.REPLAY_STRATEGIES`), or one of
:data:`BASELINES`: a strategy run with estimator parameters of its own, such
as AL with warm start and shrink and perturb (Ash & Adams 2020), which can
beat retraining from scratch (docs/strategies.md).
"""

from __future__ import annotations

from ..replay import REPLAY_STRATEGIES, display_name

#: Baselines beyond the strategies: name -> (replay alias, estimator parameters, label in tables and plots).
BASELINES: dict[str, tuple[str, dict, str]] = {
    "warmstart-sp": (
        "warmstart",
        {"plasticity": "shrink_perturb", "plasticity__shrink": 0.4, "plasticity__noise": 0.1},
        "AL w/ WS + SP",
    ),
}

#: Every method name the benchmark accepts.
METHODS: list[str] = [*REPLAY_STRATEGIES, *BASELINES]


def method_settings(method: str) -> tuple[str, dict]:
    """Return the replay alias a method trains with and the estimator parameters it sets.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.

    Returns
    -------
    replay : str
    params : dict
    """
    if method in BASELINES:
        replay, params, _ = BASELINES[method]
        return replay, dict(params)
    return method, {}


def method_label(method: str) -> str:
    """Return the name tables and plots give a method (``"retrain"`` is ``"AL"``).

    Parameters
    ----------
    method : str

    Returns
    -------
    str
    """
    return BASELINES[method][2] if method in BASELINES else display_name(method)


__all__ = ["BASELINES", "METHODS", "method_label", "method_settings"]
