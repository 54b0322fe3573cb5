"""The application side of two loopback UserAgents in the UA tests: a recording InviteHandler
(:class:`Recorder`), a scriptable UAS application (:class:`Callee`) and :func:`dial`.

The fixtures that start the two UAs (``pair``, ``clocked_pair``) are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from voipbin.sip.invite_dialog import InviteSession
from voipbin.sip.invite_server import IncomingInvite
from voipbin.sip.ua import UserAgent

T1 = 0.05  # s; short timers keep the retransmission tests quick
OFFER = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         b"m=audio 40000 RTP/AVP 0\r\n")
ANSWER = OFFER.replace(b"40000", b"40002")
WAIT = 5.0


@dataclass
class Recorder:
    """An InviteHandler that records every callback and lets tests await them."""

    reinvite_answer: bytes | None = None
    offer_answer: bytes | None = None
    progress: list[tuple[int, bytes | None]] = field(default_factory=list)
    answered_sdp: list[bytes | None] = field(default_factory=list)
    ended_with: list[tuple[str, int | None]] = field(default_factory=list)
    reinvites: list[bytes | None] = field(default_factory=list)
    infos: asyncio.Queue[tuple[str, bytes]] = field(default_factory=asyncio.Queue)
    ringing: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def on_progress(self, status_code: int, sdp: bytes | None) -> None:
        self.progress.append((status_code, sdp))
        self.ringing.set()

    def on_answered(self, sdp: bytes | None) -> None:
        self.answered_sdp.append(sdp)
        self.answered.set()

    def on_ended(self, cause: str, status_code: int | None) -> None:
        self.ended_with.append((cause, status_code))
        self.ended.set()

    def on_reinvite(self, sdp: bytes | None) -> bytes | None:
        self.reinvites.append(sdp)
        return self.reinvite_answer

    def on_info(self, content_type: str, body: bytes) -> None:
        self.infos.put_nowait((content_type, body))

    def on_offer(self, sdp: bytes) -> bytes | None:
        return self.offer_answer


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
    sessions: list[tuple[InviteSession, Recorder]] = field(default_factory=list)
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
        recorder = Recorder()
        session = incoming.answer(self.answer_sdp, recorder)
        self.sessions.append((session, recorder))
        self.session_ready.set()


async def dial(caller: UserAgent, callee_ua: UserAgent, recorder: Recorder, *, sdp: bytes | None = OFFER,
               transport: str = "UDP") -> InviteSession:
    port = callee_ua.stack.port
    return await caller.invite(request_uri=f"sip:200@127.0.0.1:{port}", to_uri="sip:200@voipbin.test",
                               from_uri="sip:100@voipbin.test", from_display="Alice", sdp=sdp,
                               transport=transport, handler=recorder)
