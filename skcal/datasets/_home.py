"""The data cache: where the loaders look for their files and download them."""

from __future__ import annotations

import os
from pathlib import Path


def get_data_home(data_home: str | Path | None = None) -> Path:
    """Return the data cache folder: ``data_home`` if given, else ``$SKCAL_DATA`` if set, else ``~/.cache/skcal``.

    ``scripts/install_data.sh`` downloads into it; the loaders look there
    first, each in its own subfolder. The folder is not created.

    Parameters
    ----------
    data_home : str or Path, optional
        A folder to use instead of the default; ``~`` is expanded.

    Returns
    -------
    Path
        The folder (which may not exist).
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    return Path(os.environ.get("SKCAL_DATA") or "~/.cache/skcal").expanduser()
