"""The application side of two loopback UserAgents in the UA tests: a scriptable UAS application
(:class:`Callee`, each answered session followed by a :class:`~tests_support.legs.LegRecorder`) and
:func:`dial`.

The fixtures that start the two UAs (``pair``, ``clocked_pair``) are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from tests_support.legs import LegRecorder
from voipbin.sip.invite_dialog import InviteSession
from voipbin.sip.invite_server import IncomingInvite
from voipbin.sip.ua import UserAgent

T1 = 0.05  # s; short timers keep the retransmission tests quick
OFFER = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         b"m=audio 40000 RTP/AVP 0\r\n")
ANSWER = OFFER.replace(b"40000", b"40002")
WAIT = 5.0


async def until(event: asyncio.Event, timeout: float = WAIT) -> None:
    await asyncio.wait_for(event.wait(), timeout)


@dataclass
class Callee:
    """The UAS application: what to do with each incoming INVITE."""

    ua: UserAgent
    mode: str = "answer"  # answer | reject | ring | ring-then-answer
    reject_code: int = 486
    answer_sdp: bytes | None = ANSWER
    incoming: list[IncomingInvite] = field(default_factory=list)
    sessions: list[tuple[InviteSession, LegRecorder]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    session_ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, incoming: IncomingInvite) -> None:
        self.incoming.append(incoming)
        self.arrived.set()
        if self.mode == "reject":
            incoming.reject(self.reject_code)
            return
        incoming.ringing()
        if self.mode == "ring":
            return
        recorder = LegRecorder()
        session = incoming.answer(self.answer_sdp, recorder)
        self.sessions.append((session, recorder))
        self.session_ready.set()


async def dial(caller: UserAgent, callee_ua: UserAgent, recorder: LegRecorder, *, sdp: bytes | None = OFFER,
               transport: str = "UDP") -> InviteSession:
    port = callee_ua.stack.port
    return await caller.invite(request_uri=f"sip:200@127.0.0.1:{port}", to_uri="sip:200@voipbin.test",
                               from_uri="sip:100@voipbin.test", from_display="Alice", sdp=sdp,
                               transport=transport, handler=recorder)
