"""Attacks on a running SIP stack over loopback sockets (issue 13 findings 2, 3, 10): a burst of non-UTF-8
REGISTERs while valid ones keep being answered, a captured REGISTER replayed from 127.0.0.3, and 400
half-open TCP connections from one source."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from voipbin.sip.digest import build_authorization, pick_challenge
from voipbin.sip.location import InMemoryCredentialStore, InMemoryLocationService
from voipbin.sip.message import Response
from voipbin.sip.parser import parse_message
from voipbin.sip.registrar import Registrar
from voipbin.sip.stack import SipStack, StackConfig

DOMAIN = "c1.registrar.voipbin.test"
PASSWORD = "correct-horse-1"


@pytest.fixture
def registrar() -> Registrar:
    creds = InMemoryCredentialStore()
    creds.add("c1", "100", PASSWORD)
    return Registrar(sip_domain="voipbin.test", credentials=creds, location=InMemoryLocationService(),
                     nonce_secret=b"k")


@pytest.fixture
async def server(registrar: Registrar) -> AsyncIterator[SipStack]:
    stack = SipStack(StackConfig(port=0, tcp_first_message_timeout_s=0.5, tcp_max_connections_per_source=16))
    stack.route("REGISTER", registrar.on_register)
    await stack.start()
    await registrar.start()
    yield stack
    await registrar.stop()
    await stack.stop()


def udp_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def register(sock: socket.socket, n: int, *, host: bytes = DOMAIN.encode(), auth: str | None = None,
             contact: str | None = None) -> bytes:
    ip, port = sock.getsockname()
    lines = [b"REGISTER sip:%s SIP/2.0" % host, f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{n}x;rport".encode(),
             b"Max-Forwards: 70", b"From: <sip:100@%s>;tag=t%d" % (host, n), b"To: <sip:100@%s>" % host,
             f"Call-ID: call-{ip}-{port}".encode(), f"CSeq: {n} REGISTER".encode(),
             f"Contact: {contact or f'<sip:100@{ip}:{port}>'}".encode()]
    if auth:
        lines.append(f"Authorization: {auth}".encode())
    return b"\r\n".join([*lines, b"Content-Length: 0"]) + b"\r\n\r\n"


async def recv(sock: socket.socket, timeout: float = 3.0) -> Response:
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 65535), timeout)
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


async def authorized_register(sock: socket.socket, port: int, n: int, **kw: str) -> tuple[bytes, Response]:
    """REGISTER, answer the 401; returns (the authorized bytes, the final response)."""
    sock.sendto(register(sock, n, **kw), ("127.0.0.1", port))  # type: ignore[arg-type]
    challenge = await recv(sock)
    assert challenge.status == 401
    auth = build_authorization(pick_challenge(challenge.headers.get_all("WWW-Authenticate")), method="REGISTER",
                               uri=f"sip:{DOMAIN}", username="100", password=PASSWORD)
    data = register(sock, n + 1, auth=auth, **kw)  # type: ignore[arg-type]
    sock.sendto(data, ("127.0.0.1", port))
    return data, await recv(sock)


async def test_non_utf8_register_burst_while_valid_ones_are_answered(server: SipStack) -> None:
    attacker, phone = udp_socket("127.0.0.4"), udp_socket("127.0.0.2")
    bad_hosts = [b"c1.registrar.voipbin.test\xff", b"\xc3\x28.registrar.voipbin.test", b"c1\xe9.registrar.voipbin.test"]
    statuses: list[tuple[int, str]] = []

    async def flood() -> None:
        for i in range(100):
            attacker.sendto(register(attacker, i + 1, host=bad_hosts[i % 3]), ("127.0.0.1", server.port))
            response = await recv(attacker)
            statuses.append((response.status, response.reason))

    async def phone_keeps_registering() -> list[int]:
        return [(await authorized_register(phone, server.port, 10 * i + 1))[1].status for i in range(10)]

    _, valid = await asyncio.gather(flood(), phone_keeps_registering())
    assert valid == [200] * 10
    assert statuses == [(400, "Invalid UTF-8")] * 100
    assert server.stats["handler_errors"] == 0 and server.stats["internal_errors"] == 0
    attacker.close()
    phone.close()


async def test_captured_register_replayed_from_127_0_0_3_is_refused(server: SipStack, registrar: Registrar) -> None:
    phone, attacker = udp_socket("127.0.0.2"), udp_socket("127.0.0.3")
    captured, response = await authorized_register(phone, server.port, 1)
    assert response.status == 200
    # the attacker resends the captured bytes with a new Via branch (a new transaction, RFC 3261 §17.2.3)
    replayed = captured.replace(b"branch=z9hG4bK2x", b"branch=z9hG4bKreplay")
    attacker.sendto(replayed, ("127.0.0.1", server.port))
    replay = await recv(attacker)
    assert replay.status == 401
    [binding] = await registrar.location.lookup(f"sip:100@{DOMAIN}")
    assert binding.received == phone.getsockname()
    # the same credentials again from the phone (a new transaction): the nonce count is reused
    phone.sendto(captured.replace(b"branch=z9hG4bK2x", b"branch=z9hG4bKagain"), ("127.0.0.1", server.port))
    again = await recv(phone)
    assert again.status == 401 and "stale=true" in (again.headers.get("WWW-Authenticate") or "")
    phone.close()
    attacker.close()


async def test_half_open_tcp_connections_from_one_source_do_not_stay_open(server: SipStack) -> None:
    tcp = server.transports["TCP"]
    writers = []
    for _ in range(400):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.5", 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        writers.append(sock)
    for _ in range(200):  # let the server accept what it will
        await asyncio.sleep(0.01)
        if tcp.stats["refused_per_source"] + tcp.connection_count >= 400:  # type: ignore[attr-defined]
            break
    assert tcp.connection_count <= 16  # type: ignore[attr-defined]
    assert tcp.stats["refused_per_source"] >= 384  # type: ignore[attr-defined]
    for _ in range(300):  # the first-message timeout (0.5 s) closes the silent ones
        if tcp.connection_count == 0:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    assert tcp.connection_count == 0  # type: ignore[attr-defined]
    for sock in writers:
        sock.close()
    # a well-behaved client from another source is still served over TCP
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKo\r\n"
                 b"From: <sip:a@b>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n"
                 b"Content-Length: 0\r\n\r\n")
    assert (await asyncio.wait_for(reader.readline(), 3)).startswith(b"SIP/2.0 200")
    writer.close()
