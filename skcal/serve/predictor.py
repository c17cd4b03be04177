"""``/predict``'s work: tasks to predictions, in bounded batches, large requests one at a time.

A request is loaded, featurised and predicted ``batch`` tasks at a time, so
its memory does not grow with its size beyond the answer itself. Requests of
more than ``batch`` tasks take turns (at most one runs; the next waits up to
:data:`HEAVY_WAIT_SECONDS`, then gets a 503 with ``Retry-After``), and give
the allocator's free memory back when they finish; short requests never wait
for them (the sentence encoder serves a short call between two batches of a
long one, see :mod:`skcal.serve.lanes`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from .labelconfig import LabellingConfig
from .media import MediaError, TaskValueLoader
from .memory import release_free_memory
from .model import ServedPipeline, prediction_scores
from .protocol import ProtocolError, prediction

logger = logging.getLogger(__name__)

#: How long a request of more than ``batch`` tasks waits for the one before it, before a 503.
HEAVY_WAIT_SECONDS = 120.0


class Predictor:
    """Answers ``/predict`` from a published campaign.

    Parameters
    ----------
    loader : TaskValueLoader
    score : {"confidence", "margin", "entropy"}
    batch : int, default=256
        Tasks per batch; larger requests run one at a time.
    """

    def __init__(self, loader: TaskValueLoader, score: str, batch: int = 256):
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"predict_batch must be a whole number of at least 1, got {batch!r}.")
        self.loader = loader
        self.score = score
        self.batch = batch
        self._heavy = threading.BoundedSemaphore(1)

    def predict(self, campaign: Any, pipeline: ServedPipeline, config: LabellingConfig, tasks: list) -> dict:
        """Predict every task with the campaign's classifier.

        Parameters
        ----------
        campaign : Campaign
            Trained (its classifier is not None).
        pipeline : ServedPipeline
        config : LabellingConfig
        tasks : list of TaskInput

        Returns
        -------
        dict
            ``{"results": [...], "model_version": ...}``.

        Raises
        ------
        ProtocolError
            422 for an image that cannot be loaded; 503 when another large
            request holds the turn too long.
        """
        classifier, started = campaign.classifier, time.monotonic()
        heavy = len(tasks) > self.batch
        if heavy and not self._heavy.acquire(timeout=HEAVY_WAIT_SECONDS):
            raise ProtocolError(
                503,
                f"/predict: another request of more than {self.batch} tasks has been running for over "
                f"{HEAVY_WAIT_SECONDS:.0f} s; retry later, or send fewer tasks per request.",
                {"Retry-After": "30"},
            )
        try:
            version, results = campaign.model_version, []
            classes = np.asarray(classifier.classes_)
            for start in range(0, len(tasks), self.batch):
                chunk = tasks[start : start + self.batch]
                try:
                    inputs = self.loader.load([task.value for task in chunk], config)
                except MediaError as error:
                    raise ProtocolError(422, f"/predict: {error}") from None
                probabilities = classifier.predict_proba(pipeline.features(inputs))
                scores = prediction_scores(probabilities, self.score)
                labels = classes[probabilities.argmax(axis=1)]
                pairs = zip(labels, scores, strict=True)
                results += [prediction(str(label), score, config, version) for label, score in pairs]
        finally:
            if heavy:
                self._heavy.release()
                release_free_memory()
        log = logger.info if heavy else logger.debug
        log("skcal serve: predicted %d task(s) in %.2f s", len(results), time.monotonic() - started)
        return {"results": results, "model_version": version}


__all__ = ["HEAVY_WAIT_SECONDS", "Predictor"]
