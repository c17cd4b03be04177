"""Downloads into the data cache: checked against a published checksum, written atomically."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

#: The package's logger (``skcal.datasets``), as before the loaders were split into modules.
logger = logging.getLogger(__package__)

#: Seconds a download may wait for the server before it fails.
DOWNLOAD_TIMEOUT = 60.0


def _download(urls: Sequence[str], destination: Path, algorithm: str, digest: str) -> Path:
    """Download the first of ``urls`` that answers with the right checksum to ``destination``, atomically.

    Raises
    ------
    FileNotFoundError
        If none did; the message gives each URL's error.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        handle, partial = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
        checksum = hashlib.new(algorithm)
        logger.info("downloading %s to %s", url, destination)
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
                while chunk := response.read(1 << 20):
                    checksum.update(chunk)
                    out.write(chunk)
        except (OSError, ValueError, http.client.HTTPException) as error:  # URLError is an OSError
            failures.append(f"{url}: {error}")
            os.unlink(partial)
            continue
        if checksum.hexdigest() != digest:
            failures.append(f"{url}: {algorithm} {checksum.hexdigest()}, expected {digest}")
            os.unlink(partial)
            continue
        os.replace(partial, destination)
        return destination
    raise FileNotFoundError(f"Could not download {destination.name}: " + "; ".join(failures))
