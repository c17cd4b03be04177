"""Networks for CAL, returning logits and exposing penultimate embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class MLP(torch.nn.Module):
    """A multilayer perceptron: ``Linear-ReLU(-Dropout)`` blocks, then a linear head.

    Parameters
    ----------
    n_features : int
        Input width.
    n_classes : int
        Number of logits.
    hidden : sequence of int, default=(128,)
        Widths of the hidden layers.
    dropout : float, default=0.0
        Dropout after each hidden layer.
    """

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (128,), dropout: float = 0.0):
        super().__init__()
        layers: list[torch.nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
            if dropout:
                layers.append(torch.nn.Dropout(dropout))
            width = size
        self.body = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(width, n_classes)

    def embed(self, X: torch.Tensor) -> torch.Tensor:
        """Return the penultimate representation (the head's input)."""
        return self.body(X)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return the logits."""
        return self.head(self.embed(X))
