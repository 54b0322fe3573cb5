"""The application side of a call leg in tests and benches: an
:class:`~voipbin.sip.invite_handler.InviteHandler` that records what our SIP UA reports.

* :class:`LegRecorder`: every callback of one INVITE session (RFC 3261 §13-§15), kept in order in a
  list and signalled by an ``asyncio.Event`` (the first progress, answer and end) or a queue
  (re-INVITEs, INFOs), so tests await them instead of sleeping. It answers re-INVITEs
  (``reinvite_answer``) and 2xx offers of delayed-offer INVITEs (``offer_answer``, RFC 3264 §4).
* :class:`RtpLeg`: a :class:`LegRecorder` with the leg's :class:`~voipbin.media.session.RtpSession`:
  what the phone hears (8 kHz PCM16) and the RFC 4733 digits it receives.
* :class:`RtpCaller`: an :class:`RtpLeg` for an INVITE we send: its SDP offer, and the 2xx answer
  applied to the RTP session (RFC 3264 §5) before ``answered`` is set.

Subclass one where a test needs more (a tone it says, its RTP closed at the end): call ``super()``
first in an overridden callback so the record stays whole.
"""

from __future__ import annotations

import asyncio
from typing import Any

from voipbin.media.codecs.telephone_event import DtmfDigit
from voipbin.media.sdp import SessionDescription, create_offer, process_answer
from voipbin.media.session import RtpSession

WAIT_S = 10.0  # default timeout of the awaiting methods
PCM16_BYTES_PER_S = 8000 * 2  # what an RtpSession's inbound consumers get: 8 kHz PCM16


class LegRecorder:
    """An InviteHandler that records every callback and lets tests await them.

    ``reinvite_answer``: the SDP ``on_reinvite`` returns for the 200 (None: the last one again);
    ``offer_answer``: the SDP ``on_offer`` returns for the ACK of a 2xx offer. Both may be changed
    between calls. ``session``: the :class:`~voipbin.sip.invite_dialog.InviteSession` this handler
    follows, where the test keeps it here (the UA does not set it).

    Records, in arrival order: ``progress`` ((status_code, sdp) of each 180/183), ``answered_sdp``,
    ``ended_with`` ((cause, status_code); one entry, the UA ends a session once), ``reinvites``
    (each re-INVITE's SDP, None for a delayed offer), ``infos`` ((content_type, body) of each INFO,
    RFC 6086). Events: ``ringing`` (first progress), ``answered``, ``ended``; queues of the same
    items: ``reinvite_queue``, ``info_queue`` (read with :meth:`next_reinvite`, :meth:`next_info`).
    """

    def __init__(self, *, reinvite_answer: bytes | None = None, offer_answer: bytes | None = None) -> None:
        self.reinvite_answer = reinvite_answer
        self.offer_answer = offer_answer
        self.session: Any = None
        self.progress: list[tuple[int, bytes | None]] = []
        self.answered_sdp: list[bytes | None] = []
        self.ended_with: list[tuple[str, int | None]] = []
        self.reinvites: list[bytes | None] = []
        self.infos: list[tuple[str, bytes]] = []
        self.ringing = asyncio.Event()
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()
        self.reinvite_queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.info_queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()

    @property
    def progress_codes(self) -> list[int]:
        """The status codes of ``progress`` (180, 183, ...; 100 Trying is never reported)."""
        return [code for code, _ in self.progress]

    @property
    def status(self) -> int | None:
        """The status code the session ended with (a rejection's final response, our BYE's answer);
        None before the end or when the end had none."""
        return self.ended_with[-1][1] if self.ended_with else None

    async def until_answered(self, timeout: float = WAIT_S) -> bytes | None:
        """Await the answer; its SDP. Raises TimeoutError after ``timeout`` seconds."""
        await asyncio.wait_for(self.answered.wait(), timeout)
        return self.answered_sdp[0]

    async def until_ended(self, timeout: float = WAIT_S) -> tuple[str, int | None]:
        """Await the end; (cause, status_code) as ``on_ended`` got them. Raises TimeoutError."""
        await asyncio.wait_for(self.ended.wait(), timeout)
        return self.ended_with[0]

    async def next_reinvite(self, timeout: float = WAIT_S) -> bytes | None:
        """The SDP of the next re-INVITE not read yet (awaited). Raises TimeoutError."""
        return await asyncio.wait_for(self.reinvite_queue.get(), timeout)

    async def next_info(self, timeout: float = WAIT_S) -> tuple[str, bytes]:
        """(content_type, body) of the next INFO not read yet (awaited). Raises TimeoutError."""
        return await asyncio.wait_for(self.info_queue.get(), timeout)

    # InviteHandler
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
        self.reinvite_queue.put_nowait(sdp)
        return self.reinvite_answer

    def on_info(self, content_type: str, body: bytes) -> None:
        self.infos.append((content_type, body))
        self.info_queue.put_nowait((content_type, body))

    # DelayedOfferHandler
    def on_offer(self, sdp: bytes) -> bytes | None:
        return self.offer_answer


