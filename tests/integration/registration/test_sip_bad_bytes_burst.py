"""Issue 13 finding 2, end to end: 100 REGISTERs with non-UTF-8 bytes in the registrar host are each a 400
(``Invalid UTF-8``) while ``GET /v1.0/customer``, served by the same process and event loop, keeps
answering within 100 ms."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import pytest

from voipbin.sip.message import Response
from voipbin.sip.parser import parse_message

pytestmark = pytest.mark.sip_peer

BAD_HOSTS = [b"c1.registrar.voipbin.test\xff", b"\xc3\x28.registrar.voipbin.test", b"c1\xe9.registrar.voipbin.test"]


def _register(sock: socket.socket, n: int, host: bytes) -> bytes:
    ip, port = sock.getsockname()
    return b"\r\n".join([
        b"REGISTER sip:%s SIP/2.0" % host, f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bKbad{n};rport".encode(),
        b"Max-Forwards: 70", b"From: <sip:100@%s>;tag=t%d" % (host, n), b"To: <sip:100@%s>" % host,
        f"Call-ID: bad-{n}@{ip}".encode(), f"CSeq: {n} REGISTER".encode(), f"Contact: <sip:100@{ip}:{port}>".encode(),
        b"Content-Length: 0"]) + b"\r\n\r\n"


async def test_non_utf8_register_burst_keeps_the_api_answering(client: httpx.AsyncClient, admin_token: str,
                                                               runtime: Any) -> None:
    q = {"token": admin_token}
    assert (await client.get("/v1.0/customer", params=q)).status_code == 200  # warm caches
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.4", 0))
    attacker.setblocking(False)
    loop = asyncio.get_running_loop()
    statuses: list[tuple[int, str]] = []
    latencies: list[float] = []
    done = asyncio.Event()

    async def flood() -> None:
        try:
            for i in range(100):
                attacker.sendto(_register(attacker, i + 1, BAD_HOSTS[i % 3]), ("127.0.0.1", runtime.sip.port))
                response = parse_message(await asyncio.wait_for(loop.sock_recv(attacker, 65535), 3))
                assert isinstance(response, Response)
                statuses.append((response.status, response.reason))
        finally:
            done.set()

    async def probe() -> None:
        while not done.is_set() or len(latencies) < 20:
            start = time.perf_counter()
            assert (await client.get("/v1.0/customer", params=q)).status_code == 200
            latencies.append(time.perf_counter() - start)

    try:
        await asyncio.gather(flood(), probe())
    finally:
        attacker.close()
    assert statuses == [(400, "Invalid UTF-8")] * 100
    assert max(latencies) < 0.100, f"GET /v1.0/customer took {max(latencies) * 1000:.1f} ms during the burst"
