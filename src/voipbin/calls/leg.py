"""The seam between call control and the SIP user agent: one outgoing leg (an INVITE dialog with media).

``calls/`` asks an :class:`Originator` to dial a :class:`DialTarget`; the leg reports progress
to a :class:`LegListener` (ringing, answered, ended) and, once answered, exposes its
:class:`~voipbin.media.session.RtpSession` (outbound mixer, inbound frames, taps, flush).
``sip/ua`` implements it for real SIP; tests may implement it in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from voipbin.calls.hangup import Hangup
from voipbin.media.sdp import Direction
from voipbin.media.session import RtpSession


@dataclass(frozen=True, slots=True)
class DialTarget:
    """Where and as whom to send an INVITE.

    ``request_uri``: the Request-URI (a registered Contact, a SIP URI or the trunk's);
    ``to_uri``: the To header (the AOR or the dialled address); ``from_uri``/``from_display``:
    the caller; ``destination``: (host, port) to send to when it differs from the Request-URI
    (a binding's received address, RFC 3581/5626); ``transport``: ``UDP`` or ``TCP``;
    ``credentials``: (username, password) for a trunk that challenges (401/407); ``route``: a
    pre-loaded route set (a binding's Path, RFC 3327: the edge proxy the phone registered through).
    """

    request_uri: str
    to_uri: str
    from_uri: str
    from_display: str = ""
    destination: tuple[str, int] | None = None
    transport: str = "UDP"
    credentials: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    route: tuple[str, ...] = ()


class LegListener(Protocol):
    def leg_ringing(self) -> None:
        """A 180/183 arrived (first one only matters)."""

    def leg_answered(self) -> None:
        """The 200 OK arrived, the ACK is sent and media is ready (``leg.media`` set)."""

    def leg_ended(self, hangup: Hangup) -> None:
        """The dialog ended or never started: final non-2xx, BYE either way, CANCEL, RTP timeout."""


class Leg(Protocol):
    media: RtpSession | None

    async def cancel(self) -> None:
        """CANCEL a ringing leg (RFC 3261 §9); ``leg_ended`` follows with the 487."""

    async def hangup(self) -> None:
        """BYE an answered leg (§15); ``leg_ended`` follows."""

    async def update_media(self, direction: Direction) -> None:
        """Re-offer the answered leg's media with ``direction`` (ours: ``sendonly`` holds the
        endpoint, RFC 3264 §8.4; ``sendrecv`` resumes) and apply the endpoint's answer to
        ``media``. A refused offer keeps the session as it was (logged, not raised)."""


class Originator(Protocol):
    async def originate(self, target: DialTarget, listener: LegListener) -> Leg:
        """Send the INVITE and return at once; progress arrives on ``listener``.

        Raises OSError when the transport cannot send at all (the caller ends the call as failed).
        """
        ...
