"""The INVITE we answer (UAS, RFC 3261 §13.3): :class:`IncomingInvite` and :class:`ServerInviteSession`.

A new INVITE reaches the application as an :class:`IncomingInvite` (``UserAgent.on_incoming_invite``):
180/183 (:meth:`IncomingInvite.ringing`, §13.3.1.1), then :meth:`IncomingInvite.answer` or
:meth:`IncomingInvite.reject`. A CANCEL first (§9.2) gets 200, the INVITE 487, and the application
``on_cancel()``. :meth:`IncomingInvite.answer` builds a :class:`ServerInviteSession` (dialog
confirmed at once, §12.1.1) whose 2xx is retransmitted until the ACK (§13.3.1.4, Timer G/H style,
:mod:`voipbin.sip.retransmit_2xx`: the transaction layer has no RFC 6026 Accepted state); no ACK
within 64*T1 ends it with BYE (``timeout``). The first ACK reaches ``on_answered``. A
retransmission of the answered INVITE gets the same 2xx again (the user agent looks up
:attr:`ServerInviteSession.initial_2xx`).

Everything else after the 2xx is the shared dialog usage (:mod:`voipbin.sip.invite_dialog`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from voipbin.sip.dialog import Dialog
from voipbin.sip.errors import SipError
from voipbin.sip.invite import SDP, contact_for, next_hop, sdp_of
from voipbin.sip.invite_dialog import CONFIRMED, InviteSession, SessionHost
from voipbin.sip.invite_handler import InviteHandler, NullHandler, notify
from voipbin.sip.message import Response, make_response, new_tag
from voipbin.sip.transaction import ServerTransaction

log = logging.getLogger(__name__)

# IncomingInvite.state
PENDING = "pending"
ANSWERED = "answered"
REJECTED = "rejected"
CANCELLED = "cancelled"


class IncomingInviteHost(SessionHost, Protocol):
    """What an :class:`IncomingInvite` needs of its user agent besides :class:`SessionHost`."""

    def add_answered(self, session: ServerInviteSession) -> None:
        """Register a session just answered (by key, dialog and the caller's tag)."""

    def forget_incoming(self, incoming: IncomingInvite) -> None:
        """The INVITE is no longer pending (answered, rejected or cancelled)."""


class ServerInviteSession(InviteSession):
    """The session of an INVITE we answered (see the module docstring); built by
    :meth:`answered` (from :meth:`IncomingInvite.answer`). ``initial_2xx``: the 2xx we sent for
    the INVITE (sent again when the INVITE is retransmitted)."""

    owns_call_id = False

    def __init__(self, ua: SessionHost, tx: ServerTransaction, *, dialog: Dialog, contact: str,
                 handler: InviteHandler, local_sdp: bytes | None) -> None:
        request = tx.request
        super().__init__(ua, call_id=request.call_id, local_tag=dialog.local_tag,
                         transport=tx.transport.name, handler=handler, local_sdp=local_sdp, contact=contact,
                         dest=next_hop(dialog) if dialog.route_set else tx.dest, invite_dest=tx.dest)
        self.remote_sdp = sdp_of(request)
        self.dialog = dialog
        self.state = CONFIRMED
        self.initial_2xx: Response | None = None
        self._answered_notified = False

    @classmethod
    def answered(cls, ua: IncomingInviteHost, tx: ServerTransaction, *, dialog: Dialog, contact: str,
                 handler: InviteHandler, sdp: bytes | None) -> ServerInviteSession:
        """The session of ``tx``'s INVITE in ``dialog`` (:meth:`Dialog.from_uas`, confirmed):
        registered with ``ua``, the 200 with ``sdp`` sent (and retransmitted until the ACK)."""
        session = cls(ua, tx, dialog=dialog, contact=contact, handler=handler, local_sdp=sdp)
        ua.add_answered(session)
        session.initial_2xx = session._send_2xx(tx, tx.request, sdp)
        return session

    @property
    def remote_key(self) -> tuple[str, str]:
        """Call-ID + the caller's From tag (how a retransmitted INVITE finds this session)."""
        assert self.dialog is not None
        return self.call_id, self.dialog.remote_tag

    @property
    def tombstone_key(self) -> tuple[str, str, str]:
        return ("uas", *self.remote_key)

    def _acked(self) -> None:
        if not self._answered_notified:
            self._answered_notified = True
            notify(self.handler, "on_answered", self.remote_sdp)


class IncomingInvite:
    """A new INVITE waiting for the application (UAS, §13.3): ``request``, ``source``,
    ``remote_sdp``. Call :meth:`ringing`, then :meth:`answer` or :meth:`reject`. If the caller
    CANCELs first, 487 is sent, ``cancelled`` is set and ``on_cancel()`` called.

    ``state``: ``pending`` | ``answered`` | ``rejected`` | ``cancelled``."""

    def __init__(self, ua: IncomingInviteHost, tx: ServerTransaction) -> None:
        self.ua = ua
        self.tx = tx
        self.request = tx.request
        self.source = tx.source
        self.local_tag = new_tag()
        self.state = PENDING
        self.cancelled = asyncio.Event()
        self.on_cancel: Callable[[], None] | None = None
        self.session: ServerInviteSession | None = None
        user = self.request.uri.user if self.request.uri.is_sip else None
        host, port = ua.stack.advertised
        self.contact = contact_for(user, host, port, tx.transport.name)

    @property
    def call_id(self) -> str:
        return self.request.call_id

    @property
    def remote_sdp(self) -> bytes | None:
        return sdp_of(self.request)

    @property
    def key(self) -> tuple[str, str]:
        return self.request.call_id, self.request.from_.tag or ""

    def ringing(self, status: int = 180, sdp: bytes | None = None) -> None:
        """Send 180 Ringing (or 183 with early-media ``sdp``) with our To tag (§13.3.1.1)."""
        if self.state != PENDING:
            return
        response = make_response(self.request, status, to_tag=self.local_tag)
        response.headers.add("Contact", self.contact)
        if sdp:
            response.headers.add("Content-Type", SDP)
            response.body = sdp
        self.ua.respond(self.tx, response)

    def answer(self, sdp: bytes | None, handler: InviteHandler | None = None) -> ServerInviteSession:
        """Send 200 OK with ``sdp`` (our answer, or our offer for a delayed-offer INVITE) and return
        the confirmed :class:`ServerInviteSession`; ``handler.on_answered`` runs when the ACK
        arrives. Raises SipError when the INVITE was already answered, rejected or cancelled."""
        if self.state != PENDING:
            raise SipError(f"INVITE already {self.state}")
        dialog = Dialog.from_uas(self.request, self.local_tag)
        self._leave(ANSWERED)
        self.session = ServerInviteSession.answered(self.ua, self.tx, dialog=dialog, contact=self.contact,
                                                    handler=handler or NullHandler(), sdp=sdp)
        return self.session

    def reject(self, status: int = 486, reason: str | None = None,
               headers: list[tuple[str, str]] | None = None) -> None:
        """Send a final non-2xx response (e.g. 486 Busy Here, 488, 603; ``headers`` such as a 407's
        ``Proxy-Authenticate``); the server transaction retransmits it until the ACK (§17.2.1)."""
        if self.state != PENDING:
            return
        if not 300 <= status < 700:
            raise ValueError(f"reject needs a 3xx-6xx status, not {status}")
        self._leave(REJECTED)
        response = make_response(self.request, status, reason, to_tag=self.local_tag)
        for name, value in headers or ():
            response.headers.add(name, value)
        self.ua.respond(self.tx, response)

    def cancelled_by_peer(self) -> None:
        """The caller CANCELled (§9.2; the user agent sent the 487): set ``cancelled`` and call
        ``on_cancel()``."""
        self._leave(CANCELLED)
        self.cancelled.set()
        if self.on_cancel is not None:
            try:
                self.on_cancel()
            except Exception:
                log.exception("IncomingInvite.on_cancel failed")

    def _leave(self, state: str) -> None:
        self.state = state
        self.ua.forget_incoming(self)
