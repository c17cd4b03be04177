"""The HTTP side of ``skcal serve``: a Starlette app over :class:`~skcal.serve.backend.LabelStudioBackend`.

Routes: ``GET /`` and ``GET /health``, ``POST /setup``, ``POST /predict``,
``POST /webhook`` (Label Studio's ML-backend protocol), and ``GET /metrics``
(an empty object, as label-studio-ml answers). Handlers run in Starlette's
thread pool, so a slow prediction never holds up ``/health`` or a webhook
(Label Studio gives a webhook one second).

Credentials (:class:`Credentials`): HTTP basic auth, which Label Studio's
ML-backend connection sends when "Basic Authentication" is set, and/or a
bearer token (``Authorization: Bearer <token>`` or ``Token <token>``), for
clients that can send a header (a Label Studio webhook's custom headers).
With credentials set, every route except ``/health`` needs one of them;
a request without is answered 401 before its body is read.

Errors are JSON: ``{"error": message, "status": code}`` with a 4xx status for
the caller's mistakes (408 for a body that does not arrive within
``body_timeout`` seconds), 503 before a model exists or when the server is
busy (with ``Retry-After``), and 507 when the state folder cannot be written
(the message names the real error, e.g. ``database or disk is full``). An
unexpected exception is a 500 with its message, and changes nothing.

Bodies are parsed, and answers rendered, in the thread pool: a 32 MiB body
never holds up the event loop, which answers ``/health`` and webhooks. JSON
out is ASCII (everything else escaped), so no string a client sent, however
malformed its Unicode, can fail the answer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .backend import LabelStudioBackend
from .faults import StorageError
from .protocol import MAX_BODY_BYTES, ProtocolError, parse_json_body

logger = logging.getLogger(__name__)

#: Routes that answer without credentials (Label Studio's connection check).
OPEN_ROUTES = ("/", "/health")
#: Seconds a request body may take to arrive (32 MiB at about 1 MiB/s), before a 408.
BODY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Credentials:
    """What a request must carry: basic-auth user and password, and/or a token.

    Attributes
    ----------
    username, password : str or None
        HTTP basic auth (both or neither).
    token : str or None
        Accepted as ``Authorization: Bearer <token>`` or ``Authorization: Token <token>``.
    """

    username: str | None = None
    password: str | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise ValueError("basic auth needs both a user name and a password.")
        if self.username is not None and (":" in self.username or not self.username or not self.password):
            raise ValueError("the basic-auth user name must be non-empty without ':', and the password non-empty.")
        if self.token is not None and not self.token.strip():
            raise ValueError("the token must not be empty.")

    @property
    def required(self) -> bool:
        """Whether any credential is configured."""
        return self.username is not None or self.token is not None

    def accepts(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries a valid credential (constant-time comparisons).

        Parameters
        ----------
        authorization : str or None
            The request's ``Authorization`` header, if any.

        Returns
        -------
        bool
            True if it carries a valid credential, or none is required.
        """
        if not self.required:
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "basic" and self.username is not None:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return False
            user, colon, password = decoded.partition(":")
            return bool(colon) and _same(user, self.username) & _same(password, self.password)
        if scheme in ("bearer", "token") and self.token is not None:
            return _same(value, self.token)
        return False


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _render(content: Any) -> bytes:
    """JSON as ASCII: a lone surrogate a client sent comes back escaped instead of failing the answer."""
    return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _json(content: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(_render(content), status_code=status, headers=headers, media_type="application/json")


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return _json({"error": message, "status": status}, status, headers)


def create_app(
    backend: LabelStudioBackend,
    credentials: Credentials | None = None,
    body_timeout: float = BODY_TIMEOUT,
    server_health: Callable[[], dict] | None = None,
) -> Starlette:
    """Build the ASGI app that serves ``backend``.

    Parameters
    ----------
    backend : LabelStudioBackend
        What answers the routes.
    credentials : Credentials, optional
        Required on every route but ``/`` and ``/health``.
    body_timeout : float, default=30
        Seconds a request body may take to arrive; then 408.
    server_health : callable, optional
        ``server_health() -> dict``: the HTTP server's own state (connections
        refused, log lines held back), added to ``/health`` as ``"server"``.

    Returns
    -------
    starlette.applications.Starlette
        Run it with any ASGI server (``uvicorn.run(app)``); ``app.state.backend``
        is the backend.
    """
    credentials = credentials or Credentials()

    def authorised(request: Request) -> Response | None:
        if request.url.path in OPEN_ROUTES or credentials.accepts(request.headers.get("authorization")):
            return None
        challenge = {"WWW-Authenticate": 'Basic realm="skcal serve"'} if credentials.username else None
        return _error(401, "missing or wrong credentials (basic auth or token).", challenge)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise ProtocolError(413, f"the request body has {declared} bytes, more than {MAX_BODY_BYTES}.")
        chunks: list = []

        async def collect() -> None:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise ProtocolError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes.")
                chunks.append(chunk)

        try:
            await asyncio.wait_for(collect(), body_timeout)
        except asyncio.TimeoutError:
            received = sum(len(chunk) for chunk in chunks)
            raise ProtocolError(
                408, f"the request body did not arrive within {body_timeout:g} s ({received} bytes came)."
            ) from None
        return b"".join(chunks)

    def answer_with_body(handler: Any, raw: bytes) -> tuple[bytes, bool]:
        answer = handler(parse_json_body(raw))
        return _render(answer), answer.get("status") == "accepted"

    def answer_without_body(handler: Any) -> tuple[bytes, bool]:
        return _render(handler()), False

    def endpoint(handler: Any, with_body: bool = True) -> Any:
        async def respond(request: Request) -> Response:
            refused = authorised(request)
            if refused is not None:
                return refused
            try:
                if with_body:
                    rendered, accepted = await run_in_threadpool(answer_with_body, handler, await read_body(request))
                else:
                    rendered, accepted = await run_in_threadpool(answer_without_body, handler)
            except ProtocolError as error:
                return _error(error.status, error.message, error.headers)
            except StorageError as error:  # the state folder cannot be written: not the caller's mistake
                return _error(507, f"{error}. Nothing was changed.")
            except Exception as error:  # the handler changed nothing; say what went wrong
                logger.exception("skcal serve: %s %s failed", request.method, request.url.path)
                return _error(500, f"{type(error).__name__}: {error}")
            status = 201 if request.url.path == "/webhook" and accepted else 200
            return Response(rendered, status_code=status, media_type="application/json")

        return respond

    async def metrics(request: Request) -> Response:
        refused = authorised(request)
        return refused if refused is not None else _json({})

    def health() -> dict:
        answer = backend.health()
        if server_health is not None:
            answer["server"] = server_health()
        return answer

    routes = [
        Route("/", endpoint(health, with_body=False), methods=["GET"]),
        Route("/health", endpoint(health, with_body=False), methods=["GET"]),
        Route("/setup", endpoint(backend.setup), methods=["POST"]),
        Route("/predict", endpoint(backend.predict), methods=["POST"]),
        Route("/webhook", endpoint(backend.webhook), methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, f"no route {request.url.path}; routes are /health, /setup, /predict, /webhook.")

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return _error(405, f"{request.method} is not allowed on {request.url.path}.")

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    app.state.backend = backend
    return app


__all__ = ["BODY_TIMEOUT", "OPEN_ROUTES", "Credentials", "create_app"]
