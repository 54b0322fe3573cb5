"""DTMF across a bridge (issue 14): a call to extension alice whose flow ``connect``s extension bob.
Both phones are our own SIP UA with real RTP. A digit alice signals by RFC 4733 or by SIP INFO
(RFC 6086) reaches bob as RFC 4733 telephone-events, and the other way round."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest_asyncio

from tests_support.events import Events
from tests_support.fake_legs import register
from tests_support.legs import RtpLeg
from voipbin.events.bus import event_queue
from voipbin.media.players import BufferPlayer
from voipbin.media.sdp import SessionDescription, create_answer
from voipbin.media.session import RtpSession
from voipbin.sip.invite_server import IncomingInvite
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.ua import UserAgent

WAIT = 10.0


class Phone(RtpLeg):
    """One answered call on the phones' UA (its RTP, what it heard, the digits it received); the
    loudest sample it heard so far; its RTP closed when the call ends."""

    def __init__(self, rtp: RtpSession) -> None:
        super().__init__(rtp)
        self.loudest = 0

    def on_audio(self, frame: bytes) -> None:
        super().on_audio(frame)
        self.loudest = max(self.loudest, int(np.max(np.abs(np.frombuffer(frame, "<i2")))))

    def on_ended(self, cause: str, status_code: int | None) -> None:
        super().on_ended(cause, status_code)
        self.rtp.close()


@pytest_asyncio.fixture
async def phones() -> AsyncIterator[tuple[UserAgent, dict[str, Phone], asyncio.Queue[str]]]:
    stack = SipStack(StackConfig(host="127.0.0.1", port=0))
    await stack.start()
    agent = UserAgent(stack)
    answered: dict[str, Phone] = {}
    ready: asyncio.Queue[str] = asyncio.Queue()

    async def answer(incoming: IncomingInvite) -> None:
        user = incoming.request.uri.user or ""
        rtp = await RtpSession.open("127.0.0.1")
        assert incoming.remote_sdp is not None
        sdp, media = create_answer(SessionDescription.parse(incoming.remote_sdp), "127.0.0.1", rtp.local_port)
        rtp.apply(media)
        phone = Phone(rtp)
        phone.session = incoming.answer(sdp.serialize(), phone)
        answered[user] = phone
        ready.put_nowait(user)

    agent.on_incoming_invite = answer
    yield agent, answered, ready
    for phone in answered.values():
        phone.rtp.close()
    agent.close()
    await stack.stop()


async def _extension(client: httpx.AsyncClient, token: str, runtime: Any, name: str, port: int) -> None:
    r = await client.post("/v1.0/extensions", params={"token": token},
                          json={"name": name, "detail": f"{name} phone", "extension": name, "password": f"{name}-pass-7"})
    assert r.status_code == 200, r.text
    await register(runtime, r.json(), f"sip:{name}@127.0.0.1:{port}", ("127.0.0.1", port))


async def test_dtmf_crosses_the_bridge_as_rfc4733(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                  phones: tuple[UserAgent, dict[str, Phone], asyncio.Queue[str]]
                                                  ) -> None:
    agent, answered, ready = phones
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}")
    events = Events(queue, timeout=15)
    port = agent.stack.transports["UDP"].local_address[1]
    await _extension(client, admin_token, runtime, "alice", port)
    await _extension(client, admin_token, runtime, "bob", port)
    r = await client.post("/v1.0/calls", params={"token": admin_token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": "alice"}],
        "actions": [{"type": "connect", "option": {"destinations": [{"type": "extension", "target_name": "bob"}]}}]})
    assert r.status_code == 200, r.text
    call_id = r.json()["calls"][0]["id"]
    assert {await asyncio.wait_for(ready.get(), WAIT), await asyncio.wait_for(ready.get(), WAIT)} == {"alice", "bob"}
    alice, bob = answered["alice"], answered["bob"]

    tone = (8000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype("<i2")
    player = alice.rtp.outbound.add(BufferPlayer(tone, loop=True))
    async def bridged() -> None:
        while bob.loudest < 4000:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(bridged(), WAIT)  # alice's audio reaches bob: the bridge is up
    alice.rtp.outbound.remove(player)

    await alice.rtp.send_dtmf("1", duration_ms=80)
    assert await bob.next_digit(WAIT) == "1"  # RFC 4733 in -> RFC 4733 out
    assert alice.session is not None and bob.session is not None
    assert await alice.session.info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n") == 200
    assert await bob.next_digit(WAIT) == "5"  # SIP INFO in -> RFC 4733 out
    await bob.rtp.send_dtmf("#", duration_ms=80)
    assert await alice.next_digit(WAIT) == "#"
    assert await bob.session.info("application/dtmf", b"9") == 200
    assert await alice.next_digit(WAIT) == "9"
    assert bob.digits == ["1", "5"] and alice.digits == ["#", "9"]
    assert bob.rtp.stats.dtmf_received == 2 and alice.rtp.stats.dtmf_received == 2

    received = [(await events.next("dtmf_received")).data["digit"] for _ in range(4)]
    assert received == ["1", "5", "#", "9"]
    r = await client.delete(f"/v1.0/calls/{call_id}", params={"token": admin_token})
    assert r.status_code == 200, r.text
    await sub.unsubscribe()
