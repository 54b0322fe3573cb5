"""The INVITE we send (UAC, RFC 3261 §13.2): :class:`ClientInviteSession`.

:meth:`ClientInviteSession.send` sends the INVITE (§13.2.1; ``sdp=None`` is a delayed offer), with a
session timer asked for (RFC 4028: ``Supported: timer``, ``Session-Expires``, ``Min-SE``; a 422 is
retried with the peer's Min-SE, §7.4). Then, on the INVITE client transaction:

* 180/183 reach ``on_progress`` (state ``early``); one 401/407 is answered with the credentials
  (§22.2: new CSeq, same Call-ID).
* The first 2xx confirms the dialog; we ACK it ourselves (§13.2.2.4: the INVITE client transaction
  ends on the 2xx) and re-ACK its retransmissions; a 2xx from another fork is ACKed and BYEd.
* :meth:`ClientInviteSession.cancel` sends CANCEL (§9.1) once a provisional (even 100) arrived,
  queued until then; without a final response within 64*T1 of it the call is given up. A 2xx that
  crosses our CANCEL is ACKed and BYEd.

Everything after the 2xx is the shared dialog usage (:mod:`voipbin.sip.invite_dialog`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from voipbin.sip.dialog import Dialog
from voipbin.sip.errors import SipError, SipParseError, TransactionTimeout, TransportError
from voipbin.sip.headers import Address
from voipbin.sip.invite import (
    ALLOW,
    SDP,
    build_2xx_ack,
    build_cancel,
    contact_for,
    dialog_without_contact,
    next_hop,
    sdp_of,
    uri_address,
)
from voipbin.sip.invite_dialog import CALLING, CONFIRMED, EARLY, TERMINATED, InviteSession, SessionHost
from voipbin.sip.invite_handler import REJECTED, TIMEOUT, TRANSPORT_ERROR, InviteHandler, notify
from voipbin.sip.message import Request, Response, new_branch, new_tag
from voipbin.sip.session_timer import TIMER, SessionExpires, from_2xx, min_se_of, session_expires_of
from voipbin.sip.stack import authorize
from voipbin.sip.transaction import ClientTransaction
from voipbin.sip.transport import Addr
from voipbin.sip.uri import parse_uri

log = logging.getLogger(__name__)


class ClientInviteSession(InviteSession):
    """The session of an INVITE we sent (see the module docstring); built by :meth:`send`."""

    owns_call_id = True

    def __init__(self, ua: SessionHost, *, call_id: str, local_tag: str, transport: str,
                 handler: InviteHandler, local_sdp: bytes | None, contact: str, dest: Addr | None,
                 invite_dest: Addr, credentials: tuple[str, str] | None = None,
                 session_expires_asked: int | None = None) -> None:
        super().__init__(ua, call_id=call_id, local_tag=local_tag, transport=transport, handler=handler,
                         local_sdp=local_sdp, contact=contact, dest=dest, invite_dest=invite_dest,
                         credentials=credentials)
        self._invite: Request | None = None
        self._invite_tx: ClientTransaction | None = None
        self._auth_tried = False
        self._provisional_seen = False
        self._cancel_requested = False
        self._cancel_sent = False
        self._session_expires_asked = session_expires_asked  # the Session-Expires of our INVITE

    @classmethod
    def send(cls, ua: SessionHost, *, request_uri: str, to_uri: str, from_uri: str, from_display: str = "",
             destination: tuple[str, int] | None = None, transport: str = "UDP", sdp: bytes | None,
             credentials: tuple[str, str] | None = None, headers: dict[str, str] | None = None,
             route: Sequence[str] = (), handler: InviteHandler) -> ClientInviteSession:
        """Send an INVITE (RFC 3261 §13.2.1) and return its session at once; progress arrives on
        ``handler``. ``destination`` overrides where it (and every in-dialog request) is sent, e.g.
        a registered contact's received address behind NAT (RFC 3581); else the Request-URI's host
        (an IP literal: no RFC 3263 DNS). ``sdp=None`` sends a delayed offer (the handler's
        optional ``on_offer`` gives the answer for the ACK). A 401/407 is answered once with
        ``credentials`` (new CSeq, same Call-ID, §22.2). ``route``: a pre-loaded route set (§8.1.2), e.g.
        the binding's Path (RFC 3327), sent as ``Route`` headers in order; loose routing only (each
        needs ``lr``); without ``destination`` the INVITE goes to the first route's address. The
        dialog's route set is then the 2xx's Record-Route (§12.1.2).

        Raises SipParseError for bad URIs, TransportError (or OSError) when it cannot send at all.
        """
        transport = transport.upper()
        uri = parse_uri(request_uri)
        first_hop = Address.parse(route[0]).uri if route else None
        dest = destination or uri_address(first_hop or uri)
        if dest is None:
            raise TransportError(f"cannot resolve {uri.host} (no DNS; give destination)")
        from_addr = Address.parse(from_uri) if "<" in from_uri else Address(parse_uri(from_uri))
        if from_display:
            from_addr.display_name = from_display
        local_tag = new_tag()
        from_addr.params["tag"] = local_tag
        host, port = ua.stack.advertised
        contact = contact_for(from_addr.uri.user if from_addr.uri else None, host, port, transport)
        extra = [("Route", value) for value in route] + [("Allow", ALLOW)] + list((headers or {}).items())
        asked: int | None = None
        if ua.session_expires_s is not None and not any(
                name.lower() in ("session-expires", "x") for name, _ in extra):
            asked = ua.session_expires_s
            extra += [("Supported", TIMER), ("Session-Expires", str(SessionExpires(asked, "uac"))),
                      ("Min-SE", str(ua.min_se_s))]
        request = ua.stack.create_request(
            "INVITE", uri, from_=from_addr, to=to_uri, contact=contact, transport=transport,
            headers=extra, body=sdp or b"", content_type=SDP if sdp else None)
        session = cls(ua, call_id=request.call_id, local_tag=local_tag, transport=transport, handler=handler,
                      local_sdp=sdp, contact=contact, dest=destination, invite_dest=dest,
                      credentials=credentials, session_expires_asked=asked)
        session._start_invite(request)
        tx = session._invite_tx
        assert tx is not None
        if tx.final.done() and tx.final.exception() is not None:
            session._invite_tx = None  # the caller learns it from the exception, not on_ended
            raise tx.final.exception()  # type: ignore[misc]
        return session

    async def cancel(self) -> None:
        """Give up a call we placed (§9.1). Before a final response: CANCEL, sent once a
        provisional (even 100) arrived, queued until then; ``on_ended("rejected", 487)`` follows
        (or ``timeout`` without a final response within 64*T1). If a 2xx still arrives it is ACKed
        and BYEd (``on_ended("local_bye")``). Returns once the CANCEL is sent (or queued), without
        waiting for its response. In a confirmed dialog this is :meth:`bye`."""
        if self.state == TERMINATED:
            return
        if self.state == CONFIRMED:
            await self.bye()
            return
        self._cancel_requested = True
        if self._provisional_seen and not self._cancel_sent:
            await self._send_cancel()

    # -- the INVITE client transaction ------------------------------------------------------------
    def _start_invite(self, request: Request) -> None:
        """Start a client transaction for ``request``; raises TransportError when it cannot go."""
        self._invite = request
        self._provisional_seen = False
        try:
            tx = self.ua.stack.start_transaction(request, self._invite_dest, self.transport)
        except KeyError:
            raise TransportError(f"no {self.transport} transport") from None
        self._invite_tx = tx
        tx.on_provisional = self._on_provisional
        tx.final.add_done_callback(lambda fut, tx=tx: self._on_final_done(tx, fut))

    def _on_provisional(self, response: Response) -> None:
        if self.state not in (CALLING, EARLY):
            return
        self._provisional_seen = True
        if self._cancel_requested and not self._cancel_sent:
            self.ua.spawn(self._send_cancel())
        if response.status == 100:
            return
        self.state = EARLY
        sdp = sdp_of(response)
        if sdp is not None:
            self.remote_sdp = sdp
        notify(self.handler, "on_progress", response.status, sdp)

    def _on_final_done(self, tx: ClientTransaction, fut: asyncio.Future[Response]) -> None:
        if tx is not self._invite_tx or self.state in (CONFIRMED, TERMINATED):
            if not fut.cancelled():
                fut.exception()  # retrieved: no "never retrieved" warning
            return
        if fut.cancelled():
            self._end(TRANSPORT_ERROR, None)
            return
        exc = fut.exception()
        if isinstance(exc, TransactionTimeout):
            self._end(TIMEOUT, None)
        elif exc is not None:
            self._end(TRANSPORT_ERROR, None)
        else:
            self._on_final(fut.result())

    def _on_final(self, response: Response) -> None:
        status = response.status
        if 200 <= status < 300:
            self._on_first_2xx(response)
            return
        if (status in (401, 407) and self._credentials is not None and not self._auth_tried
                and not self._cancel_requested and self._invite is not None):
            self._auth_tried = True
            username, password = self._credentials
            try:
                retry = authorize(self._invite, response, username, password)
                self._start_invite(retry)
            except SipParseError:
                self._end(REJECTED, status)
            except (TransportError, OSError):
                self._end(TRANSPORT_ERROR, None)
            return  # a failure of the retry reaches its own done-callback
        if status == 422 and self._retry_session_interval(response):
            return
        self._end(REJECTED, status)

    def _retry_session_interval(self, response: Response) -> bool:
        """RFC 4028 §7.4: a 422 Session Interval Too Small: send the INVITE again (CSeq + 1, new
        branch) with Session-Expires and Min-SE raised to the 422's Min-SE. True when retried."""
        min_se = min_se_of(response)
        invite = self._invite
        if (invite is None or not min_se or self._cancel_requested or self._session_expires_asked is None
                or min_se <= self._session_expires_asked or min_se > 86400):
            return False
        asked = session_expires_of(invite)
        headers = invite.headers.copy()
        headers.set("CSeq", f"{invite.cseq.seq + 1} INVITE")
        via = invite.top_via
        via.params["branch"] = new_branch()
        via.params.pop("received", None)
        headers.replace_first("Via", str(via))
        headers.set("Session-Expires", str(SessionExpires(min_se, asked.refresher if asked else "uac")))
        headers.set("Min-SE", str(min_se))
        self._session_expires_asked = min_se
        self.ua.stats["session_interval_retries"] += 1
        try:
            self._start_invite(Request(headers, invite.body, method="INVITE", uri=invite.uri))
        except (TransportError, OSError):
            self._end(TRANSPORT_ERROR, None)
        return True

    def _on_first_2xx(self, response: Response) -> None:
        assert self._invite is not None
        self._cancel_timer("cancel")
        try:
            dialog = Dialog.from_uac(self._invite, response)
        except SipParseError:
            dialog = dialog_without_contact(self._invite, response)
        dialog.early = False
        self.dialog = dialog
        self.state = CONFIRMED
        self.ua.add_dialog(self)
        sdp = sdp_of(response)
        ack_body = b""
        if sdp is not None:
            if self.local_sdp is None:  # delayed offer: the answer goes in the ACK
                answer = notify(self.handler, "on_offer", sdp)
                if answer:
                    ack_body = answer
                    self.local_sdp = answer
            self.remote_sdp = sdp
        self._send_ack(dialog, response, ack_body)
        if self._cancel_requested:  # the 2xx crossed our CANCEL (§9.1): hang up at once
            self.ua.spawn(self.bye())
            return
        if self._session_expires_asked is not None:
            self._apply_session_timer(from_2xx(response))
        notify(self.handler, "on_answered", sdp)

    def _send_ack(self, dialog: Dialog, response: Response, body: bytes = b"") -> None:
        assert self._invite is not None
        host, port = self.ua.stack.advertised
        ack = build_2xx_ack(dialog, self._invite, via_host=host, via_port=port,
                            transport=self.transport, body=body)
        data = ack.to_bytes()
        self._acks[(response.to.tag or "", response.cseq.seq)] = data
        dest = self.next_hop() if dialog is self.dialog else (next_hop(dialog) or self.next_hop())
        self.ua.send_raw(data, dest, self.transport)

    def _on_unmatched_2xx(self, response: Response) -> None:
        """A 2xx to our INVITE not ACKed yet (§13.2.2.4): the final response that raced its own
        done-callback (handled now, once), or a 2xx from another fork (ACK it, then BYE that dialog)."""
        if self._invite is None or response.cseq.seq != self._invite.cseq.seq:
            return
        if self.dialog is None and self.state in (CALLING, EARLY):
            self._on_final(response)
            return
        try:
            fork = Dialog.from_uac(self._invite, response)
        except SipParseError:
            fork = dialog_without_contact(self._invite, response)
        self.ua.stats["forked_2xx_released"] += 1
        self._send_ack(fork, response)
        self.ua.spawn(self._bye_fork(fork))

    async def _bye_fork(self, fork: Dialog) -> None:
        try:
            await self._send_in_dialog("BYE", dialog=fork)
        except (SipError, OSError) as exc:
            log.info("BYE to forked dialog %s failed: %s", fork.id, exc)

    # -- CANCEL (§9.1) ----------------------------------------------------------------------------
    async def _send_cancel(self) -> None:
        """Send CANCEL in its own transaction; its response is only logged (the INVITE's 487
        ends the session). Returns once it is sent."""
        if self._cancel_sent or self._invite is None or self.state not in (CALLING, EARLY):
            return
        self._cancel_sent = True
        cancel = build_cancel(self._invite)
        # §9.1: without a final response to the INVITE within 64*T1 the call is given up.
        self._start_timer("cancel", 64 * self.ua.t1, self._cancel_expired)
        try:
            tx = self.ua.stack.start_transaction(cancel, self._invite_dest, self.transport)
        except (KeyError, OSError) as exc:
            log.info("cannot send CANCEL for %s: %s", self.call_id, exc)
            return
        tx.final.add_done_callback(self._on_cancel_response)

    def _on_cancel_response(self, fut: asyncio.Future[Response]) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if exc is not None:
            log.info("CANCEL for %s got no response: %s", self.call_id, exc)
        elif not fut.cancelled():
            log.debug("CANCEL for %s: %s", self.call_id, fut.result().status)

    def _cancel_expired(self) -> None:
        self._timers.pop("cancel", None)
        if self.state in (CALLING, EARLY):
            tx = self._invite_tx
            if tx is not None:  # destroy the INVITE client transaction (§9.1)
                self.ua.abandon(tx)
            self._end(TIMEOUT, None)