class RtpLeg(LegRecorder):
    """A :class:`LegRecorder` with the leg's RTP session ``rtp``, which it listens to: ``heard``
    (all the phone heard, 8 kHz PCM16; :meth:`next_audio`) and ``digits`` (RFC 4733 events
    received, in order; :meth:`next_digit`). It becomes ``rtp``'s ``on_dtmf`` and an inbound
    consumer (:meth:`on_audio`, :meth:`on_dtmf`: override them with ``super()`` for more)."""

    def __init__(self, rtp: RtpSession, **answers: bytes | None) -> None:
        super().__init__(**answers)
        self.rtp = rtp
        self.heard = bytearray()
        self.digits: list[str] = []
        self._digit_queue: asyncio.Queue[str] = asyncio.Queue()
        self._wanted: tuple[int, asyncio.Event] | None = None
        rtp.on_dtmf = self.on_dtmf
        rtp.add_inbound_consumer(self.on_audio)

    def on_audio(self, frame: bytes) -> None:
        self.heard += frame
        if self._wanted is not None and len(self.heard) >= self._wanted[0]:
            self._wanted[1].set()

    def on_dtmf(self, digit: DtmfDigit) -> None:
        self.digits.append(digit.digit)
        self._digit_queue.put_nowait(digit.digit)

    async def next_audio(self, seconds: float) -> bytes:
        """The next ``seconds`` of what the phone hears (PCM16); raises TimeoutError when it has not
        heard them ``seconds`` + 10 s from now."""
        start, arrived = len(self.heard), asyncio.Event()
        self._wanted = (start + int(seconds * PCM16_BYTES_PER_S), arrived)
        await asyncio.wait_for(arrived.wait(), seconds + 10)
        return bytes(self.heard[start:])

    async def next_digit(self, timeout: float = WAIT_S) -> str:
        """The next received digit not read yet (awaited). Raises TimeoutError."""
        return await asyncio.wait_for(self._digit_queue.get(), timeout)


class RtpCaller(RtpLeg):
    """An :class:`RtpLeg` for an INVITE we send: ``offer`` (our SDP offer for ``rtp``, on ``host``)
    and, on the 2xx, its answer applied to ``rtp`` before ``answered`` is set."""

    def __init__(self, rtp: RtpSession, *, host: str = "127.0.0.1", **answers: bytes | None) -> None:
        super().__init__(rtp, **answers)
        self.offer: SessionDescription = create_offer(host, rtp.local_port)

    def on_answered(self, sdp: bytes | None) -> None:
        assert sdp is not None, "a 2xx to our offer without an answer"
        self.rtp.apply(process_answer(self.offer, SessionDescription.parse(sdp)))
        super().on_answered(sdp)
