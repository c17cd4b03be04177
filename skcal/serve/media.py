"""Task values to model inputs: texts as they are, images fetched and decoded.

An ``Image`` object's task field is a URL: a ``data:`` URI, an absolute
``http(s)`` URL, or a path on the Label Studio server (``/data/upload/...``,
``/storage-data/...``), resolved against the ``hostname`` that ``/setup``
sends. Requests to the Label Studio server carry its API token: a personal
access token (exchanged for an access token at ``/api/token/refresh``) or a
legacy token (``Authorization: Token ...``), from ``skcal serve
--label-studio-token`` or else the ``access_token`` of ``/setup``. Images are
decoded with Pillow, at most :data:`MAX_IMAGE_BYTES` each, and fetched
concurrently, at most ``workers`` at a time.
"""

from __future__ import annotations

import base64
import binascii
import io
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .labelconfig import LabellingConfig
from .labelstudio import LabelStudioClient, LabelStudioError

#: Largest image accepted, in bytes.
MAX_IMAGE_BYTES = 20 * 2**20


class MediaError(ValueError):
    """A task value that cannot be turned into a model input (an image that cannot be fetched or decoded)."""


class TaskValueLoader:
    """Turns task values into what the pipeline's first step takes.

    Parameters
    ----------
    client : LabelStudioClient or None
        Fetches images from the Label Studio server; None allows only
        ``data:`` URIs and other absolute URLs.
    timeout : float, default=30
        Seconds per image download.
    workers : int, default=8
        Images fetched at once.
    """

    def __init__(self, client: LabelStudioClient | None = None, timeout: float = 30.0, workers: int = 8):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}.")
        self.client = client
        self.timeout = timeout
        self.workers = workers

    def load(self, values: list, config: LabellingConfig) -> list:
        """Return texts unchanged, or images decoded (``PIL.Image.Image``).

        Parameters
        ----------
        values : list of str
        config : LabellingConfig

        Returns
        -------
        list

        Raises
        ------
        MediaError
            Naming the first value that failed.
        """
        loaded = self.load_each(values, config)
        failed = next((value for value in loaded if isinstance(value, MediaError)), None)
        if failed is not None:
            raise failed
        return loaded

    def load_each(self, values: list, config: LabellingConfig) -> list:
        """Like :meth:`load`, but a value that cannot be loaded gives its :class:`MediaError` in its place.

        Parameters
        ----------
        values : list of str
        config : LabellingConfig

        Returns
        -------
        list
            An input or a ``MediaError`` per value, in order.
        """
        if config.object_type != "Image":
            return list(values)
        remote = sum(not value.startswith("data:") for value in values)
        if remote <= 1 or self.workers == 1:
            return [self._image_or_error(value) for value in values]
        with ThreadPoolExecutor(min(self.workers, remote), thread_name_prefix="skcal-fetch") as pool:
            return list(pool.map(self._image_or_error, values))

    def _image_or_error(self, url: str) -> Any:
        try:
            return self.image(url)
        except MediaError as error:
            return error

    def image(self, url: str) -> Any:
        """Fetch and decode one image.

        Parameters
        ----------
        url : str

        Returns
        -------
        PIL.Image.Image
        """
        from PIL import Image, UnidentifiedImageError

        raw = self._bytes(url)
        try:
            image = Image.open(io.BytesIO(raw))
            image.load()
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
            raise MediaError(f"{_short(url)} is not an image Pillow can decode: {error}") from None
        return image

    def _bytes(self, url: str) -> bytes:
        if url.startswith("data:"):
            header, comma, payload = url.partition(",")
            if not comma or ";base64" not in header:
                raise MediaError(f"{_short(url)} is not a base64 data URI.")
            try:
                raw = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError) as error:
                raise MediaError(f"{_short(url)} has invalid base64: {error}") from None
        else:
            raw = self._download(url)
        if len(raw) > MAX_IMAGE_BYTES:
            raise MediaError(f"{_short(url)} has {len(raw)} bytes, more than {MAX_IMAGE_BYTES}.")
        return raw

    def _download(self, url: str) -> bytes:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme in ("http", "https"):
            if self.client is not None and self.client.owns(url):
                return self._from_label_studio(url)
            request = urllib.request.Request(url)
        elif not parsed.scheme and url.startswith("/"):
            if self.client is None:
                raise MediaError(f"{_short(url)} is a path on the Label Studio server, whose address is unknown.")
            return self._from_label_studio(url)
        else:
            raise MediaError(f"{_short(url)} is not a data URI, an http(s) URL or a Label Studio path.")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (http/https only)
                return response.read(MAX_IMAGE_BYTES + 1)
        except (urllib.error.URLError, OSError) as error:
            raise MediaError(f"cannot download {_short(url)}: {error}") from None

    def _from_label_studio(self, url: str) -> bytes:
        try:
            return self.client.get_bytes(url, MAX_IMAGE_BYTES, self.timeout)
        except LabelStudioError as error:
            raise MediaError(f"cannot download {_short(url)} from Label Studio: {error}") from None


def _short(url: str) -> str:
    return repr(url if len(url) <= 80 else url[:77] + "...")


__all__ = ["MAX_IMAGE_BYTES", "MediaError", "TaskValueLoader"]
