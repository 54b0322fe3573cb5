"""The INVITE dialog usage shared by both sides (RFC 3261 §12-§15, RFC 5057): :class:`InviteSession`.

What a session does the same whether we sent the INVITE (:mod:`voipbin.sip.invite_client`) or
answered it (:mod:`voipbin.sip.invite_server`):

* BYE (§15.1.1; the session ends at the final response or ``bye_wait_s`` after sending, the BYE
  goes on being retransmitted), INFO (RFC 6086; DTMF relay).
* re-INVITE sent (:meth:`InviteSession.reinvite`, §14.1): one at a time; 491 glare retried after the
  §14.1 random delay (the owner of the Call-ID, i.e. the dialog's UAC, waits 2.1-4 s, the other side
  0-2 s); 422 retried with the peer's Min-SE (RFC 4028); 408/481 or no response ends the dialog
  with BYE (§12.2.1.2). The 2xx is ACKed here and its retransmissions re-ACKed.
* re-INVITE received (§14.2): 491 while ours is pending, 422 under our Min-SE, else 200 with the
  handler's SDP, retransmitted until the ACK (:mod:`voipbin.sip.retransmit_2xx`).
* Session timers (RFC 4028, :mod:`voipbin.sip.session_timer`): the refresher re-INVITEs at half the
  interval, the other side BYEs a session that was not refreshed (``on_ended("session_expired")``).

States: ``calling`` → ``early`` (a provisional arrived; UAC only) → ``confirmed`` (2xx) →
``terminated``. Timers run on the user agent's :class:`~voipbin.sip.transaction.Clock`; the session
reaches its user agent through the narrow :class:`SessionHost` protocol.

(About 550 lines, over the ~500 of STYLE: one state machine that both sides share, BYE, re-INVITE
both ways, glare and session timers acting on the same state; split further, the parts would reach
into each other's state. The side-specific parts live in the two modules above.)
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from voipbin.sip.dialog import Dialog, DialogId
from voipbin.sip.errors import SipError, SipParseError, TransactionTimeout, TransportError
from voipbin.sip.invite import ALLOW, SDP, build_2xx, build_2xx_ack, next_hop, sdp_of
from voipbin.sip.invite_handler import (
    DIALOG_LOST,
    LOCAL_BYE,
    REMOTE_BYE,
    SESSION_EXPIRED,
    TIMEOUT,
    InviteHandler,
    notify,
)
from voipbin.sip.message import Request, Response, make_response
from voipbin.sip.retransmit_2xx import Retransmitted2xx
from voipbin.sip.session_timer import (
    TIMER,
    SessionExpires,
    SessionTimer,
    for_2xx_we_send,
    from_2xx,
    header_in_2xx,
    min_se_of,
    supports_timer,
    too_small,
)
from voipbin.sip.stack import SipStack, authorize
from voipbin.sip.transaction import ClientTransaction, Clock, ServerTransaction, TimerHandle
from voipbin.sip.transport import Addr

log = logging.getLogger(__name__)

#: RFC 3261 §14.1: after a 491 the owner of the Call-ID retries after 2.1-4 s, the other side 0-2 s
GLARE_RETRY_OWNER_S = (2.1, 4.0)
GLARE_RETRY_OTHER_S = (0.0, 2.0)
REINVITE_ATTEMPTS = 3  # a 491 (or a 422) is retried this many times in all
#: how long :meth:`InviteSession.bye` waits for the BYE's response before ending the session
#: anyway (4*T1; the BYE transaction goes on retransmitting until Timer F)
BYE_WAIT_S = 2.0

# InviteSession.state
CALLING = "calling"
EARLY = "early"
CONFIRMED = "confirmed"
TERMINATED = "terminated"


class SessionHost(Protocol):
    """What a session needs of its :class:`~voipbin.sip.ua.UserAgent`: the stack, the clock, the
    tunables (seconds; see the UserAgent docstring), counters, and the registry and I/O calls."""

    stack: SipStack
    clock: Clock
    rng: random.Random
    t1: float
    t2: float
    stats: Counter[str]
    session_expires_s: int | None
    min_se_s: int
    glare_retry_owner_s: tuple[float, float]
    glare_retry_other_s: tuple[float, float]
    reinvite_attempts: int
    bye_wait_s: float

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]: ...

    def send_raw(self, data: bytes, dest: Addr, transport: str) -> None: ...

    def respond(self, tx: ServerTransaction, response: Response) -> None: ...

    def add_session(self, session: InviteSession) -> None: ...

    def add_dialog(self, session: InviteSession) -> None: ...

    def forget(self, session: InviteSession) -> None: ...

    def abandon(self, tx: ClientTransaction) -> None: ...


class InviteSession:
    """One INVITE-created session (a dialog usage, RFC 5057); subclassed per side
    (:class:`~voipbin.sip.invite_client.ClientInviteSession`,
    :class:`~voipbin.sip.invite_server.ServerInviteSession`).

    ``call_id``; ``state``: see the module docstring; ``local_sdp``/``remote_sdp``: the latest
    bodies each way; ``dialog``: the :class:`Dialog` once confirmed; ``ended``: set when
    ``on_ended`` has been called (with ``end_cause``/``end_status``).
    """

    #: §14.1: the owner of the Call-ID (the UAC of the dialog) waits longer after a 491
    owns_call_id = False

    def __init__(self, ua: SessionHost, *, call_id: str, local_tag: str, transport: str,
                 handler: InviteHandler, local_sdp: bytes | None, contact: str, dest: Addr | None,
                 invite_dest: Addr, credentials: tuple[str, str] | None = None) -> None:
        self.ua = ua
        self.call_id = call_id
        self.local_tag = local_tag
        self.transport = transport
        self.handler = handler
        self.state = CALLING
        self.local_sdp = local_sdp
        self.remote_sdp: bytes | None = None
        self.dialog: Dialog | None = None
        self.contact = contact
        self.ended = asyncio.Event()
        self.end_cause: str | None = None
        self.end_status: int | None = None
        self._dest = dest  # fixed next hop: UAC `destination`, UAS the INVITE's source (symmetric)
        self._invite_dest = invite_dest  # where the initial INVITE went (UAC) or came from (UAS)
        self._credentials = credentials
        self._acks: dict[tuple[str, int], bytes] = {}  # (To tag, CSeq) -> ACK sent for that 2xx
        self._answer = Retransmitted2xx(ua.clock, ua.t1, ua.t2, on_retransmit=self._count_2xx_retransmission,
                                        on_timeout=self._ack_timeout)
        self._bye_sent = False
        self._timers: dict[str, TimerHandle] = {}
        self.session_timer: SessionTimer | None = None
        self._reinvite_lock = asyncio.Lock()
        self._reinvite_pending = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.call_id} {self.state}>"

    @property
    def key(self) -> tuple[str, str]:
        """Registry key: Call-ID + local tag."""
        return self.call_id, self.local_tag

    @property
    def tombstone_key(self) -> tuple[str, str, str]:
        """Key under which the user agent remembers this session for 64*T1 after it ended."""
        return ("uac", *self.key)

    @property
    def dialog_id(self) -> DialogId | None:
        return self.dialog.id if self.dialog is not None else None

    @property
    def awaiting_ack(self) -> bool:
        """True while a 2xx we sent for an INVITE (initial or re-INVITE) waits for its ACK."""
        return self._answer.active

    # -- public API -------------------------------------------------------------------------------
    async def cancel(self) -> None:
        """Give up the call: in a confirmed dialog this is :meth:`bye` (the UAC session CANCELs
        an INVITE still without a final response)."""
        if self.state != TERMINATED:
            await self.bye()

    async def bye(self) -> None:
        """End a confirmed dialog with BYE (§15.1.1); ``on_ended("local_bye", status)`` after its
        final response (2xx, 481, ...), or at the latest ``ua.bye_wait_s`` after sending it
        (status None): §15.1.1 has the session end once the BYE is handed to its transaction, so
        a dead peer does not hold the call for Timer F (64*T1 = 32 s); the BYE keeps being
        retransmitted in the background. Before the dialog is confirmed this is :meth:`cancel`;
        after termination it does nothing."""
        if self.state == TERMINATED or self._bye_sent:
            return
        if self.state != CONFIRMED:
            await self.cancel()
            return
        self._bye_sent = True
        self._answer.stop()
        sending = self.ua.spawn(self._send_bye())
        waited: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handle = self.ua.clock.call_later(self.ua.bye_wait_s, lambda: waited.done() or waited.set_result(None))
        try:
            await asyncio.wait({sending, waited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            handle.cancel()
        if not sending.done():
            log.info("BYE for %s unanswered after %s s; session ended, BYE retried in the background",
                     self.call_id, self.ua.bye_wait_s)
        self._end(LOCAL_BYE, sending.result() if sending.done() else None)

    async def info(self, content_type: str, body: bytes) -> int:
        """Send INFO in the confirmed dialog (RFC 6086; ``application/dtmf-relay`` for DTMF) and
        return the final status. Raises :class:`SipError` when the dialog is not confirmed, on
        Timer F (:class:`TransactionTimeout`) or :class:`TransportError`."""
        if self.state != CONFIRMED or self.dialog is None:
            raise SipError(f"INFO needs a confirmed dialog (state {self.state})")
        response = await self._send_in_dialog("INFO", body=body, content_type=content_type)
        return response.status

    async def reinvite(self, sdp: bytes | None) -> bytes | None:
        """Send a re-INVITE with ``sdp`` (our new offer; RFC 3264 §8: same o= session id, version
        + 1) in the confirmed dialog, either side (§14.1), and return the answer SDP of its 2xx
        (ACKed here; the remote target is refreshed from its Contact). Re-INVITEs are sent one at
        a time; one arriving from the peer meanwhile gets 491 (§14.2).

        Returns None and keeps the old session when it fails: a 491 retried after the §14.1
        random delay still failing, any other non-2xx. A 408/481 or no response at all also
        ends the dialog with BYE (§14.1, §12.2.1.2; ``on_ended("dialog_lost")``). A 422 is
        retried with the peer's Min-SE (RFC 4028). ``sdp=None`` sends an offerless re-INVITE:
        the 2xx offer is answered in the ACK by the handler's ``on_offer``.

        Raises SipError when the dialog is not confirmed (or is ending)."""
        async with self._reinvite_lock:
            if self.state != CONFIRMED or self.dialog is None or self._bye_sent:
                raise SipError(f"re-INVITE needs a confirmed dialog (state {self.state})")
            expires = self.session_timer.header_for_request() if self.session_timer else None
            for attempt in range(self.ua.reinvite_attempts):
                if self.state != CONFIRMED or self._bye_sent:
                    return None
                self._reinvite_pending = True
                try:
                    request, response = await self._send_reinvite(sdp, expires)
                except TransactionTimeout:
                    self._lose_dialog(None)
                    return None
                except (TransportError, OSError) as exc:
                    log.info("re-INVITE for %s not sent: %s", self.call_id, exc)
                    self._lose_dialog(None)
                    return None
                finally:
                    self._reinvite_pending = False
                status = response.status
                if 200 <= status < 300:
                    return self._on_reinvite_2xx(request, response, sdp)
                last = attempt + 1 >= self.ua.reinvite_attempts
                if status == 491 and not last:
                    self.ua.stats["reinvite_glare"] += 1
                    await self._sleep(self._glare_delay())
                    continue
                min_se = min_se_of(response)
                if status == 422 and expires is not None and min_se and not last:
                    expires = SessionExpires(max(min_se, expires.interval_s), expires.refresher)
                    continue
                if status in (408, 481):
                    self._lose_dialog(status)
                return None
            return None

    async def wait_ended(self, timeout: float | None = None) -> str:
        """Wait until the session ended and return the cause (raises TimeoutError)."""
        await asyncio.wait_for(self.ended.wait(), timeout)
        assert self.end_cause is not None
        return self.end_cause

    # -- in-dialog requests -----------------------------------------------------------------------
    def next_hop(self) -> Addr:
        """Where in-dialog requests go: the fixed destination (UAC ``destination``, or the source
        of the INVITE we answered, like ``rport``), else the first Route or remote target, else
        where the INVITE went."""
        if self._dest is not None:
            return self._dest
        if self.dialog is not None:
            hop = next_hop(self.dialog)
            if hop is not None:
                return hop
        return self._invite_dest

    async def _send_in_dialog(self, method: str, *, body: bytes = b"",
                              content_type: str | None = None, dialog: Dialog | None = None) -> Response:
        dialog = dialog or self.dialog
        assert dialog is not None
        host, port = self.ua.stack.advertised
        request = dialog.create_request(method, via_host=host, via_port=port, transport=self.transport,
                                        body=body, content_type=content_type,
                                        contact=self.contact if method == "INVITE" else None)
        request.headers.add("User-Agent", self.ua.stack.config.user_agent)
        dest = self.next_hop() if dialog is self.dialog else (next_hop(dialog) or self.next_hop())
        if self._credentials is not None:
            username, password = self._credentials
            return await self.ua.stack.send_request_with_auth(request, username=username,
                                                              password=password, dest=dest,
                                                              transport=self.transport)
        return await self.ua.stack.send_request(request, dest, self.transport)

    async def _send_bye(self) -> int | None:
        """Send BYE in the dialog; its final status, or None when it got none (logged)."""
        try:
            return (await self._send_in_dialog("BYE")).status
        except (SipError, OSError) as exc:
            log.info("BYE for %s got no response: %s", self.call_id, exc)
            return None

    def _lose_dialog(self, status: int | None) -> None:
        """§14.1/§12.2.1.2: the peer no longer has the dialog (408, 481) or does not answer: send
        BYE in the background and end the session now."""
        if self.state != TERMINATED:
            self._hang_up(DIALOG_LOST, status)

    def _hang_up(self, cause: str, status: int | None) -> None:
        """Send BYE in the background and end the session now with ``cause``."""
        self._bye_sent = True
        self._answer.stop()
        self.ua.spawn(self._send_bye())
        self._end(cause, status)

    # -- re-INVITE we send (§14.1) ----------------------------------------------------------------
    async def _send_reinvite(self, sdp: bytes | None,
                             expires: SessionExpires | None) -> tuple[Request, Response]:
        """One re-INVITE client transaction (a 401/407 answered once with our credentials).
        Returns (the request that got the final response, that response)."""
        assert self.dialog is not None
        host, port = self.ua.stack.advertised
        request = self.dialog.create_request("INVITE", via_host=host, via_port=port,
                                             transport=self.transport, body=sdp or b"",
                                             content_type=SDP if sdp else None, contact=self.contact)
        request.headers.add("Allow", ALLOW)
        request.headers.add("User-Agent", self.ua.stack.config.user_agent)
        if expires is not None:
            request.headers.add("Supported", TIMER)
            request.headers.add("Session-Expires", str(expires))
            request.headers.add("Min-SE", str(self.ua.min_se_s))
        dest = self.next_hop()
        response = await self.ua.stack.send_request(request, dest, self.transport)
        if response.status in (401, 407) and self._credentials is not None:
            username, password = self._credentials
            try:
                request = authorize(request, response, username, password)
            except SipParseError:
                return request, response
            self.dialog.local_seq = max(self.dialog.local_seq, request.cseq.seq)
            response = await self.ua.stack.send_request(request, dest, self.transport)
        return request, response

    def _on_reinvite_2xx(self, request: Request, response: Response, sdp: bytes | None) -> bytes | None:
        """ACK the 2xx to our re-INVITE (kept for its retransmissions), take the new remote target
        and session timer, and return the answer (or, offerless, the peer's offer)."""
        assert self.dialog is not None
        contacts = response.contacts
        if contacts and contacts[0].uri is not None:
            self.dialog.remote_target = contacts[0].uri  # §12.2.1.2 target refresh
        remote = sdp_of(response)
        ack_body = b""
        if sdp is not None:
            self.local_sdp = sdp
        elif remote is not None:
            answer = notify(self.handler, "on_offer", remote)
            if answer:
                ack_body = self.local_sdp = answer
        if remote is not None:
            self.remote_sdp = remote
        host, port = self.ua.stack.advertised
        ack = build_2xx_ack(self.dialog, request, via_host=host, via_port=port,
                            transport=self.transport, body=ack_body)
        data = ack.to_bytes()
        self._acks[(response.to.tag or "", response.cseq.seq)] = data
        self.ua.send_raw(data, self.next_hop(), self.transport)
        if "Session-Expires" in request.headers:
            self._apply_session_timer(from_2xx(response))
        return remote

    def on_stray_2xx(self, response: Response) -> None:
        """A 2xx the transaction layer no longer matches (§13.2.2.4): a retransmission of one we
        ACKed gets the same ACK again; anything else goes to :meth:`_on_unmatched_2xx`."""
        data = self._acks.get((response.to.tag or "", response.cseq.seq))
        if data is None:
            self._on_unmatched_2xx(response)
            return
        self.ua.stats["acks_resent"] += 1
        ours = self.dialog is not None and self.dialog.remote_tag == (response.to.tag or "")
        self.ua.send_raw(data, self.next_hop() if ours else self._invite_dest, self.transport)

    def _on_unmatched_2xx(self, response: Response) -> None:
        """A 2xx we never ACKed: ignored here (the UAC session handles its INVITE's forks)."""

    def _glare_delay(self) -> float:
        """§14.1: the owner of the Call-ID (the UAC of the dialog) waits 2.1-4 s, the other side
        0-2 s, in units of 10 ms."""
        low, high = self.ua.glare_retry_owner_s if self.owns_call_id else self.ua.glare_retry_other_s
        return round(self.ua.rng.uniform(low, high), 2)

    async def _sleep(self, delay: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handle = self.ua.clock.call_later(delay, lambda: done.done() or done.set_result(None))
        try:
            await done
        finally:
            handle.cancel()

    # -- INVITEs we answer (initial or re-INVITE): 2xx until the ACK ------------------------------
    def _send_2xx(self, tx: ServerTransaction, request: Request, sdp: bytes | None) -> Response:
        """Answer ``request`` with 200 and ``sdp`` (with our session timer headers, RFC 4028 §9),
        retransmitted until the ACK (§13.3.1.4), and (re)start the session timer. Returns the 2xx."""
        response = build_2xx(request, to_tag=self.local_tag, contact=self.contact, sdp=sdp,
                             server=self.ua.stack.config.user_agent)
        timer = (for_2xx_we_send(request, self.ua.min_se_s)
                 if self.ua.session_expires_s is not None else None)
        if timer is not None:
            response.headers.add("Session-Expires", str(header_in_2xx(timer)))
            if supports_timer(request):
                response.headers.add("Require", TIMER)
            response.headers.add("Supported", TIMER)
        self._answer.send(tx, response)
        self._apply_session_timer(timer)  # a re-INVITE without Session-Expires turns it off (§9)
        return response

    def _count_2xx_retransmission(self) -> None:
        self.ua.stats["2xx_retransmitted"] += 1

    def _ack_timeout(self) -> None:
        """No ACK within 64*T1 (§13.3.1.4): the dialog is confirmed but the session ends (BYE)."""
        if self.state == TERMINATED:
            return
        self._bye_sent = True

        async def bye_then_end() -> None:
            try:
                await self._send_in_dialog("BYE")
            except (SipError, OSError):
                pass
            self._end(TIMEOUT, None)

        self.ua.spawn(bye_then_end())

    def on_ack(self, ack: Request) -> None:
        """An ACK in the dialog: stops the 2xx retransmission it acknowledges (its SDP, if any,
        is the remote SDP), then :meth:`_acked`."""
        if not self._answer.ack(ack.cseq.seq):
            return
        sdp = sdp_of(ack)
        if sdp is not None:
            self.remote_sdp = sdp
        self._acked()

    def _acked(self) -> None:
        """The ACK for a 2xx we sent arrived (the UAS session reports its first one)."""

    def on_reinvite(self, tx: ServerTransaction) -> None:
        """A re-INVITE (§14.2): 200 with the handler's SDP (or the last one), then wait for ACK."""
        assert self.dialog is not None
        request = tx.request
        problem = self.dialog.accept_request(request)
        if problem is not None:
            self.ua.respond(tx, make_response(request, *problem))
            return
        if self._reinvite_pending:  # glare: our re-INVITE is in progress (§14.2)
            self.ua.stats["reinvite_glare"] += 1
            self.ua.respond(tx, make_response(request, 491))
            return
        if self.ua.session_expires_s is not None and too_small(request, self.ua.min_se_s):
            response = make_response(request, 422)
            response.headers.add("Min-SE", str(self.ua.min_se_s))
            self.ua.respond(tx, response)
            return
        self._answer.stop()
        offer = sdp_of(request)
        if offer is not None:
            self.remote_sdp = offer
        answer = notify(self.handler, "on_reinvite", offer)
        if answer is not None:
            self.local_sdp = answer
        self._send_2xx(tx, request, self.local_sdp)

    def on_bye(self, tx: ServerTransaction) -> None:
        """A BYE the dialog accepted (§15.1.2): 200, and the session ends ``remote_bye``."""
        self._answer.stop()
        self.ua.respond(tx, make_response(tx.request, 200))
        self._end(REMOTE_BYE, None)

    # -- session timers (RFC 4028) -----------------------------------------------------------------
    def _apply_session_timer(self, timer: SessionTimer | None) -> None:
        """(Re)start the session timer: a refresh at half the interval when we refresh, a BYE
        shortly before expiry (§10) unless a refresh resets it first. None stops it."""
        self.session_timer = timer
        self._cancel_timer("refresh")
        self._cancel_timer("expire")
        if timer is None or self.state == TERMINATED:
            return
        if timer.we_refresh:
            self._start_timer("refresh", timer.refresh_after_s, self._on_refresh_due)
        self._start_timer("expire", timer.expire_after_s, self._on_session_expired)

    def _on_refresh_due(self) -> None:
        self._timers.pop("refresh", None)
        if self.state != CONFIRMED or self._bye_sent:
            return
        self.ua.stats["session_refreshes"] += 1

        async def refresh() -> None:
            try:
                if await self.reinvite(self.local_sdp) is None and self.state == CONFIRMED:
                    log.info("session refresh of %s failed; it expires unless the peer refreshes",
                             self.call_id)
            except SipError as exc:
                log.info("no session refresh for %s: %s", self.call_id, exc)

        self.ua.spawn(refresh())

    def _on_session_expired(self) -> None:
        self._timers.pop("expire", None)
        if self.state != CONFIRMED or self._bye_sent:
            return
        self.ua.stats["sessions_expired"] += 1
        log.info("session %s not refreshed within %s s: BYE", self.call_id,
                 self.session_timer.interval_s if self.session_timer else "?")
        self._hang_up(SESSION_EXPIRED, None)

    def _start_timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer(name)
        self._timers[name] = self.ua.clock.call_later(delay, callback)

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def stop_timers(self) -> None:
        """Cancel every timer of the session without ending it (the user agent is closing)."""
        for name in list(self._timers):
            self._cancel_timer(name)
        self._answer.stop()

    def _end(self, cause: str, status: int | None) -> None:
        """Terminate once: stop timers, leave the registry, tell the handler."""
        if self.end_cause is not None:
            return
        self.state = TERMINATED
        self.end_cause, self.end_status = cause, status
        self.stop_timers()
        self.ua.forget(self)
        notify(self.handler, "on_ended", cause, status)
        self.ended.set()
