"""The FastAPI application factory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voipbin import __version__
from voipbin.api.errors import install_error_handlers
from voipbin.api.routers import (
    accesskeys, auth, calls, customer, extensions, flows, me, numbers, speakings, transcribes, ws,
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
    for module in (auth, customer, me, accesskeys, numbers, extensions, flows, calls, transcribes, speakings, ws):
        app.include_router(module.router)
    app.add_middleware(RequestIdMiddleware)
    return app
