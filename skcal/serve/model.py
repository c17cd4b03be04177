"""The served model: a scikit-learn pipeline ending in a ``ContinualActiveClassifier``, and its scores.

The factory's pipeline is split in two. The steps before the classifier turn
a task's value (a text, or a decoded image) into features; they must be
stateless or already fitted, since the backend only ever calls their
``transform`` (the built-in sentence embedder and image converter are). The
classifier is a :class:`~skcal.ContinualActiveClassifier`: each CAL round is
one ``partial_fit`` on the new labels, the first is the seed round.

Scores (:func:`prediction_scores`): Label Studio sorts tasks by a prediction's
``score``, so the score is what makes sorting the Data Manager an
uncertainty-sampling queue.

========== ============================ ===============================
mode       score                        most uncertain first when sorted
========== ============================ ===============================
confidence max class probability        ascending
margin     best minus second-best prob. ascending
entropy    entropy / log(n classes)     descending
========== ============================ ===============================
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ..estimator import ContinualActiveClassifier
from .labelconfig import LabellingConfig

#: Score modes and the sort order that puts the most uncertain task first.
SCORE_MODES = {"confidence": "ascending", "margin": "ascending", "entropy": "descending"}


def prediction_scores(probabilities: np.ndarray, mode: str = "confidence") -> np.ndarray:
    """Score each row of class probabilities; see the module's table for the sort order each needs.

    Parameters
    ----------
    probabilities : ndarray of shape (n_samples, n_classes)
    mode : {"confidence", "margin", "entropy"}

    Returns
    -------
    ndarray of float64, shape (n_samples,), in [0, 1]

    Raises
    ------
    ValueError
        For an unknown mode.
    """
    if mode not in SCORE_MODES:
        raise ValueError(f"unknown score mode {mode!r}; choose from {sorted(SCORE_MODES)}.")
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    if mode == "confidence":
        return p.max(axis=1)
    if mode == "margin":
        top = np.sort(p, axis=1)[:, ::-1]
        return top[:, 0] - top[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return np.clip(entropy / np.log(p.shape[1]), 0.0, 1.0)


class ServedPipeline:
    """The factory's pipeline, split into feature steps and a classifier template.

    Parameters
    ----------
    pipeline : sklearn.pipeline.Pipeline or ContinualActiveClassifier
        Its last step must be a ``ContinualActiveClassifier``; every step
        before it needs ``transform``.
    config : LabellingConfig
        The classifier is told the config's classes up front (``classes=``),
        so a class first labelled late is known from the seed round on.

    Raises
    ------
    TypeError
        When the pipeline does not end in a ``ContinualActiveClassifier`` or
        an earlier step has no ``transform``.
    """

    def __init__(self, pipeline: Any, config: LabellingConfig):
        if isinstance(pipeline, ContinualActiveClassifier):
            pipeline = Pipeline([("classifier", pipeline)])
        if not isinstance(pipeline, Pipeline):
            raise TypeError(
                f"the factory returned {type(pipeline).__name__}; it must return a scikit-learn Pipeline "
                "ending in a ContinualActiveClassifier (or the classifier itself)."
            )
        *steps, (name, classifier) = pipeline.steps
        if not isinstance(classifier, ContinualActiveClassifier):
            raise TypeError(
                f"the pipeline's last step {name!r} is a {type(classifier).__name__}, not a ContinualActiveClassifier."
            )
        for step_name, step in steps:
            if step is not None and step != "passthrough" and not hasattr(step, "transform"):
                raise TypeError(f"the pipeline's step {step_name!r} ({type(step).__name__}) has no transform().")
        self.steps = [(step_name, step) for step_name, step in steps if step is not None and step != "passthrough"]
        self.classifier_name = name
        self.template = clone(classifier).set_params(classes=list(config.classes))

    def features(self, values: list) -> Any:
        """Run the feature steps on task values (texts, or decoded images).

        Parameters
        ----------
        values : list

        Returns
        -------
        Any
            What the classifier takes (an array, usually).
        """
        features: Any = values
        for _, step in self.steps:
            features = step.transform(features)
        return features

    def warm_up(self) -> None:
        """Call ``load()`` on the feature steps that have one (the sentence embedder loads its model), once.

        Safe from several threads at once: the steps' ``load`` must be (the
        sentence embedder's loads under a lock).
        """
        if not self.is_warm:
            for _, step in self.steps:
                if callable(getattr(step, "load", None)):
                    step.load()
            self._warm = True

    @property
    def is_warm(self) -> bool:
        """Whether :meth:`warm_up` has run (or no step has a model to load)."""
        return getattr(self, "_warm", False) or not any(callable(getattr(step, "load", None)) for _, step in self.steps)

    def cache_info(self) -> dict | None:
        """Return the first feature step's ``cache_info()`` (the sentence embedder's vector cache), if any.

        Returns
        -------
        dict or None
        """
        for _, step in self.steps:
            if callable(getattr(step, "cache_info", None)):
                return step.cache_info()
        return None

    def new_classifier(self) -> ContinualActiveClassifier:
        """Return an untrained copy of the factory's classifier, with the config's classes declared.

        Returns
        -------
        ContinualActiveClassifier
        """
        return clone(self.template)


def build_pipeline(factory: Callable, config: LabellingConfig) -> ServedPipeline:
    """Call a factory with the labelling config (if it takes one) and check what it returns.

    Parameters
    ----------
    factory : callable
        Returns a Pipeline ending in a ``ContinualActiveClassifier``. Called
        as ``factory(config=config)`` if it has a parameter named ``config``,
        ``factory(config)`` if it has another required positional parameter,
        else ``factory()``.
    config : LabellingConfig

    Returns
    -------
    ServedPipeline
    """
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return ServedPipeline(factory(config), config)
    if "config" in parameters:
        return ServedPipeline(factory(config=config), config)
    required = [
        p for p in parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]  # fmt: skip
    return ServedPipeline(factory(config) if required else factory(), config)


__all__ = ["SCORE_MODES", "ServedPipeline", "build_pipeline", "prediction_scores"]
