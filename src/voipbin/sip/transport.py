"""UDP and TCP transports (RFC 3261 §18) on asyncio.

A transport moves bytes; it does not parse SIP beyond TCP framing. Every received message is handed
to ``receiver(data, (host, port), transport)`` - one datagram, or one ``Content-Length``-framed
message from a TCP stream (:class:`~voipbin.sip.parser.StreamParser`). A stream that cannot be framed
(oversize, bad ``Content-Length``) is handed over once with ``oversize=True`` (the header bytes, so the
stack can answer 513) and then closed. ``send(data, (host, port))`` never blocks: TCP opens a
connection on demand and queues until it is up; failures go to ``on_error((host, port))``.

Hostile TCP peers (RFC 5626 §4.4.1, RFC 3261 §18.3): an inbound connection from a source IP that
already holds ``max_connections_per_source`` is closed at once; one that sends no complete message
within ``first_message_timeout_s``, or any connection silent for ``idle_timeout_s``, is closed by a
sweep every second. ``TcpTransport.stats`` counts both.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

from voipbin.sip.errors import SipParseError
from voipbin.sip.parser import StreamParser

log = logging.getLogger(__name__)

Addr = tuple[str, int]
UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024


class Transport(Protocol):
    """What the transaction layer needs from a transport."""

    name: str  # "UDP" | "TCP" (the Via transport token)
    reliable: bool

    def send(self, data: bytes, addr: Addr) -> None: ...

    @property
    def local_address(self) -> Addr: ...


class Receiver(Protocol):
    def __call__(self, data: bytes, addr: Addr, transport: Transport, oversize: bool = False) -> None: ...


class UdpTransport(asyncio.DatagramProtocol):
    """SIP over UDP (RFC 3261 §18.1.1, §18.2.1): one message per datagram."""

    name = "UDP"
    reliable = False

    def __init__(self, receiver: Receiver, on_error: Callable[[Addr], None] | None = None) -> None:
        self._receiver = receiver
        self._on_error = on_error
        self._transport: asyncio.DatagramTransport | None = None
        self._local: Addr = ("0.0.0.0", 0)

    async def listen(self, host: str, port: int) -> Addr:
        """Bind; returns the bound (host, port) (port 0 picks a free one)."""
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        return self._local

    @property
    def local_address(self) -> Addr:
        return self._local

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:  # absorb bursts; the kernel caps this at net.core.rmem_max
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER_BYTES)
            except OSError:
                pass
        sockname = transport.get_extra_info("sockname")
        self._local = (sockname[0], sockname[1])

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        self._receiver(data, (addr[0], addr[1]), self)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)

    def send(self, data: bytes, addr: Addr) -> None:
        if self._transport is None or self._transport.is_closing():
            if self._on_error:
                self._on_error(addr)
            return
        self._transport.sendto(data, addr)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: TcpTransport, inbound: bool) -> None:
        self._owner = owner
        self._parser = StreamParser(owner.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer: Addr = ("", 0)
        self.inbound = inbound
        self.messages = 0
        self.opened_at = self.last_activity = time.monotonic()
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.peer = (peer[0], peer[1])
        owner = self._owner
        if self.inbound:
            if owner._per_source[self.peer[0]] >= owner.max_connections_per_source:
                owner.stats["refused_per_source"] += 1
                transport.abort()  # type: ignore[attr-defined]
                return
            owner._per_source[self.peer[0]] += 1
            self._counted = True
        owner._connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        try:
            messages = self._parser.feed(data)
        except SipParseError as exc:
            self._owner.framing_errors += 1
            if exc.reason == "Message Too Large":
                self._owner._receiver(self._parser.last_head + b"\r\n\r\n", self.peer, self._owner, True)
            if self.transport is not None:
                self.transport.close()
            return
        self.messages += len(messages)
        for message in messages:
            self._owner._receiver(message, self.peer, self._owner)

    def connection_lost(self, exc: Exception | None) -> None:
        owner = self._owner
        if self._counted:
            self._counted = False
            owner._per_source[self.peer[0]] -= 1
            if owner._per_source[self.peer[0]] <= 0:
                del owner._per_source[self.peer[0]]
        if owner._connections.get(self.peer) is self:
            del owner._connections[self.peer]

    def expired(self, now: float) -> bool:
        """Silent past the idle timeout, or inbound without a first message past its timeout."""
        owner = self._owner
        if now - self.last_activity > owner.idle_timeout_s:
            return True
        return self.inbound and self.messages == 0 and now - self.opened_at > owner.first_message_timeout_s


class TcpTransport:
    """SIP over TCP (RFC 3261 §18.3): connections keyed by peer address, reused both ways."""

    name = "TCP"
    reliable = True

    def __init__(
        self,
        receiver: Receiver,
        on_error: Callable[[Addr], None] | None = None,
        max_message_bytes: int = 65535,
        *,
        idle_timeout_s: float = 3900.0,
        first_message_timeout_s: float = 10.0,
        max_connections_per_source: int = 32,
    ) -> None:
        self._receiver = receiver
        self._on_error = on_error
        self.max_message_bytes = max_message_bytes
        self.idle_timeout_s = idle_timeout_s
        self.first_message_timeout_s = first_message_timeout_s
        self.max_connections_per_source = max_connections_per_source
        self.stats: Counter[str] = Counter()
        self._per_source: Counter[str] = Counter()
        self._sweeper: asyncio.Task[None] | None = None
        self._connections: dict[Addr, _TcpConnection] = {}
        self._pending: dict[Addr, list[bytes]] = {}
        self._server: asyncio.Server | None = None
        self._local: Addr = ("0.0.0.0", 0)
        self.framing_errors = 0

    async def listen(self, host: str, port: int) -> Addr:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _TcpConnection(self, inbound=True), host, port)
        sockname = self._server.sockets[0].getsockname()
        self._local = (sockname[0], sockname[1])
        self._sweeper = loop.create_task(self._sweep())
        return self._local

    async def _sweep(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(min(interval_s, self.first_message_timeout_s / 2, self.idle_timeout_s / 2))
            now = time.monotonic()
            for conn in [c for c in self._connections.values() if c.expired(now)]:
                self.stats["closed_idle"] += 1
                if conn.transport is not None:
                    conn.transport.abort()

    @property
    def connection_count(self) -> int:
        """Open connections (both directions)."""
        return len(self._connections)

    @property
    def local_address(self) -> Addr:
        return self._local

    def send(self, data: bytes, addr: Addr) -> None:
        conn = self._connections.get(addr)
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            conn.last_activity = time.monotonic()
            conn.transport.write(data)
            return
        if addr in self._pending:
            self._pending[addr].append(data)
            return
        self._pending[addr] = [data]
        asyncio.get_running_loop().create_task(self._connect(addr))

    async def _connect(self, addr: Addr) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _TcpConnection(self, inbound=False), addr[0], addr[1])
        except OSError:
            self._pending.pop(addr, None)
            if self._on_error:
                self._on_error(addr)
            return
        for data in self._pending.pop(addr, []):
            assert conn.transport is not None
            conn.transport.write(data)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        self._connections.clear()
