"""Fixtures for the event tests: a live API server on a real port, a scriptable webhook receiver,
and a minimal raw WebSocket client (for peers that misbehave: never answer pings, never read)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn

from voipbin.config import Settings
from voipbin.events.websocket_hub import UVICORN_WS_OPTIONS

ADMIN = {"username": "admin@localhost", "password": "admin@localhost"}
NATS_URL = os.environ.get("VOIPBIN_TEST_NATS_URL", "nats://127.0.0.1:4222")


async def serve(app: Any, **options: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Run ``app`` with uvicorn on 127.0.0.1, a free port; returns (server, task, port)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False,
                            lifespan="off", timeout_graceful_shutdown=1, **options)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # uvicorn offers no startup event to await
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port


async def shutdown(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    try:
        await asyncio.wait_for(task, 10)
    except TimeoutError:
        server.force_exit = True
        await asyncio.wait_for(task, 5)


@dataclass
class LiveServer:
    runtime: Any
    port: int
    token: str
    customer_id: str

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in (query or {"token": self.token}).items())
        return f"ws://127.0.0.1:{self.port}/v1.0/ws?{q}"

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, params={"token": self.token}, timeout=10)


@asynccontextmanager
async def live_server(settings: Settings, **ws_options: Any) -> AsyncIterator[LiveServer]:
    """Runtime + API on a real port (uvicorn with the hub's keepalive options unless overridden)."""
    from voipbin.api.app import create_app
    from voipbin.runtime import Runtime

    runtime = Runtime(settings)
    await runtime.start()
    try:
        seed = await runtime.seed_sandbox()
        server, task, port = await serve(create_app(runtime), **{**UVICORN_WS_OPTIONS, **ws_options})
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
                r = await c.post("/auth/login", json=ADMIN)
                r.raise_for_status()
            yield LiveServer(runtime, port, r.json()["token"], seed.customer_id)
        finally:
            await shutdown(server, task)
    finally:
        await runtime.stop()


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": db_url, "webhook_allow_private": True, "sip_enabled": False}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest_asyncio.fixture
async def server(sqlite_url: str) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(sqlite_url)) as live:
        yield live


# --- webhook receiver --------------------------------------------------------------------------

@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived
    answered: int | None = None  # status sent back, None while pending / when the request hung


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1. ``behave(n)`` (n counts requests from 0) returns a status code,
    or a float: sleep that long first, then answer 200."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    behave: Callable[[int], int | float] = lambda n: 200
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/voipbin"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the sender died mid-body (a SIGKILL test): no request arrived, nothing to record
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        record = Received(scope["method"], scope["path"],
                          {k.decode().lower(): v.decode() for k, v in scope["headers"]}, body, time.monotonic())
        n = len(self.requests)
        self.requests.append(record)
        await self._notify()
        action = self.behave(n)
        status = 200
        if isinstance(action, float):
            await asyncio.sleep(action)
        else:
            status = action
        record.answered = status
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok" if status < 300 else b"nope"})
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[list[Received]], bool], timeout: float = 10) -> list[Received]:
        """Await a state of ``requests`` (no polling: woken by each request and answer)."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.requests))
        return self.requests


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    server, task, port = await serve(rec)
    rec.port = port
    try:
        yield rec
    finally:
        await shutdown(server, task)


# --- raw WebSocket client ----------------------------------------------------------------------

OP_TEXT, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x8, 0x9, 0xA


class RawWebSocket:
    """Just enough RFC 6455 to behave badly: it answers nothing unless told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str, *, rcvbuf: int | None = None) -> RawWebSocket:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                      ).encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))
        return cls(reader, writer)

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        n = len(payload)
        header = bytes([0x80 | OP_TEXT])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload); raises asyncio.IncompleteReadError at EOF."""
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def read_until_close(self) -> tuple[list[int], int | None]:
        """Read to the close frame or EOF: (opcodes seen, close code or None at a bare EOF)."""
        seen: list[int] = []
        while True:
            try:
                op, payload = await self.read_frame()
            except (asyncio.IncompleteReadError, ConnectionError):
                return seen, None
            seen.append(op)
            if op == OP_CLOSE:
                return seen, struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None

    def close(self) -> None:
        self.writer.transport.abort()


@pytest.fixture
def nats_url() -> str:
    return NATS_URL
