"""skorch callbacks that decide when a round's training stops.

They follow the convention of skorch's own ``EarlyStopping``: a callback
ends training by raising ``KeyboardInterrupt`` from ``on_epoch_end``, which
:class:`~skcal.ContinualActiveClassifier` treats as the end of the round, not
as a failure. skorch's ``EarlyStopping`` therefore composes with them: the
round ends at whichever rule fires first. An interrupt raised anywhere else
(Ctrl-C during a training step) fails the round, which rolls back.
"""

from __future__ import annotations

from typing import Any

from skorch.callbacks import Callback


class TrainAccuracyStop(Callback):
    """End a round once an epoch's training accuracy reaches the round's threshold.

    The threshold is the round's ``stop_accuracy``: ``train_accuracy_stop``
    for rounds that train on the whole labelled set (the seed round,
    ``retrain`` and ``warmstart``, as in the reference protocol), None (never
    stop early) for replay rounds, which run ``round_epochs`` epochs.
    Outside a round (plain skorch training) it does nothing.
    """

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        """Stop if the epoch's training accuracy reached the threshold."""
        round_ = getattr(net, "round_", None)
        if round_ is None or round_.stop_accuracy is None or round_.epochs == 0:
            return
        if round_.train_accuracy >= round_.stop_accuracy:
            raise KeyboardInterrupt


__all__ = ["TrainAccuracyStop"]
