"""Running the backend: ``skcal serve`` and :func:`serve` for embedding it in a program.

:func:`make_backend` builds a :class:`~skcal.serve.backend.LabelStudioBackend`
from command-line style settings; :func:`serve` runs it under uvicorn until
interrupted. In order:

1. The allocator is tuned (:mod:`~skcal.serve.memory`), the open-file limit
   raised, and repeated log lines rate-limited (:mod:`~skcal.serve.connections`).
2. The model's feature steps load (the sentence encoder) **before the port
   opens**, so the first ``/predict`` after a restart never races the load.
3. uvicorn serves, with a request-head timeout, a body timeout, a keep-alive
   timeout and a connection limit (:class:`ServerLimits`).
4. On SIGTERM or Ctrl-C, the server stops accepting connections and answers
   the requests in flight (at most ``limits.drain`` seconds); then the round
   in progress, if any, finishes and commits, for at most
   ``limits.shutdown_timeout`` seconds, after which it is abandoned: its labels
   stay in the journal and train at the next start, and commits are atomic,
   so nothing is lost or half written either way. A second signal abandons it
   at once. (uvicorn re-raises the signal after it stops, which killed the
   process before the round could commit; :class:`_GracefulServer` does not.)

A killed process (SIGKILL, power loss) loses nothing it acknowledged either:
see :mod:`skcal.serve.journal`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from .app import BODY_TIMEOUT, Credentials, create_app
from .backend import LabelStudioBackend
from .connections import (
    ConnectionStats,
    RateLimitedLog,
    connection_limit,
    guarded_protocol,
    quiet_logs,
    raise_open_file_limit,
)
from .factories import resolve_factory
from .labelstudio import LabelStudioClient
from .memory import tune_allocator

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerLimits:
    """The HTTP server's limits and timeouts.

    Attributes
    ----------
    max_connections : int, default=256
        Connections open at once (kept below the open-file limit); one more
        is answered 503 with ``Retry-After`` and closed.
    header_timeout : float, default=10
        Seconds for a request's head to arrive, from the connection's
        opening or its last answer; then the connection is closed.
    body_timeout : float, default=30
        Seconds for a request's body to arrive; then 408.
    keep_alive : float, default=5
        Seconds an idle keep-alive connection stays open.
    drain : float, default=10
        At shutdown, seconds for the requests in flight to be answered.
    shutdown_timeout : float, default=30
        At shutdown, seconds for the round in progress to finish and commit.
    """

    max_connections: int = 256
    header_timeout: float = 10.0
    body_timeout: float = BODY_TIMEOUT
    keep_alive: float = 5.0
    drain: float = 10.0
    shutdown_timeout: float = 30.0

    def __post_init__(self) -> None:
        if isinstance(self.max_connections, bool) or not isinstance(self.max_connections, int):
            raise ValueError(f"max_connections must be a whole number, got {self.max_connections!r}.")
        if self.max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {self.max_connections}.")
        for name in ("header_timeout", "body_timeout", "keep_alive", "drain", "shutdown_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}.")


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
        The folder of the journal of annotations and the checkpointed
        campaign; a restart on it resumes.
    factory : str or callable, default="auto"
        See :func:`skcal.serve.factories.resolve_factory`.
    train_every : int, default=10
        New labels per CAL round (the first round is the seed round).
    uncertainty : {"confidence", "margin", "entropy"}, default="confidence"
        The score each prediction carries: the highest probability or the
        margin (sort ascending for uncertainty sampling), or the normalised
        entropy (sort descending).
    control : str, optional
        The ``<Choices>`` control to answer; by default the first.
    label_studio_url, label_studio_token : str, optional
        The Label Studio server and an API token (personal access token or
        legacy token), for images stored there and refreshing predictions.
    refresh_predictions : bool, default=True
        With ``label_studio_url``: ask Label Studio to retrieve predictions after each round.

    Returns
    -------
    LabelStudioBackend
        The backend, ready to serve.
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


class _AbandonShutdown(BaseException):
    """A second stop signal while the round in progress finishes: stop waiting for it."""


class _GracefulServer(uvicorn.Server):
    """uvicorn's Server, minus re-raising the stop signal once it has stopped (which killed the process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop the server on SIGINT and SIGTERM (in the main thread), and return normally afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _finish(backend: LabelStudioBackend, timeout: float) -> bool:
    """Let the round in progress finish and commit (at most ``timeout`` s; a second signal stops waiting)."""

    def abandon(sig: int, frame: object) -> None:
        raise _AbandonShutdown

    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:
        previous = {sig: signal.signal(sig, abandon) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    try:
        finished = backend.close(timeout)
    except _AbandonShutdown:
        finished = False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    waited = time.monotonic() - started
    if finished:
        logger.info("skcal serve: stopped (%.1f s for the worker); everything acknowledged is committed or "
                    "in the journal", waited)  # fmt: skip
    else:
        logger.warning(
            "skcal serve: stopped after %.1f s without waiting for the round in progress: its labels are in the "
            "journal and train at the next start",
            waited,
        )
    return finished


def build_server(
    backend: LabelStudioBackend,
    host: str = "127.0.0.1",
    port: int = 9090,
    credentials: Credentials | None = None,
    log_level: str = "info",
    limits: ServerLimits | None = None,
    open_files: int | None = None,
    rate_limit: RateLimitedLog | None = None,
) -> uvicorn.Server:
    """Build the uvicorn server of ``backend``, with the guards of ``limits`` (not started).

    Parameters
    ----------
    backend : LabelStudioBackend
    host : str, default="127.0.0.1"
    port : int, default=9090
        0 picks a free port (``server.servers[0].sockets`` once started).
    credentials : Credentials, optional
    log_level : str, default="info"
    limits : ServerLimits, optional
    open_files : int, optional
        The open-file limit, which ``max_connections`` stays below.
    rate_limit : RateLimitedLog, optional
        Its count of held-back lines shows in ``/health``.

    Returns
    -------
    uvicorn.Server
        ``server.run()`` serves until SIGTERM or Ctrl-C (or ``server.should_exit``).
    """
    limits = limits or ServerLimits()
    max_connections = connection_limit(limits.max_connections, open_files)
    stats = ConnectionStats()

    def server_health() -> dict:
        return {
            "connections": len(server.server_state.connections),
            "max_connections": max_connections,
            **stats.snapshot(),
            "log_lines_held_back": None if rate_limit is None else rate_limit.held_back,
        }

    app = create_app(backend, credentials, body_timeout=limits.body_timeout, server_health=server_health)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,  # uvicorn's loggers go to the root handlers, which rate-limit them
        access_log=log_level == "debug",
        http=guarded_protocol(limits.header_timeout, max_connections, stats),
        timeout_keep_alive=limits.keep_alive,
        limit_concurrency=max_connections + 1,
        timeout_graceful_shutdown=limits.drain,
        lifespan="off",
    )
    server = _GracefulServer(config)
    return server


