"""The stack on real loopback sockets: routing, UAC helpers, hostile input handling."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from sip_fakes import FakeClock

from voipbin.sip.errors import TransactionTimeout
from voipbin.sip.location import InMemoryCredentialStore, InMemoryLocationService
from voipbin.sip.message import Response
from voipbin.sip.parser import parse_message
from voipbin.sip.registrar import BindingChange, Registrar
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.transaction_fsm import T1

DOMAIN = "c1.registrar.voipbin.test"


@pytest.fixture
def registrar() -> Registrar:
    creds = InMemoryCredentialStore()
    creds.add("c1", "100", "pw")
    return Registrar(sip_domain="voipbin.test", credentials=creds,
                     location=InMemoryLocationService(), nonce_secret=b"k")


@pytest.fixture
async def server(registrar: Registrar) -> AsyncIterator[SipStack]:
    stack = SipStack(StackConfig(port=0, rate_per_source_s=50, rate_burst=50, max_message_bytes=4096))
    stack.route("REGISTER", registrar.on_register)
    await stack.start()
    await registrar.start()
    yield stack
    await registrar.stop()
    await stack.stop()


@pytest.fixture
async def client() -> AsyncIterator[SipStack]:
    stack = SipStack(StackConfig(port=0, user_agent="test-uac"))
    await stack.start()
    yield stack
    await stack.stop()


def raw_request(port: int, *, call_id: bool = True, extra: str = "", body: str = "") -> bytes:
    lines = ["OPTIONS sip:x@127.0.0.1 SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKraw;rport",
             "From: <sip:a@b>;tag=1", "To: <sip:x@127.0.0.1>", "CSeq: 1 OPTIONS", "Max-Forwards: 70"]
    if call_id:
        lines.append("Call-ID: raw-1")
    if extra:
        lines.append(extra)
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def udp_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


async def recv(sock: socket.socket, timeout: float = 2.0) -> Response:
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout)
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_options_answered_200(server: SipStack, client: SipStack, transport: str) -> None:
    request = client.create_request("OPTIONS", f"sip:127.0.0.1:{server.port}", from_="<sip:a@b>",
                                    to=f"<sip:127.0.0.1:{server.port}>")
    response = await client.send_request(request, transport=transport)
    assert response.status == 200
    assert "REGISTER" in response.headers.get_all("Allow")


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_register_with_digest_via_uac_helper(server: SipStack, client: SipStack, registrar: Registrar,
                                                   transport: str) -> None:
    changed = asyncio.Event()
    events: list[BindingChange] = []
    registrar.on_binding_change = lambda change: (events.append(change), changed.set())
    request = client.create_request("REGISTER", f"sip:{DOMAIN}", from_=f"<sip:100@{DOMAIN}>",
                                    to=f"<sip:100@{DOMAIN}>", contact=f"<sip:100@127.0.0.1:{client.port}>")
    response = await client.send_request_with_auth(request, username="100", password="pw",
                                                   dest=("127.0.0.1", server.port), transport=transport)
    assert response.status == 200
    await asyncio.wait_for(changed.wait(), 2)
    assert events[0].binding.transport == transport
    assert events[0].binding.received[0] == "127.0.0.1"


async def test_method_not_allowed_and_unknown_method(server: SipStack, client: SipStack) -> None:
    for method, status in (("INVITE", 405), ("FOO", 501)):
        request = client.create_request(method, f"sip:x@127.0.0.1:{server.port}", from_="<sip:a@b>",
                                        to="<sip:x@127.0.0.1>")
        assert (await client.send_request(request)).status == status


async def test_missing_call_id_gets_400_with_reason(server: SipStack) -> None:
    sock = udp_socket()
    port = sock.getsockname()[1]
    sock.sendto(raw_request(port, call_id=False), ("127.0.0.1", server.port))
    response = await recv(sock)
    assert (response.status, response.reason) == (400, "Missing Call-ID")
    assert response.top_via.params["rport"] == str(port)  # RFC 3581 filled in
    assert response.top_via.params["received"] == "127.0.0.1" or response.top_via.host == "127.0.0.1"
    sock.close()


async def test_oversize_udp_gets_513(server: SipStack) -> None:
    sock = udp_socket()
    sock.sendto(raw_request(sock.getsockname()[1], body="x" * 5000), ("127.0.0.1", server.port))
    assert (await recv(sock)).status == 513
    sock.close()


async def test_oversize_tcp_gets_513_and_is_closed(server: SipStack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(raw_request(1, extra="Content-Type: text/plain").replace(
        b"Content-Length: 0", b"Content-Length: 100000"))
    data = await asyncio.wait_for(reader.read(65535), 2)
    assert parse_message(data).status == 513  # type: ignore[attr-defined]
    assert await asyncio.wait_for(reader.read(), 2) == b""  # closed
    writer.close()


async def test_garbage_is_dropped_and_counted_stack_keeps_serving(server: SipStack) -> None:
    sock = udp_socket()
    for _ in range(5):
        sock.sendto(b"\x00\xffNOT SIP AT ALL\r\n\r\n", ("127.0.0.1", server.port))
    sock.sendto(raw_request(sock.getsockname()[1]), ("127.0.0.1", server.port))
    assert (await recv(sock)).status == 200
    assert server.stats["unparseable"] == 5
    sock.close()


async def test_flood_from_one_source_does_not_starve_another(server: SipStack) -> None:
    flood = udp_socket("127.0.0.2")
    for i in range(500):  # bucket: 50 burst, 50/s
        flood.sendto(raw_request(flood.getsockname()[1]), ("127.0.0.1", server.port))
        if i % 50 == 49:
            await asyncio.sleep(0.001)  # let the server drain its socket (no kernel-buffer drops)
    good = udp_socket("127.0.0.1")
    good.sendto(raw_request(good.getsockname()[1]).replace(b"raw-1", b"good-1"), ("127.0.0.1", server.port))
    assert (await recv(good)).status == 200
    assert server.stats["rate_limited"] >= 400
    flood.close()
    good.close()


async def test_transaction_timers_run_on_the_injected_clock(clock: FakeClock) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a peer that never answers
    silent.bind(("127.0.0.1", 0))
    stack = SipStack(StackConfig(port=0, transports=("UDP",)), clock=clock)
    await stack.start()
    try:
        request = stack.create_request("OPTIONS", f"sip:x@127.0.0.1:{silent.getsockname()[1]}",
                                       from_="<sip:a@b>", to="<sip:x@b>")
        task = asyncio.ensure_future(stack.send_request(request))
        await asyncio.sleep(0)
        assert clock.pending()[-1] == 64 * T1  # Timer F, 64*T1, on our clock
        clock.advance(64 * T1 - 0.01)
        await asyncio.sleep(0)
        assert not task.done()
        clock.advance(0.01)
        with pytest.raises(TransactionTimeout):
            await asyncio.wait_for(task, 1)
    finally:
        await stack.stop()
        silent.close()
