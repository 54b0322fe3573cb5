"""Attacks on inbound INVITEs against a running sandbox runtime (issue 13 findings 3, 10), raw UDP on loopback:

* a captured INVITE credential (Proxy-Authorization) replayed, from 127.0.0.3 or from the caller's own
  address, places no second call (single-use nonces bound to the source);
* trunk trust pinned to ``host:port``: the trunk's IP from another port is not the trunk.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from inbound_support import number_with_flow
from test_extension_busy_relay import _extension
from voipbin.sip.digest import build_authorization, pick_challenge
from voipbin.sip.message import Response
from voipbin.sip.parser import parse_message

pytestmark = pytest.mark.sip_peer


def udp(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def invite(sock: socket.socket, *, uri: str, from_uri: str, call_id: str, cseq: int, branch: str,
           auth: str | None = None) -> bytes:
    ip, port = sock.getsockname()
    lines = [f"INVITE {uri} SIP/2.0", f"Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{branch};rport",
             "Max-Forwards: 70", f"From: <{from_uri}>;tag=caller1", f"To: <{uri}>", f"Call-ID: {call_id}",
             f"CSeq: {cseq} INVITE", f"Contact: <sip:3001@{ip}:{port}>"]
    if auth:
        lines.append(f"Proxy-Authorization: {auth}")
    return ("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode()


async def final(sock: socket.socket, timeout: float = 5.0) -> Response:
    """The first final response (provisionals skipped)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        while True:
            message = parse_message(await loop.sock_recv(sock, 65535))
            if isinstance(message, Response) and message.status >= 200:
                return message


async def test_captured_invite_credential_is_refused_on_replay(client: httpx.AsyncClient, admin_token: str,
                                                              runtime: Any) -> None:
    await _extension(client, admin_token, "carol", "3001")
    await _extension(client, admin_token, "dave", "3002")
    domain = f"{runtime.seed.customer_id}.registrar.voipbin.test"
    uri, from_uri = f"sip:3002@{domain}", f"sip:3001@{domain}"
    server = ("127.0.0.1", runtime.sip.port)
    phone, attacker = udp("127.0.0.2"), udp("127.0.0.3")
    phone.sendto(invite(phone, uri=uri, from_uri=from_uri, call_id="c1", cseq=1, branch="a"), server)
    challenge = await final(phone)
    assert challenge.status == 407
    auth = build_authorization(pick_challenge(challenge.headers.get_all("Proxy-Authenticate")), method="INVITE",
                               uri=uri, username="3001", password="carol-secret-pw")
    phone.sendto(invite(phone, uri=uri, from_uri=from_uri, call_id="c1", cseq=2, branch="b", auth=auth), server)
    assert (await final(phone)).status == 480  # authenticated; dave is not registered
    calls = (await client.get("/v1.0/calls", params={"token": admin_token})).json()["result"]
    assert len(calls) == 1
    for sock, call_id in ((attacker, "c2"), (phone, "c3")):  # the captured credential, a new call each time
        sock.sendto(invite(sock, uri=uri, from_uri=from_uri, call_id=call_id, cseq=2, branch=f"r{call_id}",
                           auth=auth), server)
        replay = await final(sock)
        assert replay.status == 407, call_id
    calls = (await client.get("/v1.0/calls", params={"token": admin_token})).json()["result"]
    assert len(calls) == 1
    phone.close()
    attacker.close()


async def test_trunk_trust_is_pinned_to_its_port(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                trunk_port: int) -> None:
    await number_with_flow(client, admin_token, runtime, [{"type": "hangup"}])
    impostor = udp("127.0.0.1")  # the trunk's address, another port
    assert impostor.getsockname()[1] != trunk_port
    uri = f"sip:{runtime.seed.number}@127.0.0.1:{runtime.sip.port}"
    impostor.sendto(invite(impostor, uri=uri, from_uri="sip:+15551230000@127.0.0.1", call_id="t1", cseq=1,
                           branch="t"), ("127.0.0.1", runtime.sip.port))
    response = await final(impostor)
    assert response.status == 403
    assert (await client.get("/v1.0/calls", params={"token": admin_token})).json()["result"] == []
    impostor.close()
