"""``GET /v1.0/ws``: the event WebSocket (subscribe/unsubscribe topics, receive pushed events).

Authentication as REST (``?token=``, ``?accesskey=`` or Bearer), and ``?token=`` also takes an accesskey
(seed 001: "the same JWT or access key"); a wrong or missing credential is
refused before the upgrade with HTTP 401 and the error envelope (or close 1008 where the server
cannot send a denial response). Everything else is :class:`voipbin.events.websocket_hub.WebSocketHub`.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voipbin.api.deps import authenticate
from voipbin.auth.identity import PERMISSION_CUSTOMER_ADMIN, PERMISSION_CUSTOMER_MANAGER
from voipbin.common.errors import Unauthenticated
from voipbin.events.websocket_hub import CLOSE_POLICY_VIOLATION, Connection, PolicyViolation, WebSocketHub

router = APIRouter(tags=["Websocket"])
CLOSE_SEND_TIMEOUT_SECONDS = 5.0


@router.websocket("/v1.0/ws")
async def websocket_events(websocket: WebSocket, token: str | None = None, accesskey: str | None = None) -> None:
    runtime = websocket.app.state.runtime
    try:
        identity = await authenticate(runtime, token, accesskey, websocket.headers.get("authorization"),
                                      token_may_be_accesskey=True)
    except Unauthenticated as exc:
        await _deny(websocket, exc.message)
        return
    hub: WebSocketHub = runtime.hub
    await websocket.accept()
    conn = hub.connect(identity.customer_id, agent_id=identity.agent_id,
                       customer_scope_allowed=identity.has(PERMISSION_CUSTOMER_ADMIN | PERMISSION_CUSTOMER_MANAGER))
    tasks = [asyncio.create_task(_read(websocket, hub, conn)), asyncio.create_task(_write(websocket, conn)),
             asyncio.create_task(conn.closed.wait())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        hub.disconnect(conn)
    if conn.close_code is not None and conn.close_reason != "client disconnected" \
            and websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(conn.close_code, conn.close_reason), CLOSE_SEND_TIMEOUT_SECONDS)


async def _deny(websocket: WebSocket, message: str) -> None:
    body = {"error": {"status": "UNAUTHENTICATED", "reason": "UNAUTHENTICATED", "message": message,
                      "request_id": "", "details": []}, "message": message}
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse(body, status_code=401))
    else:
        await websocket.close(CLOSE_POLICY_VIOLATION, "unauthenticated")


async def _read(websocket: WebSocket, hub: WebSocketHub, conn: Connection) -> None:
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            message = {"type": "websocket.disconnect"}
        if message["type"] == "websocket.disconnect":
            conn.kick(1000, "client disconnected")
            return
        text = message.get("text")
        if text is None:
            conn.kick(CLOSE_POLICY_VIOLATION, "messages must be JSON text frames")
            return
        try:
            hub.handle_message(conn, text)
        except PolicyViolation as exc:
            conn.kick(CLOSE_POLICY_VIOLATION, str(exc))
            return


async def _write(websocket: WebSocket, conn: Connection) -> None:
    while True:
        text = await conn.queue.get()
        try:
            await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            conn.kick(1000, "client disconnected")
            return
