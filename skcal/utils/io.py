"""Atomic file writes: a reader sees the previous file or the whole new one, never part of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(target: str | Path, prefix: str = ".tmp-", suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """Write ``target`` through a temporary file in its folder, then ``os.replace`` it into place.

    The temporary file is flushed and ``fsync``-ed before the rename, so a crash
    leaves the previous file (or none); any exception, ``KeyboardInterrupt``
    included, removes the temporary file and propagates.

    Parameters
    ----------
    target : str or Path
        The file to write; its folder is created if missing.
    prefix, suffix : str
        Name of the temporary file, so that its owner can recognise stale ones.

    Yields
    ------
    BinaryIO
        The temporary file, open for binary writing.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
