"""An in-memory :class:`~voipbin.calls.leg.Originator` for call-control tests without SIP.

Each dialled leg is scripted by the test (``ring``, ``answer``, ``reject``, ``remote_bye``).
Answering creates two real RTP sessions on 127.0.0.1 wired to each other: ours (the call's
media) and the phone's, whose received audio is kept in ``phone_audio`` (PCM16, 8 kHz).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from voipbin.calls import hangup as hangups
from voipbin.calls.leg import DialTarget, LegListener
from voipbin.media.codecs.g711 import PcmuCodec
from voipbin.media.sdp import Direction
from voipbin.media.session import RtpSession
from voipbin.sip.location import Binding


class FakeLeg:
    def __init__(self, target: DialTarget, listener: LegListener) -> None:
        self.target = target
        self.listener = listener
        self.media: RtpSession | None = None
        self.phone: RtpSession | None = None
        self.phone_audio = bytearray()
        self.cancelled = asyncio.Event()
        self.byed = asyncio.Event()
        self.ended = False
        self.sip_status: int | None = None  # the final response of a rejected leg (as SipLeg's)
        self.media_updates: asyncio.Queue[Direction] = asyncio.Queue()  # each update_media, in order

    def ring(self) -> None:
        self.listener.leg_ringing()

    async def answer(self, *, phone_sends: bool = True) -> None:
        self.media = await RtpSession.open("127.0.0.1", codec=PcmuCodec())
        self.phone = await RtpSession.open("127.0.0.1", codec=PcmuCodec())
        self.media.set_remote_address(("127.0.0.1", self.phone.local_port))
        self.phone.set_remote_address(("127.0.0.1", self.media.local_port))
        self.phone.add_inbound_consumer(self.phone_audio.extend)
        if not phone_sends:  # a dead endpoint: its socket is gone (symmetric RTP would answer otherwise)
            self.phone.close()
        self.listener.leg_answered()

    def _end(self, result: hangups.Hangup) -> None:
        if not self.ended:
            self.ended = True
            if self.phone is not None:
                self.phone.close()
            self.listener.leg_ended(result)

    def reject(self, status_code: int) -> None:
        self.sip_status = status_code
        self._end(hangups.from_final_response(status_code))

    def remote_bye(self) -> None:
        self._end(hangups.REMOTE_BYE)

    async def cancel(self) -> None:
        self.cancelled.set()
        self._end(hangups.from_final_response(487))

    async def hangup(self) -> None:
        self.byed.set()
        self._end(hangups.LOCAL_BYE)

    async def update_media(self, direction: Direction) -> None:
        """A scripted phone that accepts every re-offer (hold: it answers ``recvonly``)."""
        self.media_updates.put_nowait(direction)
        if self.media is not None:
            self.media.direction = direction


class FakeOriginator:
    def __init__(self) -> None:
        self.legs: asyncio.Queue[FakeLeg] = asyncio.Queue()
        self.all: list[FakeLeg] = []

    async def originate(self, target: DialTarget, listener: LegListener) -> FakeLeg:
        leg = FakeLeg(target, listener)
        self.all.append(leg)
        self.legs.put_nowait(leg)
        return leg

    async def next_leg(self, timeout: float = 5) -> FakeLeg:
        return await asyncio.wait_for(self.legs.get(), timeout)


async def register(runtime: Any, ext: dict[str, Any], contact: str, received: tuple[str, int]) -> None:
    aor = f"sip:{ext['extension']}@{ext['customer_id']}.registrar.{runtime.settings.sip_domain}"
    await runtime.location.save(Binding(
        aor=aor, contact=contact, expires_at=time.time() + 300, received=received, transport="UDP",
        call_id="reg-" + contact, cseq=1, domain_id=ext["customer_id"], user=ext["extension"], owner_id=ext["id"]))
