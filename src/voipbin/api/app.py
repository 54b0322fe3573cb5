"""The FastAPI application factory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voipbin import __version__
from voipbin.api.errors import error_body, install_error_handlers
from voipbin.api.openapi import install_openapi
from voipbin.api.routers import (
    accesskeys, auth, available_numbers, calls, conferences, customer, extensions, flows, me, numbers, speakings,
    transcribes, ws,
)
from voipbin.runtime import Runtime


class RequestIdMiddleware:
    """Echo ``X-Request-Id`` (or assign one) and expose it as ``request.state.request_id``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        rid = rid[:128] or str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode("latin-1")))
            await send(message)

        await self.app(scope, receive, send_with_id)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a body passes the limit; the HTTPException handler answers 413."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"request body is larger than {max_bytes} bytes")


class BodyLimitMiddleware:
    """Request bodies of at most ``max_bytes`` (issue 14): a larger ``Content-Length`` is a 413 in the
    envelope before the app runs; a body without one (chunked) is counted as it is read, and the read
    that passes the limit raises :class:`BodyTooLarge` (413), so no more than the limit is buffered."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            body = error_body(Request(scope), 413, "INVALID_ARGUMENT", BodyTooLarge(self.max_bytes).detail)
            await JSONResponse(body, status_code=413, headers={"Connection": "close"})(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)


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
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url=None)
    app.state.runtime = runtime
    install_error_handlers(app)
    for module in (auth, customer, me, accesskeys, available_numbers, numbers, extensions, flows, calls, conferences,
                   transcribes, speakings, ws):
        app.include_router(module.router)
    install_openapi(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=runtime.settings.http_max_body_bytes)
    app.add_middleware(RequestIdMiddleware)
    return app
