"""Labels that change after the seed round: corrected, withdrawn, or of a class not seen before.

:class:`LabelChanges` is the part of :class:`~skcal.ContinualActiveClassifier`
that edits the labelled history between rounds (:meth:`~LabelChanges.relabel`,
:meth:`~LabelChanges.forget`) and grows the output layer when a round brings
a new class (``grow_output=True``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from .utils.embedding import last_linear_layer
from .utils.network import widened_output
from .utils.validation import check_labels, encode_labels


class LabelChanges:
    """Corrections between rounds and new classes, for :class:`~skcal.ContinualActiveClassifier` (a mixin)."""

    # -- labels first seen in a later round (grow_output) ------------------
    def _widen_output_to_classes(self) -> None:
        """With ``grow_output``, give a module built for fewer classes one output per class in ``classes_``."""
        layer = last_linear_layer(self.unwrapped_module())
        if self.grow_output and layer is not None and layer.out_features < len(self.fitted_classes_):
            self.module_ = widened_output(self.unwrapped_module(), len(self.fitted_classes_) - layer.out_features)

    def _unseen_labels(self, labels: np.ndarray) -> np.ndarray:
        known = set(self.classes_.tolist())
        return np.array(sorted({label for label in labels.tolist() if label not in known}))

    def _grow_output_layer(self, new_labels: np.ndarray) -> None:
        """Add one output unit per new label to the module's last Linear layer."""
        layer = last_linear_layer(self.unwrapped_module())
        if layer is None or layer.out_features != len(self.classes_):
            raise ValueError(
                f"grow_output needs the module's last torch.nn.Linear layer to emit one logit per class "
                f"({len(self.classes_)}); found {layer!r}. Declare every label with classes= instead."
            )
        seed = int(self.rng_.integers(2**62))  # the new units' weights are part of the seeded campaign
        with torch.random.fork_rng(devices=[], enabled=self.random_state is not None):
            if self.random_state is not None:
                torch.manual_seed(seed)
            self.module_ = widened_output(self.unwrapped_module(), len(new_labels))
        self.fitted_classes_ = np.concatenate([self.classes_, new_labels])
        self.labelled_history_.widen_logits(len(self.fitted_classes_))
        self.initialize_optimizer()

    # -- corrections between rounds: a label changed or withdrawn ----------
    def relabel(self, indices: Any, y: Any) -> LabelChanges:
        """Correct the labels of points already in the labelled history (an annotator changed their mind).

        The points keep their features, round ids and stored logits (the
        model's outputs at the end of their round, which DER and SD distil
        towards); from the next round on, replay and the AL baselines train
        on the new labels. The weights do not change until that round.
        Everything is checked first: a call that raises changes nothing.
        A checkpoint saved afterwards keeps the new labels.

        Parameters
        ----------
        indices : array-like of int
            Distinct positions in ``labelled_history_`` (``0 <= i < len(history)``).
        y : array-like
            The new labels, one per index, each one of ``classes_``.

        Returns
        -------
        self
            The estimator, its history relabelled.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before the seed round.
        ValueError
            For bad indices (out of range, repeated, not integers), a label
            count that differs from the index count, or a label outside
            ``classes_``.
        """
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("relabel() needs a labelled history: run the seed round first.")
        history = self.labelled_history_
        positions = history.checked_positions(indices)
        encoded = encode_labels(check_labels(y, len(positions)), self.classes_)
        history.relabel(positions, encoded)
        return self

    def forget(self, indices: Any) -> LabelChanges:
        """Remove points from the labelled history, so that no later round replays or trains on them.

        For a label that was withdrawn (a deleted annotation). The other
        points keep their order, labels, stored logits and round ids; a
        bounded replay memory loses the forgotten points. The weights keep
        what the points taught them until later rounds train on without
        them (``replay="retrain"`` starts afresh every round). Each round
        record in ``rounds_`` counts its forgotten points as ``n_forgotten``
        (``n_new`` stays what the round trained on). Everything is checked
        first, and the new history replaces the old one in one assignment:
        a call that raises changes nothing. Checkpoints keep the result.

        Parameters
        ----------
        indices : array-like of int
            Distinct positions in ``labelled_history_``.

        Returns
        -------
        self
            The estimator, the points gone from its history.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before the seed round.
        ValueError
            For bad indices, or indices covering every labelled point (start
            a new campaign with ``fit`` instead).
        """
        if not self.__sklearn_is_fitted__():
            raise NotFittedError("forget() needs a labelled history: run the seed round first.")
        history = self.labelled_history_
        positions = history.checked_positions(indices)
        if len(positions) == len(history):
            raise ValueError(
                f"forget() would remove all {len(history)} labelled points; start a new campaign with fit() instead."
            )
        rounds_of_forgotten = history.rounds[torch.from_numpy(positions).to(history.device)].cpu().numpy()
        forgotten_rounds = np.bincount(rounds_of_forgotten, minlength=len(self.rounds_))
        remaining = history.without(positions)
        records = [dict(record) for record in self.rounds_]
        for record, count in zip(records, forgotten_rounds.tolist(), strict=False):
            if count:
                record["n_forgotten"] = int(record.get("n_forgotten", 0)) + count
        self.labelled_history_, self.rounds_ = remaining, records
        return self


__all__ = ["LabelChanges"]
