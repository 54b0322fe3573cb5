"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from random import getrandbits

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voipbin import __version__
from voipbin.api.errors import error_body, install_error_handlers, internal_error
from voipbin.api.openapi import install_openapi
from voipbin.api.routing import add_routes
from voipbin.api.routers import (
    accesskeys, ais, auth, available_numbers, calls, conferences, customer, extensions, flows, me, numbers, speakings,
    transcribes, ws,
)
from voipbin.runtime import Runtime


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit; the HTTPException handler answers 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"request body is larger than {max_bytes} bytes")


# FastAPI 0.16x asks OpenTelemetry on every request whether a tracer, meter or logger provider is set
# (environment lookups and provider checks, ~3-10 us of a cached GET, issue 21); the project exports no
# telemetry, so its native OpenTelemetry instrumentation is off
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def new_request_id() -> str:
    """A random UUID (version 4, RFC 9562 section 5.4) as its 36-character string. The 122 random bits
    come from ``random.getrandbits`` (seeded from the OS at start): a request id correlates logs and is
    no secret, and ``str(uuid.uuid4())`` cost ~15 us per request (a system call and a ``UUID`` object)."""
    n = getrandbits(128) & ~(0xF << 76 | 0x3 << 62) | (0x4 << 76 | 0x2 << 62)  # version 4, variant 10
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class RequestMiddleware:
    """What every HTTP request gets, in one ASGI layer (each layer costs a call and a wrapped ``send``
    per message on every request, issue 21):

    * ``X-Request-Id``: echoed (its first 128 characters) or assigned (:func:`new_request_id`),
      exposed as ``request.state.request_id`` and added to the response.
    * Bodies of at most ``max_bytes`` (issue 14): a larger ``Content-Length`` is a 413 in the envelope
      before the app runs; a chunked body (``Transfer-Encoding``, no length) is counted as it is read,
      and the read that passes the limit raises :class:`BodyTooLarge` (413), so no more than the limit
      is buffered. A request with neither header has no body (RFC 9112 section 6.3): its ``receive``
      is not wrapped.
    * An unhandled exception before the response started is a 500 in the envelope
      (:func:`voipbin.api.errors.internal_error`); after it started, it propagates (the server closes
      the connection: nothing sensible can follow a started response).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = declared = None
        chunked = False
        for key, value in scope["headers"]:
            if key == b"x-request-id" and rid is None:
                rid = value.decode("latin-1")[:128]
            elif key == b"content-length" and declared is None:
                declared = value
            elif key == b"transfer-encoding":
                chunked = True
        rid = rid or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", []).append(rid_header)
            await send(message)

        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            body = error_body(Request(scope), 413, "INVALID_ARGUMENT", BodyTooLarge(self.max_bytes).detail)
            await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send_with_id)
            return
        try:
            await self.app(scope, self._limited(receive) if chunked else receive, send_with_id)
        except Exception as exc:
            if started:
                raise
            await internal_error(exc, scope, receive, send_with_id)

    def _limited(self, receive: Receive) -> Receive:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        return limited_receive


def create_app(runtime: Runtime, *, manage_runtime: bool = False) -> FastAPI:
    """The API for ``runtime``. With ``manage_runtime`` the app's lifespan starts and stops it."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            await runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                await runtime.stop()

    app = FastAPI(title="VoIPBIN-compatible API", version=__version__, lifespan=lifespan,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None, telemetry=TELEMETRY_OFF)
    app.state.runtime = runtime
    install_error_handlers(app)
    # routes are matched in order, one by one: the most requested resources first (issue 21: a GET of an
    # extension behind ~30 other routes paid ~40 us to reach its route)
    for module in (extensions, calls, speakings, transcribes, conferences, ais, flows, numbers, auth, customer, me,
                   accesskeys, available_numbers, ws):
        add_routes(app, module.router.routes)
    install_openapi(app)
    app.add_middleware(RequestMiddleware, max_bytes=runtime.settings.http_max_body_bytes)
    return app

