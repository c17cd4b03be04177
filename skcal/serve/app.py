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
the caller's mistakes (and 503 before a model exists); an unexpected
exception is a 500 with its message, and changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .backend import LabelStudioBackend
from .protocol import MAX_BODY_BYTES, ProtocolError, parse_json_body

logger = logging.getLogger(__name__)

#: Routes that answer without credentials (Label Studio's connection check).
OPEN_ROUTES = ("/", "/health")


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

        Returns
        -------
        bool
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


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def create_app(backend: LabelStudioBackend, credentials: Credentials | None = None) -> Starlette:
    """Build the ASGI app that serves ``backend``.

    Parameters
    ----------
    backend : LabelStudioBackend
    credentials : Credentials, optional
        Required on every route but ``/`` and ``/health``.

    Returns
    -------
    starlette.applications.Starlette
        Run it with any ASGI server (``uvicorn.run(app)``); ``app.state.backend``
        is the backend.
    """
    credentials = credentials or Credentials()

    def authorised(request: Request) -> JSONResponse | None:
        if request.url.path in OPEN_ROUTES or credentials.accepts(request.headers.get("authorization")):
            return None
        challenge = {"WWW-Authenticate": 'Basic realm="skcal serve"'} if credentials.username else None
        return _error(401, "missing or wrong credentials (basic auth or token).", challenge)

    async def body_of(request: Request) -> dict:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise ProtocolError(413, f"the request body has {declared} bytes, more than {MAX_BODY_BYTES}.")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ProtocolError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes.")
            chunks.append(chunk)
        return parse_json_body(b"".join(chunks))

    def endpoint(handler: Any, with_body: bool = True) -> Any:
        async def respond(request: Request) -> JSONResponse:
            refused = authorised(request)
            if refused is not None:
                return refused
            try:
                if with_body:
                    answer = await run_in_threadpool(handler, await body_of(request))
                else:
                    answer = await run_in_threadpool(handler)
            except ProtocolError as error:
                return _error(error.status, error.message)
            except Exception as error:  # the handler changed nothing; say what went wrong
                logger.exception("skcal serve: %s %s failed", request.method, request.url.path)
                return _error(500, f"{type(error).__name__}: {error}")
            status = 201 if request.url.path == "/webhook" and answer.get("status") == "accepted" else 200
            return JSONResponse(answer, status_code=status)

        return respond

    async def metrics(request: Request) -> JSONResponse:
        refused = authorised(request)
        return refused if refused is not None else JSONResponse({})

    routes = [
        Route("/", endpoint(backend.health, with_body=False), methods=["GET"]),
        Route("/health", endpoint(backend.health, with_body=False), methods=["GET"]),
        Route("/setup", endpoint(backend.setup), methods=["POST"]),
        Route("/predict", endpoint(backend.predict), methods=["POST"]),
        Route("/webhook", endpoint(backend.webhook), methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return _error(404, f"no route {request.url.path}; routes are /health, /setup, /predict, /webhook.")

    async def not_allowed(request: Request, exc: Exception) -> JSONResponse:
        return _error(405, f"{request.method} is not allowed on {request.url.path}.")

    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    app.state.backend = backend
    return app


__all__ = ["OPEN_ROUTES", "Credentials", "create_app"]
