"""A dead endpoint (issue 14): the phone answers, then sends no RTP and answers nothing (no BYE
response, socket still open so no ICMP either). The call must be hung up within
``VOIPBIN_RTP_TIMEOUT_SECONDS`` + 5 s; before, the BYE's Timer F added 32 s. Real SIP: the
runtime's own UA and RTP against a scripted peer on a UDP socket."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests_support.events import Events
from tests_support.fake_legs import register
from voipbin.config import Settings
from voipbin.events.bus import event_queue
from voipbin.sip.message import Request, make_response
from voipbin.sip.parser import parse_message

RTP_TIMEOUT_S = 1.0


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return Settings(database_url=sqlite_url, webhook_allow_private=True, sip_port=0,  # type: ignore[call-arg]
                    webhook_worker=False, rtp_timeout_seconds=RTP_TIMEOUT_S, _env_file=None)


@pytest_asyncio.fixture
async def events(runtime: Any) -> AsyncIterator[Events]:
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}")
    yield Events(queue, timeout=15)
    await sub.unsubscribe()


class DeadPhone:
    """Answers the first INVITE with 200 + SDP, then never sends anything again."""

    def __init__(self) -> None:
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.sip.setblocking(False)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # open, silent: no ICMP unreachable
        self.rtp.bind(("127.0.0.1", 0))
        self.port = self.sip.getsockname()[1]
        self.requests: list[str] = []

    async def recv(self, timeout: float = 10) -> Request:
        data, addr = await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(self.sip, 65535), timeout)
        message = parse_message(data)
        assert isinstance(message, Request)
        self.requests.append(message.method)
        self.last_addr = addr
        return message

    async def answer(self) -> None:
        invite = await self.recv()
        assert invite.method == "INVITE"
        sdp = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
               f"m=audio {self.rtp.getsockname()[1]} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
        ok = make_response(invite, 200, to_tag="dead1")
        ok.headers.add("Contact", f"<sip:dead@127.0.0.1:{self.port}>")
        ok.headers.add("Content-Type", "application/sdp")
        ok.body = sdp.encode()
        self.sip.sendto(ok.to_bytes(), self.last_addr)
        while (await self.recv()).method != "ACK":
            pass

    async def drain(self, seconds: float) -> None:
        """Read (and ignore) whatever arrives for ``seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                await self.recv(left)
            except TimeoutError:
                return

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()


async def test_dead_endpoint_is_hung_up_within_rtp_timeout_plus_5s(client: httpx.AsyncClient, admin_token: str,
                                                                  runtime: Any, events: Events) -> None:
    r = await client.post("/v1.0/extensions", params={"token": admin_token}, json={
        "name": "dead-phone", "detail": "answers then dies", "extension": "dead1", "password": "dead-phone-pw9"})
    assert r.status_code == 200, r.text
    phone = DeadPhone()
    try:
        await register(runtime, r.json(), f"sip:dead1@127.0.0.1:{phone.port}", ("127.0.0.1", phone.port))
        r = await client.post("/v1.0/calls", params={"token": admin_token}, json={
            "source": {"type": "tel", "target": runtime.seed.number},
            "destinations": [{"type": "extension", "target_name": "dead-phone"}],
            "actions": [{"type": "sleep", "option": {"duration": 600000}}]})
        assert r.status_code == 200, r.text
        call_id = r.json()["calls"][0]["id"]
        await phone.answer()
        await events.next("call_progressing", call_id)
        answered = asyncio.get_running_loop().time()
        hangup = await events.next("call_hangup", call_id, timeout=RTP_TIMEOUT_S + 5 + 5)
        elapsed = asyncio.get_running_loop().time() - answered
        assert elapsed <= RTP_TIMEOUT_S + 5, f"hung up after {elapsed:.1f} s"
        assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("remote", "failed")
        await phone.drain(1.0)
        assert phone.requests.count("BYE") >= 2  # the BYE is still retransmitted after the call ended
    finally:
        phone.close()