def serve(
    backend: LabelStudioBackend,
    host: str = "127.0.0.1",
    port: int = 9090,
    credentials: Credentials | None = None,
    log_level: str = "info",
    limits: ServerLimits | None = None,
) -> bool:
    """Serve ``backend`` over HTTP until SIGTERM or Ctrl-C, then stop it gracefully.

    Parameters
    ----------
    backend : LabelStudioBackend
        What answers the routes (:func:`make_backend`).
    host : str, default="127.0.0.1"
        The address to listen on.
    port : int, default=9090
        Label Studio's usual ML-backend port.
    credentials : Credentials, optional
        Required on every route but ``/`` and ``/health``; None requires none.
    log_level : str, default="info"
        ``"debug"``, ``"info"``, ``"warning"`` or ``"error"``.
    limits : ServerLimits, optional
        Connection, body and rate limits; None uses the defaults.

    Returns
    -------
    bool
        True when the worker finished its step before stopping; False when
        the round in progress was abandoned.
    """
    limits = limits or ServerLimits()
    tune_allocator()
    open_files = raise_open_file_limit()
    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rate_limit = RateLimitedLog()
    quiet_logs(rate_limit)
    started = time.monotonic()
    backend.warm_up()  # before the port opens: the first /predict never waits for, or races, the model's load
    logger.info("skcal serve: model ready in %.1f s", time.monotonic() - started)
    server = build_server(backend, host, port, credentials, log_level, limits, open_files, rate_limit)
    logger.info("skcal serve: %s on http://%s:%d (state in %s)", backend.model_version, host, port, backend.state_dir)
    try:
        server.run()
    finally:
        finished = _finish(backend, limits.shutdown_timeout)
    return finished


__all__ = ["ServerLimits", "build_server", "make_backend", "serve"]
