"""What the call layer implements to follow one INVITE session (:mod:`voipbin.sip.ua`).

:class:`InviteHandler`: plain synchronous callbacks on the event loop (progress, answer, end,
re-INVITE, INFO); :class:`DelayedOfferHandler` adds the answer to a 2xx offer (RFC 3264 §4);
:class:`NullHandler` ignores everything. The ``on_ended`` causes are the constants below.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)

# on_ended causes
REJECTED = "rejected"
REMOTE_BYE = "remote_bye"
LOCAL_BYE = "local_bye"
TIMEOUT = "timeout"
TRANSPORT_ERROR = "transport_error"
DIALOG_LOST = "dialog_lost"
SESSION_EXPIRED = "session_expired"


class InviteHandler(Protocol):
    """What the call layer implements to follow one INVITE session. Plain synchronous callbacks
    run on the event loop: they must not block (schedule work instead)."""

    def on_progress(self, status_code: int, sdp: bytes | None) -> None:
        """A 180/183 arrived (every one after 100; early media SDP when the 183 carries one)."""

    def on_answered(self, sdp: bytes | None) -> None:
        """UAC: a 2xx arrived and our ACK is sent (the 2xx SDP). UAS: the ACK for our 2xx arrived
        (the ACK SDP of a delayed offer, else the INVITE's offer). The dialog is confirmed."""

    def on_ended(self, cause: str, status_code: int | None) -> None:
        """The session ended; called exactly once. ``cause``: ``rejected`` (final non-2xx incl.
        487 after our CANCEL; ``status_code`` set), ``remote_bye`` (BYE received, 200 sent),
        ``local_bye`` (our BYE answered or timed out), ``timeout`` (Timer B, no ACK for our 2xx
        within 64*T1, or no final response within 64*T1 of our CANCEL), ``transport_error``,
        ``dialog_lost`` (our re-INVITE got 408/481 or no response: §14.1, §12.2.1.2; a BYE is
        sent), ``session_expired`` (RFC 4028 §10: no session refresh in time; a BYE is sent)."""

    def on_reinvite(self, sdp: bytes | None) -> bytes | None:
        """A re-INVITE (§14.2) arrived with ``sdp`` (None: delayed offer). Return our SDP for the
        200, or None to send the last one again."""

    def on_info(self, content_type: str, body: bytes) -> None:
        """An in-dialog INFO arrived (RFC 6086), e.g. ``application/dtmf-relay``; 200 is sent."""


class DelayedOfferHandler(InviteHandler, Protocol):
    """Optional extension of :class:`InviteHandler` for delayed-offer INVITEs we send."""

    def on_offer(self, sdp: bytes) -> bytes | None:
        """Our INVITE had no SDP and the 2xx carries the offer: return the answer for the ACK
        (RFC 3261 §13.2.1, RFC 3264 §4)."""


class NullHandler:
    """An :class:`InviteHandler` that ignores everything (the default for answered calls)."""

    def on_progress(self, status_code: int, sdp: bytes | None) -> None:
        pass

    def on_answered(self, sdp: bytes | None) -> None:
        pass

    def on_ended(self, cause: str, status_code: int | None) -> None:
        pass

    def on_reinvite(self, sdp: bytes | None) -> bytes | None:
        return None

    def on_info(self, content_type: str, body: bytes) -> None:
        pass


def notify(handler: Any, name: str, *args: Any) -> Any:
    """Call ``handler.name(*args)``; a missing method or an exception in it is logged, not raised."""
    method = getattr(handler, name, None)
    if method is None:
        return None
    try:
        return method(*args)
    except Exception:
        log.exception("InviteHandler.%s failed", name)
        return None
