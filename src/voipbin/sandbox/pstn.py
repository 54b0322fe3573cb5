"""The sandbox's virtual PSTN: every ``tel`` destination reaches a virtual phone over real SIP.

`VirtualPstn` is a second SIP user agent of the process (our own ``sip/`` stack and ``media/``
RTP, as a peer would be) bound to a free UDP port on loopback; the sandbox uses it as its trunk
(``sip:127.0.0.1:<port>``) when no trunk is configured, so a call to ``+15559876543`` is an
INVITE to ``sip:+15559876543@127.0.0.1:<port>`` like any trunk call. Each INVITE is answered by
a :class:`VirtualPhone`: it rings for ``ring_s`` (180, RFC 3261 §13.3.1.1), answers (200 OK with
its SDP answer, RFC 3264), then speaks real human speech (LibriVox recordings, see
:mod:`voipbin.sandbox.speech`) with ``pause_s`` of silence before and between utterances until
the call is hung up, and records what it hears into ``<recordings_dir>/<number>-<time>.wav``
(8 kHz PCM16 mono; the path is logged).

It answers the platform only: an INVITE from another source is 403 Forbidden, more than
``max_calls`` at once 486 Busy Here, an offer it cannot answer 488 (RFC 3264 §6).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from pathlib import Path

import structlog

from voipbin.calls.hangup import Hangup
from voipbin.calls.inbound_leg import InboundLeg
from voipbin.media.players import BufferPlayer
from voipbin.media.recorder import WavRecorder
from voipbin.media.sdp import SdpError
from voipbin.media.session import RtpSession
from voipbin.sandbox.speech import SAMPLE_RATE_HZ, Utterance, load_utterances
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.invite_server import IncomingInvite
from voipbin.sip.ua import UserAgent

log = structlog.get_logger(__name__)

RING_S = 1.0
"""How long a virtual phone rings before it answers (seconds)."""
PAUSE_S = 3.0
"""Silence before the first utterance and between two utterances (seconds)."""
KEEP_ENDED = 64
"""Ended calls kept in `VirtualPstn.phones` (for logs and tests)."""
MAX_CALLS = 32
"""Calls the virtual PSTN holds at once; more get 486 Busy Here."""
_UNSAFE = re.compile(r"[^A-Za-z0-9+_-]")


class VirtualPhone:
    """One call to the virtual PSTN, from the INVITE to the BYE (a :class:`LegListener` of its leg)."""

    def __init__(self, incoming: IncomingInvite, *, host: str, utterances: list[Utterance],
                 recording: Path, ring_s: float = RING_S, pause_s: float = PAUSE_S) -> None:
        self.incoming = incoming
        self.number = incoming.request.uri.user or ""
        self.recording = recording
        self.spoken: list[str] = []  # names of the utterances played, in order
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self._host = host
        self._utterances = utterances
        self._ring_s = ring_s
        self._pause_s = pause_s
        self._leg: InboundLeg | None = None

    # LegListener (the leg's callbacks)
    def leg_ringing(self) -> None:
        pass

    def leg_answered(self) -> None:
        self.answered.set()

    def leg_ended(self, hangup: Hangup) -> None:
        self.ended.set()

    async def run(self) -> None:
        """Ring, answer, speak and record until the call ends (CANCEL, BYE, or `hang_up`)."""
        rtp = await RtpSession.open(self._host)
        self._leg = leg = InboundLeg(self.incoming, rtp, self._host)
        leg.attach(self)
        leg.ringing()
        if await self._ended_within(self._ring_s):
            return  # cancelled while ringing
        try:
            await leg.answer()
        except SdpError as exc:
            log.warning("virtual phone cannot answer the offer", number=self.number, error=str(exc))
            self.incoming.reject(488)
            rtp.close()
            self.ended.set()
            return
        recorder = WavRecorder(self.recording, SAMPLE_RATE_HZ)
        rtp.add_inbound_consumer(recorder)
        log.info("virtual phone answered; recording what it hears", number=self.number,
                 recording=str(self.recording))
        try:
            await self._speak(rtp)
        finally:
            rtp.remove_inbound_consumer(recorder)
            recorder.close()
            log.info("virtual phone hung up", number=self.number, recording=str(self.recording),
                     heard_s=round(recorder.frames_written * 0.02, 2), utterances_spoken=len(self.spoken))

    async def hang_up(self) -> None:
        """BYE an answered call, 480 an unanswered one (the PSTN shuts down)."""
        if self._leg is not None:
            await self._leg.hangup()
        elif self.incoming.state == "pending":
            self.incoming.reject(480)
        self.ended.set()

    async def _speak(self, rtp: RtpSession) -> None:
        for utterance in itertools.cycle(self._utterances):
            if await self._ended_within(self._pause_s):
                return
            player = BufferPlayer(utterance.samples, SAMPLE_RATE_HZ, output_rate_hz=SAMPLE_RATE_HZ)
            rtp.outbound.add(player)
            self.spoken.append(utterance.name)
            try:
                done = asyncio.ensure_future(player.wait())
                ended = asyncio.ensure_future(self.ended.wait())
                await asyncio.wait({done, ended}, return_when=asyncio.FIRST_COMPLETED)
                done.cancel()
                ended.cancel()
            finally:
                rtp.outbound.remove(player)
            if self.ended.is_set():
                return

    async def _ended_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.ended.wait(), seconds)
        except TimeoutError:
            return False
        return True


class VirtualPstn:
    """A SIP UA on ``host`` (UDP, free port) answering every INVITE with a :class:`VirtualPhone`."""

    def __init__(self, *, host: str = "127.0.0.1", recordings_dir: Path, ring_s: float = RING_S,
                 pause_s: float = PAUSE_S, utterances: list[Utterance] | None = None,
                 callers: frozenset[str] | None = None, max_calls: int = MAX_CALLS) -> None:
        self.host = host
        self.callers = callers if callers is not None else frozenset({host})
        self.max_calls = max_calls
        self.recordings_dir = recordings_dir
        self.ring_s = ring_s
        self.pause_s = pause_s
        self.phones: list[VirtualPhone] = []  # the calls it took, in order (live ones, the last ended ones)
        self._serial = itertools.count()
        self._utterances = utterances
        self._stack: SipStack | None = None
        self._ua: UserAgent | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def trunk_uri(self) -> str:
        """``sip:<host>:<port>``: where the platform sends ``tel`` calls (once started)."""
        assert self._stack is not None, "VirtualPstn not started"
        return f"sip:{self.host}:{self._stack.port}"

    async def start(self) -> str:
        """Load the recordings (off the loop), bind the SIP port; return `trunk_uri`.

        Raises FileNotFoundError without the recordings, OSError when no port can be bound."""
        if self._utterances is None:
            self._utterances = await asyncio.to_thread(load_utterances)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        self._stack = SipStack(StackConfig(host=self.host, port=0, transports=("UDP",),
                                           user_agent="voipbin-virtual-pstn"))
        await self._stack.start()
        self._ua = UserAgent(self._stack)
        self._ua.on_incoming_invite = self._on_invite
        log.info("virtual PSTN listening: tel destinations reach a virtual phone", trunk=self.trunk_uri,
                 recordings=str(self.recordings_dir))
        return self.trunk_uri

    async def stop(self) -> None:
        """Hang up every call still up, then close the SIP port."""
        await asyncio.gather(*(p.hang_up() for p in self.phones if not p.ended.is_set()), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ua is not None:
            self._ua.close()
        if self._stack is not None:
            await self._stack.stop()

    async def _on_invite(self, incoming: IncomingInvite) -> None:
        assert self._utterances is not None
        if incoming.source[0] not in self.callers:
            log.warning("virtual PSTN: INVITE from a stranger refused", source=incoming.source[0])
            incoming.reject(403)
            return
        if sum(not p.ended.is_set() for p in self.phones) >= self.max_calls:
            incoming.reject(486)
            return
        recent = self.phones[-KEEP_ENDED:]
        self.phones = [p for p in self.phones if not p.ended.is_set() or p in recent]  # bounded, in order
        number = _UNSAFE.sub("_", incoming.request.uri.user or "unknown")
        recording = self.recordings_dir / f"{number}-{time.strftime('%Y%m%dT%H%M%S')}-{next(self._serial)}.wav"
        phone = VirtualPhone(incoming, host=self.host, utterances=self._utterances, recording=recording,
                             ring_s=self.ring_s, pause_s=self.pause_s)
        self.phones.append(phone)
        task = asyncio.get_running_loop().create_task(phone.run())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("virtual phone failed", exc_info=task.exception())
