"""The :class:`~voipbin.calls.leg.Originator` for real SIP: an INVITE dialog (``sip.ua``) plus an RTP session.

For each leg: find where to send the INVITE (a registered contact's received address, else the
Request-URI located by RFC 3263 with the private-address policy of :mod:`voipbin.sip.locate`: a refused
or unresolvable destination raises an ``OSError`` before anything is sent, and the call fails), bind an
RTP port from the range, offer PCMU/PCMA/telephone-event (RFC 3264) in the INVITE, apply the answer from
the 2xx, and report progress to the call manager.
"""

from __future__ import annotations

import asyncio

import structlog

from voipbin.calls import hangup as hangups
from voipbin.calls.leg import DialTarget, LegListener
from voipbin.media.ports import PortAllocator
from voipbin.calls.digits import parse_info
from voipbin.media.sdp import (
    Direction,
    SdpError,
    SessionDescription,
    create_answer,
    create_offer,
    process_answer,
)
from voipbin.media.session import RtpSession
from voipbin.sip.errors import SipError, SipParseError
from voipbin.sip.locate import Locator
from voipbin.sip.uri import parse_uri
from voipbin.sip.invite_dialog import InviteSession
from voipbin.sip.invite_handler import DIALOG_LOST, SESSION_EXPIRED
from voipbin.sip.ua import UserAgent

log = structlog.get_logger(__name__)

#: The dialog died under an answered call: no session refresh arrived in time (RFC 4028 §10), or
#: our re-INVITE got 408/481 or no answer (RFC 3261 §14.1). Like an RTP timeout this is ``failed``
#: by the remote; ``timeout`` stays the call's own maximum duration (hangup.MAX_DURATION).
DIALOG_DIED = hangups.Hangup(hangups.BY_REMOTE, "failed")


def hangup_for_cause(cause: str, status_code: int | None) -> hangups.Hangup:
    """The call's hangup for an ``InviteHandler.on_ended`` cause."""
    if cause == "rejected" and status_code is not None:
        return hangups.from_final_response(status_code)
    if cause == "remote_bye":
        return hangups.REMOTE_BYE
    if cause == "local_bye":
        return hangups.LOCAL_BYE
    if cause in (SESSION_EXPIRED, DIALOG_LOST):
        return DIALOG_DIED
    return hangups.TRANSPORT_FAILURE  # timeout (no answer / no ACK), transport_error


class SipLeg:
    """One outgoing INVITE dialog with its RTP session (implements :class:`~voipbin.calls.leg.Leg`)."""

    def __init__(self, listener: LegListener, rtp: RtpSession, offer: SessionDescription,
                 advertised_host: str = "127.0.0.1") -> None:
        self._listener = listener
        self._rtp = rtp
        self._offer = offer
        self._advertised_host = advertised_host
        self._sdp_version = 1
        self._session_id = offer.origin.session_id  # kept by every later offer/answer (RFC 3264 §8)
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
                asyncio.get_running_loop().create_task(self.session.bye())
            return
        self.media = self._rtp
        self._listener.leg_answered()

    def on_ended(self, cause: str, status_code: int | None) -> None:
        if self._ended:
            return
        self._ended = True
        self.sip_status = status_code
        result = hangup_for_cause(cause, status_code)
        self._rtp.close()
        self._listener.leg_ended(result)

    def on_reinvite(self, sdp: bytes | None) -> bytes | None:
        self._sdp_version += 1
        return answer_reinvite(self._rtp, sdp, self._advertised_host, self._sdp_version, self._session_id)

    def on_info(self, content_type: str, body: bytes) -> None:
        relay_info_digit(self._listener, content_type, body)

    # ----------------------------------------------------------- Leg

    async def update_media(self, direction: Direction) -> None:
        """Hold (``sendonly``) or resume (``sendrecv``) with a re-INVITE; see :func:`reoffer`."""
        if self.session is None or self.media is None:
            return
        self._sdp_version += 1
        await reoffer(self.session, self._rtp, direction, self._advertised_host, self._session_id,
                      self._sdp_version)

    async def cancel(self) -> None:
        if self.session is not None:
            await self.session.cancel()

    async def hangup(self) -> None:
        if self.session is not None:
            await self.session.bye()


