"""Running the backend: ``skcal serve`` and :func:`serve` for embedding it in a program.

:func:`make_backend` builds a :class:`~skcal.serve.backend.LabelStudioBackend`
from command-line style settings; :func:`serve` runs it under uvicorn until
interrupted (Ctrl-C or SIGTERM stop it after the round in progress; a killed
process loses nothing it acknowledged, see :mod:`skcal.serve.journal`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from .app import Credentials, create_app
from .backend import LabelStudioBackend
from .factories import resolve_factory
from .labelstudio import LabelStudioClient

logger = logging.getLogger(__name__)


def make_backend(
    state_dir: str | Path,
    factory: str | Callable = "auto",
    train_every: int = 10,
    uncertainty: str = "confidence",
    control: str | None = None,
    label_studio_url: str | None = None,
    label_studio_token: str | None = None,
    refresh_predictions: bool = True,
) -> LabelStudioBackend:
    """Build a backend from ``skcal serve``'s settings.

    Parameters
    ----------
    state_dir : str or Path
    factory : str or callable, default="auto"
        See :func:`skcal.serve.factories.resolve_factory`.
    train_every : int, default=10
    uncertainty : {"confidence", "margin", "entropy"}, default="confidence"
    control : str, optional
    label_studio_url, label_studio_token : str, optional
        The Label Studio server and an API token (personal access token or
        legacy token), for images stored there and refreshing predictions.
    refresh_predictions : bool, default=True

    Returns
    -------
    LabelStudioBackend
    """
    client = None
    if label_studio_url:
        client = LabelStudioClient(label_studio_url, label_studio_token)
    return LabelStudioBackend(
        resolve_factory(factory),
        state_dir,
        train_every=train_every,
        score=uncertainty,
        control=control,
        label_studio=client,
        refresh_predictions=refresh_predictions,
    )


def serve(
    backend: LabelStudioBackend,
    host: str = "127.0.0.1",
    port: int = 9090,
    credentials: Credentials | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``backend`` over HTTP until interrupted, then stop its worker.

    Parameters
    ----------
    backend : LabelStudioBackend
    host : str, default="127.0.0.1"
    port : int, default=9090
        Label Studio's usual ML-backend port.
    credentials : Credentials, optional
    log_level : str, default="info"
    """
    import uvicorn

    app = create_app(backend, credentials)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=log_level == "debug")
    server = uvicorn.Server(config)
    logger.info("skcal serve: %s on http://%s:%d (state in %s)", backend.model_version, host, port, backend.state_dir)
    try:
        server.run()
    finally:
        backend.close()


__all__ = ["make_backend", "serve"]
