"""Single-cell loaders: an AnnData object or ``.h5ad`` file, and scanpy's pbmc68k_reduced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.utils import Bunch

from ._bunch import _result


def load_anndata(
    path_or_adata: Any,
    label_key: str,
    layer: str | None = None,
    normalize: bool = False,
    target_sum: float = 1e4,
    *,
    return_X_y: bool = False,
) -> Bunch | tuple[Any, np.ndarray]:
    """Load features and cell labels from an AnnData object or ``.h5ad`` file.

    Sparse matrices stay sparse (CSR); nothing is densified. With
    ``normalize=True`` raw counts get the paper's preprocessing for
    single-cell data, through scanpy: library-size normalisation
    (``scanpy.pp.normalize_total``) then ``log1p``, on a copy of the matrix.

    Parameters
    ----------
    path_or_adata : str, Path or anndata.AnnData
        An ``.h5ad`` file or an AnnData object.
    label_key : str
        The ``obs`` column with the labels (e.g. cell type).
    layer : str, optional
        Use ``adata.layers[layer]`` instead of ``adata.X``.
    normalize : bool, default=False
        Scale each cell's counts to ``target_sum``, then take ``log1p``.
        Leave it off for data that is already normalised (check
        ``adata.uns.get("log1p")``).
    target_sum : float, default=1e4
        Counts per cell after normalisation.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (ndarray or scipy.sparse.csr_matrix of float32, shape
        (n_cells, n_genes)), ``target`` (ndarray of str, shape (n_cells,)),
        ``target_names`` (the labels, sorted), ``feature_names`` (the genes,
        ``var_names``), ``obs`` (a copy of the cells' metadata, a
        DataFrame), ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    KeyError
        If ``label_key`` or ``layer`` is missing; the message lists what exists.
    ValueError
        If some cells have no label, or ``normalize`` is asked of negative values
        (already scaled data).
    """
    import anndata

    if isinstance(path_or_adata, (str, Path)):
        path = Path(path_or_adata)
        if not path.exists():
            raise FileNotFoundError(f"No AnnData file at {path}.")
        adata = anndata.read_h5ad(path)
        source = path.name
    else:
        adata = path_or_adata
        source = "an AnnData object"
    if label_key not in adata.obs:
        raise KeyError(f"obs has no column {label_key!r}; its columns are {list(adata.obs.columns)}.")
    if layer is not None and layer not in adata.layers:
        raise KeyError(f"adata has no layer {layer!r}; its layers are {list(adata.layers)}.")
    labels = adata.obs[label_key]
    if labels.isna().any():
        raise ValueError(f"{int(labels.isna().sum())} cells have no {label_key!r} label.")
    X = adata.layers[layer] if layer is not None else adata.X
    X = _float32_matrix(X)
    if normalize:
        X = _float32_matrix(_normalize_counts(X, target_sum))
    y = labels.astype(str).to_numpy()
    matrix = f"layer {layer!r}" if layer is not None else "X"
    description = (
        f"{source}: {X.shape[0]} cells x {X.shape[1]} genes ({matrix}"
        f"{f', library-size normalised to {target_sum:g} then log1p' if normalize else ''}), "
        f"labels from obs[{label_key!r}] ({len(np.unique(y))} classes).\n"
    )
    return _result(
        return_X_y,
        "load_anndata",
        (X, y),
        "X, y",
        data=X,
        target=y,
        target_names=np.unique(y),
        feature_names=np.asarray(adata.var_names, dtype=str),
        obs=adata.obs.copy(),
        DESCR=description,
    )


def _float32_matrix(X: Any) -> Any:
    """``X`` as CSR float32 if sparse, else a float32 ndarray (no copy when it already is one)."""
    return sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, dtype=np.float32)


def _normalize_counts(X: Any, target_sum: float) -> Any:
    """Library-size normalisation and log1p through scanpy, on a copy; sparse stays sparse."""
    import anndata
    import scanpy

    if (X.data if sp.issparse(X) else X).min(initial=0) < 0:
        raise ValueError("normalize=True needs non-negative counts; this matrix has negative values (already scaled?).")
    counts = anndata.AnnData(X.copy())
    scanpy.pp.normalize_total(counts, target_sum=target_sum)
    scanpy.pp.log1p(counts)
    return counts.X


PBMC68K_DESCR = """\
scanpy's pbmc68k_reduced
------------------------

700 peripheral blood mononuclear cells from 10x Genomics' 68k PBMC data set
(Zheng et al., 2017), 765 highly variable genes, log-normalised and scaled
by scanpy, and the 10 cell types of ``obs["bulk_labels"]``. It ships with
scanpy (``scanpy.datasets.pbmc68k_reduced``).
"""


def load_pbmc68k(*, return_X_y: bool = False) -> Bunch | tuple[np.ndarray, np.ndarray]:
    """Load the 700 PBMC cells (765 genes, 10 types in ``bulk_labels``) that ship with scanpy.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        :func:`load_anndata`'s fields: ``data`` (ndarray of float32, shape
        (700, 765), scanpy's preprocessed expression), ``target`` (ndarray of
        str, shape (700,)), ``target_names``, ``feature_names``, ``obs``,
        ``DESCR``.
    (data, target) : tuple
        With ``return_X_y=True``.
    """
    import scanpy

    bunch = load_anndata(scanpy.datasets.pbmc68k_reduced(), "bulk_labels")
    bunch.DESCR = PBMC68K_DESCR
    return _result(return_X_y, "load_pbmc68k", (bunch.data, bunch.target), "X, y", **bunch)