class SipOriginator:
    """Dials :class:`DialTarget`s with a :class:`~voipbin.sip.ua.UserAgent`; RTP on ``rtp_host`` from ``ports``.

    ``locator`` finds targets that carry no ``destination`` (tenant ``sip:`` URIs, the trunk); hosts in
    ``trusted_hosts`` (the configured trunk's) are exempt from its private-address policy.
    """

    def __init__(self, ua: UserAgent, *, rtp_host: str, advertised_host: str, ports: PortAllocator,
                 locator: Locator | None = None, trusted_hosts: frozenset[str] = frozenset()) -> None:
        self._ua = ua
        self._rtp_host = rtp_host
        self._advertised_host = advertised_host
        self._ports = ports
        self._locator = locator or Locator(allow_private=True)
        self._trusted_hosts = frozenset(h.lower() for h in trusted_hosts)

    async def originate(self, target: DialTarget, listener: LegListener) -> SipLeg:
        """Raises OSError (:class:`~voipbin.sip.locate.LocateError`) when the destination is refused or
        does not resolve within the locator's timeout, before any port is bound or INVITE sent."""
        destination, transport = target.destination, target.transport
        if destination is None:
            located = await self._locator.locate(
                target.request_uri, allow_private=True if _host(target.request_uri) in self._trusted_hosts else None)
            destination = (located.host, located.port)
            transport = located.transport if located.transport != "UDP" else target.transport
        rtp = await RtpSession.open(self._rtp_host, self._ports)
        offer = create_offer(self._advertised_host, rtp.local_port)
        leg = SipLeg(listener, rtp, offer, self._advertised_host)
        try:
            leg.session = await self._ua.invite(
                request_uri=target.request_uri, to_uri=target.to_uri, from_uri=well_formed_from(target.from_uri),
                from_display=target.from_display, destination=destination, transport=transport,
                sdp=offer.serialize(), credentials=target.credentials, headers=dict(target.headers),
                route=target.route, handler=leg)
        except BaseException:
            rtp.close()
            raise
        return leg


def well_formed_from(uri: str) -> str:
    """A From URI for ``uri``: a whole SIP URI written as the user part of another
    (``sip:sip:bob@example.com@voipbin.test``, a ``sip`` source placed in ``sip:<source>@<domain>``)
    becomes that URI (``sip:bob@example.com``); anything else is returned as is."""
    _, _, rest = uri.partition(":")
    inner = rest.rsplit("@", 1)[0] if "@" in rest else ""
    return inner if inner.lower().startswith(("sip:", "sips:")) and "@" in inner else uri


def trunk_hosts(trunk_uri: str) -> frozenset[str]:
    """The configured trunk's host (``VOIPBIN_TRUNK_URI``): operator-chosen, so exempt from the policy."""
    host = _host(trunk_uri) if trunk_uri else ""
    return frozenset({host}) if host else frozenset()


def _host(uri: str) -> str:
    try:
        return parse_uri(uri).host.lower()
    except SipParseError:
        return ""


async def reoffer(session: InviteSession, rtp: RtpSession, direction: Direction, advertised_host: str,
                  session_id: str, version: int) -> bool:
    """Send a re-INVITE offering our one audio stream with ``direction`` (same o= session id,
    ``version`` higher than any SDP we sent before, RFC 3264 §8) and apply the answer to ``rtp``
    (a held endpoint answers ``recvonly`` or ``inactive``: we send only, or nothing). True when the
    answer was applied; False when the re-INVITE failed (the session is kept as it was, or the
    dialog ended: RFC 3261 §14.1) or the answer was unusable."""
    offer = create_offer(advertised_host, rtp.local_port, direction=direction, session_id=session_id,
                         session_version=version)
    try:
        answer = await session.reinvite(offer.serialize())
    except SipError as exc:
        log.info("no re-INVITE", error=str(exc))
        return False
    if not answer:
        log.warning("re-INVITE refused; media unchanged", direction=direction.value)
        return False
    try:
        rtp.apply(process_answer(offer, SessionDescription.parse(answer)))
    except SdpError as exc:
        log.warning("unusable answer to our re-INVITE; media unchanged", error=str(exc))
        return False
    return True


def answer_reinvite(rtp: RtpSession, sdp: bytes | None, advertised_host: str, version: int,
                    session_id: str | None = None) -> bytes | None:
    """Answer a re-INVITE's offer (RFC 3264 §8) and apply it: hold from the remote (``sendonly`` or
    ``inactive``, or ``c=0.0.0.0``) makes us stop sending, unhold resumes. Returns our SDP for the
    200, or None (a delayed-offer re-INVITE, or an unusable offer: our last SDP is sent again)."""
    if not sdp:
        return None
    try:
        answer, media = create_answer(SessionDescription.parse(sdp), advertised_host, rtp.local_port,
                                      session_id=session_id, session_version=version)
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
