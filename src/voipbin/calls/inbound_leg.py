"""The UAS leg of an inbound call: an :class:`~voipbin.sip.invite_server.IncomingInvite` with its RTP session.

Implements :class:`~voipbin.calls.leg.Leg` plus what inbound calls need: ``ringing()`` (180),
``answer()`` (200 OK with our SDP answer, or our offer for a delayed-offer INVITE, whose answer
comes in the ACK), and a final response chosen by why we give up before answering
(``reject_code``, e.g. the 486 or 603 of the callee a ``connect`` dialled).
"""

from __future__ import annotations

import asyncio

import structlog

from voipbin.calls import hangup as hangups
from voipbin.calls.leg import LegListener
from voipbin.calls.sip_leg import answer_reinvite, hangup_for_cause, relay_info_digit, reoffer
from voipbin.media.sdp import (
    Direction,
    SdpError,
    SessionDescription,
    create_answer,
    create_offer,
    process_answer,
)
from voipbin.media.session import RtpSession
from voipbin.sip.invite_dialog import InviteSession
from voipbin.sip.invite_server import IncomingInvite

log = structlog.get_logger(__name__)

DEFAULT_REJECT_CODE = hangups.DEFAULT_REJECT_CODE
CALLER_CANCEL = hangups.Hangup(hangups.BY_REMOTE, "cancel")


class InboundLeg:
    """One INVITE we received, from the first response to the end of its dialog."""

    def __init__(self, incoming: IncomingInvite, rtp: RtpSession, advertised_host: str) -> None:
        self.incoming = incoming
        self._rtp = rtp
        self._advertised_host = advertised_host
        self._listener: LegListener | None = None
        self._offer_sent: SessionDescription | None = None  # delayed offer: ours, in the 200
        self._sdp_version = 1
        self._session_id: str | None = None  # of our first SDP, kept by every later one (RFC 3264 §8)
        self._ended = False
        self.session: InviteSession | None = None
        self.media: RtpSession | None = None
        self.reject_code: int | None = None
        incoming.on_cancel = self._on_cancel

    def attach(self, listener: LegListener) -> None:
        self._listener = listener
        if self.incoming.cancelled.is_set():
            self._on_cancel()

    # ----------------------------------------------------------- signalling we send

    def ringing(self) -> None:
        """180 Ringing (idempotent while unanswered)."""
        if self.incoming.state == "pending":
            self.incoming.ringing(180)

    async def answer(self) -> None:
        """Send 200 OK; ``leg_answered`` follows at once (media flows from now on).
        Raises SdpError when the offer cannot be answered (checked before the call was created)."""
        if self.incoming.state != "pending":
            return
        offer = self.incoming.remote_sdp
        if offer:
            answer, media = create_answer(SessionDescription.parse(offer), self._advertised_host, self._rtp.local_port)
            self._rtp.apply(media)
            self._session_id = answer.origin.session_id
            body = answer.serialize()
        else:  # delayed offer (RFC 3261 §13.2.1): we offer in the 200, the answer comes in the ACK
            self._offer_sent = create_offer(self._advertised_host, self._rtp.local_port)
            self._session_id = self._offer_sent.origin.session_id
            body = self._offer_sent.serialize()
        self.session = self.incoming.answer(body, handler=self)
        self.media = self._rtp
        if self._listener is not None:
            self._listener.leg_answered()

    # ----------------------------------------------------------- Leg

    async def cancel(self) -> None:
        """Give up before answering: a final response by ``reject_code`` (else 603); BYE if answered."""
        if self.session is not None:
            await self.session.bye()
            return
        if self.incoming.state == "pending":
            self.incoming.reject(self.reject_code or DEFAULT_REJECT_CODE)
            self._end(hangups.LOCAL_CANCEL)

    async def hangup(self) -> None:
        if self.session is not None:
            await self.session.bye()
        else:
            await self.cancel()

    async def update_media(self, direction: Direction) -> None:
        """Hold (``sendonly``) or resume (``sendrecv``) with a re-INVITE; see :func:`reoffer`."""
        if self.session is None or self.media is None or self._session_id is None:
            return
        self._sdp_version += 1
        await reoffer(self.session, self._rtp, direction, self._advertised_host, self._session_id,
                      self._sdp_version)

    def _end(self, result: hangups.Hangup) -> None:
        if self._ended:
            return
        self._ended = True
        self._rtp.close()
        if self._listener is not None:
            self._listener.leg_ended(result)

    def _on_cancel(self) -> None:
        if self._listener is not None:
            self._end(CALLER_CANCEL)

    # ----------------------------------------------------------- InviteHandler (sip.ua callbacks)

    def on_progress(self, status_code: int, sdp: bytes | None) -> None:
        pass

    def on_answered(self, sdp: bytes | None) -> None:
        """The ACK arrived: for a delayed offer it carries the caller's answer."""
        if self._offer_sent is not None and sdp:
            try:
                self._rtp.apply(process_answer(self._offer_sent, SessionDescription.parse(sdp)))
            except SdpError as exc:
                log.warning("unusable SDP answer in the ACK; hanging up", error=str(exc))
                if self.session is not None:
                    asyncio.get_running_loop().create_task(self.session.bye())

    def on_ended(self, cause: str, status_code: int | None) -> None:
        self._end(hangup_for_cause(cause, status_code))  # no ACK for our 2xx: timeout -> failed

    def on_reinvite(self, sdp: bytes | None) -> bytes | None:
        self._sdp_version += 1
        return answer_reinvite(self._rtp, sdp, self._advertised_host, self._sdp_version, self._session_id)

    def on_info(self, content_type: str, body: bytes) -> None:
        relay_info_digit(self._listener, content_type, body)
