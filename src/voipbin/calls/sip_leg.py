"""The :class:`~voipbin.calls.leg.Originator` for real SIP: an INVITE dialog (``sip.ua``) plus an RTP session.

For each leg: bind an RTP port from the range, offer PCMU/PCMA/telephone-event (RFC 3264)
in the INVITE, apply the answer from the 2xx, and report progress to the call manager.
"""

from __future__ import annotations

import structlog

from voipbin.calls import hangup as hangups
from voipbin.calls.leg import DialTarget, LegListener
from voipbin.media.ports import PortAllocator
from voipbin.calls.digits import parse_info
from voipbin.media.sdp import SdpError, SessionDescription, create_answer, create_offer, process_answer
from voipbin.media.session import RtpSession
from voipbin.sip.ua import InviteSession, UserAgent

log = structlog.get_logger(__name__)


class SipLeg:
    """One outgoing INVITE dialog with its RTP session (implements :class:`~voipbin.calls.leg.Leg`)."""

    def __init__(self, listener: LegListener, rtp: RtpSession, offer: SessionDescription,
                 advertised_host: str = "127.0.0.1") -> None:
        self._listener = listener
        self._rtp = rtp
        self._offer = offer
        self._advertised_host = advertised_host
        self._sdp_version = 1
        self.session: InviteSession | None = None
        self.media: RtpSession | None = None
        self.sip_status: int | None = None  # the final response that ended an unanswered leg
        self._ended = False

    # ----------------------------------------------------------- InviteHandler (sip.ua callbacks)

    def on_progress(self, status_code: int, sdp: bytes | None) -> None:
        if status_code in (180, 183):
            self._listener.leg_ringing()

    def on_answered(self, sdp: bytes | None) -> None:
        try:
            if not sdp:
                raise SdpError("2xx without an SDP answer")
            self._rtp.apply(process_answer(self._offer, SessionDescription.parse(sdp)))
        except SdpError as exc:
            log.warning("unusable SDP answer; hanging up", error=str(exc))
            self.media = self._rtp
            self._listener.leg_answered()
            if self.session is not None:
                import asyncio

                asyncio.get_running_loop().create_task(self.session.bye())
            return
        self.media = self._rtp
        self._listener.leg_answered()

    def on_ended(self, cause: str, status_code: int | None) -> None:
        if self._ended:
            return
        self._ended = True
        self.sip_status = status_code
        if cause == "rejected" and status_code is not None:
            result = hangups.from_final_response(status_code)
        elif cause == "remote_bye":
            result = hangups.REMOTE_BYE
        elif cause == "local_bye":
            result = hangups.LOCAL_BYE
        else:  # timeout, transport_error
            result = hangups.TRANSPORT_FAILURE
        self._rtp.close()
        self._listener.leg_ended(result)

    def on_reinvite(self, sdp: bytes | None) -> bytes | None:
        self._sdp_version += 1
        return answer_reinvite(self._rtp, sdp, self._advertised_host, self._sdp_version)

    def on_info(self, content_type: str, body: bytes) -> None:
        relay_info_digit(self._listener, content_type, body)

    # ----------------------------------------------------------- Leg

    async def cancel(self) -> None:
        if self.session is not None:
            await self.session.cancel()

    async def hangup(self) -> None:
        if self.session is not None:
            await self.session.bye()


class SipOriginator:
    """Dials :class:`DialTarget`s with a :class:`~voipbin.sip.ua.UserAgent`; RTP on ``rtp_host`` from ``ports``."""

    def __init__(self, ua: UserAgent, *, rtp_host: str, advertised_host: str, ports: PortAllocator) -> None:
        self._ua = ua
        self._rtp_host = rtp_host
        self._advertised_host = advertised_host
        self._ports = ports

    async def originate(self, target: DialTarget, listener: LegListener) -> SipLeg:
        rtp = await RtpSession.open(self._rtp_host, self._ports)
        offer = create_offer(self._advertised_host, rtp.local_port)
        leg = SipLeg(listener, rtp, offer, self._advertised_host)
        try:
            leg.session = await self._ua.invite(
                request_uri=target.request_uri, to_uri=target.to_uri, from_uri=target.from_uri,
                from_display=target.from_display, destination=target.destination, transport=target.transport,
                sdp=offer.serialize(), credentials=target.credentials, headers=dict(target.headers), handler=leg)
        except BaseException:
            rtp.close()
            raise
        return leg


def answer_reinvite(rtp: RtpSession, sdp: bytes | None, advertised_host: str, version: int) -> bytes | None:
    """Answer a re-INVITE's offer (RFC 3264 §8) and apply it: hold from the remote (``sendonly`` or
    ``inactive``, or ``c=0.0.0.0``) makes us stop sending, unhold resumes. Returns our SDP for the
    200, or None (a delayed-offer re-INVITE, or an unusable offer: our last SDP is sent again)."""
    if not sdp:
        return None
    try:
        answer, media = create_answer(SessionDescription.parse(sdp), advertised_host, rtp.local_port,
                                      session_version=version)
    except SdpError as exc:
        log.warning("unusable re-INVITE offer; keeping the session as is", error=str(exc))
        return None
    rtp.apply(media)
    return answer.serialize()


def relay_info_digit(listener: object, content_type: str, body: bytes) -> None:
    """Report a SIP INFO DTMF digit (RFC 6086 ``application/dtmf-relay``) to a listener that takes digits."""
    parsed = parse_info(content_type, body)
    report = getattr(listener, "leg_digit", None)
    if parsed is not None and report is not None:
        report(*parsed)
    elif parsed is None:
        log.debug("INFO without DTMF", content_type=content_type)
