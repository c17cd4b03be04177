"""How data reaches the network: one-gather datasets and iterators, the round's shuffle and its stop set.

:class:`Batching` is the part of :class:`~skcal.ContinualActiveClassifier`
that implements skorch's data hooks: ``get_dataset`` (a
:class:`~skcal.utils.data.BatchedDataset`, one indexed gather per batch),
``get_iterator`` (the round's seeded shuffle; DataLoaders an accelerator
can shard), ``get_split_datasets`` (the stop set of a held-out round) and
``evaluation_step`` (its scoring, counted in the round).
"""

from __future__ import annotations

from typing import Any

import torch
from skorch.dataset import Dataset
from skorch.utils import is_dataset
from torch.utils.data import DataLoader, Subset

from .utils.data import BatchedDataset, BatchIterator, collate_batch, is_batched_dataset


class Batching:
    """Skorch's data hooks for :class:`~skcal.ContinualActiveClassifier` (a mixin)."""

    def get_dataset(self, X: Any, y: Any = None) -> Any:
        """Wrap ``X`` in a :class:`~skcal.utils.data.BatchedDataset` (one gather per batch).

        A ``Dataset`` passed as ``X``, or a custom ``dataset=`` parameter, is
        used as skorch would.

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix, dict of arrays or Dataset
            The features.
        y : array-like or None, default=None
            The encoded labels.

        Returns
        -------
        torch.utils.data.Dataset
            The dataset the iterators draw batches from.
        """
        if is_dataset(X) or self.dataset is not Dataset:
            return super().get_dataset(X, y)
        return BatchedDataset(X, y)

    def get_split_datasets(self, X: Any, y: Any = None, **fit_params: Any) -> tuple:
        """Hold a round's stop set out of its training data (skorch's ``train_split`` hook).

        In a round whose length is decided on held-out evidence
        (``round_epochs="auto"``), :meth:`~skcal.round.Round.split_stop_set`
        chooses the stop set, which becomes ``round_.stop_set`` for the
        stopping rule (:class:`~skcal.callbacks.HeldOutRoundStop`) to score;
        skorch gets no validation set, so it runs no validation pass.
        Otherwise skorch's ``train_split`` applies (None by default: no split).

        Parameters
        ----------
        X : array-like, torch.Tensor, scipy.sparse matrix or dict of arrays
            The round's training features.
        y : array-like or None, default=None
            Their encoded labels.
        **fit_params : dict
            Passed to ``train_split``.

        Returns
        -------
        dataset_train : torch.utils.data.Dataset
            What the round trains on.
        dataset_valid : torch.utils.data.Dataset or None
            Skorch's validation set; None in a round that holds out a stop set.
        """
        round_ = self.round_
        if round_ is None or round_.stop_split is None:
            return super().get_split_datasets(X, y, **fit_params)
        dataset = self.get_dataset(X, y)
        train, held_out = round_.split_stop_set(y)
        if len(held_out):
            round_.stop_set, round_.stop_labels = Subset(dataset, held_out), torch.as_tensor(y)[held_out]
            round_.held_out = held_out
        return Subset(dataset, train), None

    def evaluation_step(self, batch: Any, training: bool = False) -> Any:
        """Run skorch's evaluation step; during a round its samples count as forwarded (the stop set's scoring).

        Parameters
        ----------
        batch : tuple
            ``(X, y)`` from an iterator.
        training : bool, default=False
            Whether the module is put in training mode.

        Returns
        -------
        torch.Tensor
            The module's outputs on the batch.
        """
        y_pred = super().evaluation_step(batch, training=training)
        if self.round_ is not None:
            self.round_.count(forwarded=len(y_pred))
        return y_pred

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """Build skorch's iterator, with one-gather batches and the round's seeded shuffle.

        Parameters
        ----------
        dataset : torch.utils.data.Dataset
            The data to iterate over.
        training : bool, default=False
            Whether this is the training iterator (``iterator_train__*``
            parameters, shuffled under the round's generator) or not
            (``iterator_valid__*``).

        Returns
        -------
        iterable
            Batches of ``(X, y)``.
        """
        prefix = "iterator_train" if training else "iterator_valid"
        iterator = getattr(self, prefix)
        kwargs = self.get_params_for(prefix)
        kwargs.setdefault("batch_size", self.batch_size)
        if kwargs["batch_size"] == -1:
            kwargs["batch_size"] = len(dataset)
        if iterator is DataLoader:
            if training and kwargs.get("shuffle") and self.round_ is not None:
                kwargs.setdefault("generator", self.round_.shuffle_generator)
            if is_batched_dataset(dataset):
                # an accelerator shards DataLoaders only: it would give every process every batch of a BatchIterator
                if set(kwargs) <= BatchIterator.accepted and not self.processes().shards_data_loaders:
                    return BatchIterator(dataset, **kwargs)
                kwargs.setdefault("collate_fn", collate_batch)
            # A DataLoader without a generator draws its base seed from torch's
            # global RNG, so plain prediction would perturb the user's seed.
            kwargs.setdefault("generator", torch.Generator())
        return iterator(dataset, **kwargs)


__all__ = ["Batching"]
