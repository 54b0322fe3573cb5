"""The INVITE dialog usage (RFC 3261 §13-§15): the user agent that ``calls/`` drives.

:class:`UserAgent` sits on a :class:`~voipbin.sip.stack.SipStack` and owns every INVITE session:

* UAC (:meth:`UserAgent.invite`): sends the INVITE (§13.2.1), answers one 401/407 with credentials
  (§22.2), reports 180/183 (``on_progress``), ACKs a 2xx itself (§13.2.2.4; the INVITE client
  transaction ends on the 2xx) and re-ACKs its retransmissions, ACKs and BYEs a 2xx from another fork
  (§13.2.2.4), CANCELs (§9.1) once a provisional response arrived.
* UAS (:attr:`UserAgent.on_incoming_invite` gets an :class:`IncomingInvite`): 180/183, 2xx
  retransmitted until the ACK (§13.3.1.4, Timer G/H style, since the transaction layer has no RFC 6026
  Accepted state), reject, CANCEL → 487 (§9.2).
* In a dialog, either side: BYE (§15), re-INVITE received (§14.2; hold is only SDP here) and sent
  (:meth:`InviteSession.reinvite`, §14.1: 491 glare answered and retried after a random delay, 408/481
  or no response ends the dialog), INFO (RFC 6086; DTMF relay), OPTIONS (§11); requests for an
  unknown dialog get 481 (§12.2.2).
* Session timers (RFC 4028, :mod:`voipbin.sip.session_timer`): asked for on our INVITEs, 422 retried
  with the peer's Min-SE, granted on INVITEs we answer; the refresher re-INVITEs at half the
  interval, the other side BYEs a session that was not refreshed (``on_ended("session_expired")``).

SDP bodies are opaque bytes: the call layer builds and parses them. Events reach the call layer on
an :class:`InviteHandler` (plain synchronous callbacks). Sessions live in a registry keyed by
Call-ID + local tag and by dialog id; terminated sessions leave it at once (a tombstone is kept for
64*T1 so that late 2xx retransmissions are still ACKed).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from voipbin.sip.dialog import Dialog, DialogId, dialog_id_for
from voipbin.sip.errors import SipError, SipParseError, TransactionTimeout, TransportError
from voipbin.sip.headers import Address
from voipbin.sip.invite import (
    ALLOW,
    SDP,
    build_2xx,
    build_2xx_ack,
    build_cancel,
    contact_for,
    dialog_without_contact,
    next_hop,
    sdp_of,
    uri_address,
)
from voipbin.sip.message import Request, Response, make_response, new_branch, new_tag
from voipbin.sip.session_timer import (
    DEFAULT_SESSION_EXPIRES_S,
    MIN_SE_S,
    TIMER,
    SessionExpires,
    SessionTimer,
    for_2xx_we_send,
    from_2xx,
    header_in_2xx,
    min_se_of,
    session_expires_of,
    supports_timer,
    too_small,
)
from voipbin.sip.stack import SipStack, authorize
from voipbin.sip.transaction import ClientTransaction, ServerTransaction, TimerHandle
from voipbin.sip.transaction_fsm import T1, T2
from voipbin.sip.transport import Addr, Transport
from voipbin.sip.uri import parse_uri

log = logging.getLogger(__name__)

# on_ended causes
REJECTED = "rejected"
REMOTE_BYE = "remote_bye"
LOCAL_BYE = "local_bye"
TIMEOUT = "timeout"
TRANSPORT_ERROR = "transport_error"
DIALOG_LOST = "dialog_lost"
SESSION_EXPIRED = "session_expired"

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


def _notify(handler: Any, name: str, *args: Any) -> Any:
    """Call ``handler.name(*args)``; a missing method or an exception in it is logged, not raised."""
    method = getattr(handler, name, None)
    if method is None:
        return None
    try:
        return method(*args)
    except Exception:
        log.exception("InviteHandler.%s failed", name)
        return None


class InviteSession:
    """One INVITE-created session (a dialog usage, RFC 5057), UAC or UAS side.

    ``call_id``; ``state``: ``calling`` → ``early`` (a provisional arrived) → ``confirmed`` (2xx)
    → ``terminated``; ``local_sdp``/``remote_sdp``: the latest bodies each way; ``dialog``: the
    :class:`Dialog` once confirmed; ``ended``: set when ``on_ended`` has been called (with
    ``end_cause``/``end_status``).
    """

    def __init__(self, ua: UserAgent, *, role: str, call_id: str, local_tag: str, transport: str,
                 handler: InviteHandler, local_sdp: bytes | None, contact: str,
                 dest: Addr | None) -> None:
        self.ua = ua
        self.role = role  # "uac" | "uas"
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
        self._credentials: tuple[str, str] | None = None
        # UAC
        self._invite: Request | None = None
        self._invite_tx: ClientTransaction | None = None
        self._invite_dest: Addr | None = None
        self._auth_tried = False
        self._provisional_seen = False
        self._cancel_requested = False
        self._cancel_sent = False
        self._acks: dict[tuple[str, int], bytes] = {}  # (To tag, CSeq) -> ACK sent for that 2xx
        # UAS side of an INVITE (initial or re-INVITE): 2xx retransmission until the ACK
        self._pending_2xx: Response | None = None
        self._pending_cseq = 0
        self._pending_dest: Addr = ("", 0)
        self._pending_transport: Transport | None = None
        self._retransmit_interval = 0.0
        self._answered_notified = False
        self._initial_2xx: Response | None = None
        self._bye_sent = False
        self._timers: dict[str, TimerHandle] = {}
        # re-INVITEs we send (§14.1) and session timers (RFC 4028)
        self.session_timer: SessionTimer | None = None
        self._reinvite_lock = asyncio.Lock()
        self._reinvite_pending = False
        self._session_expires_asked: int | None = None  # UAC: the Session-Expires of our INVITE

    def __repr__(self) -> str:
        return f"<InviteSession {self.role} {self.call_id} {self.state}>"

    @property
    def key(self) -> tuple[str, str]:
        """Registry key: Call-ID + local tag."""
        return self.call_id, self.local_tag

    @property
    def dialog_id(self) -> DialogId | None:
        return self.dialog.id if self.dialog is not None else None

    # -- public API -------------------------------------------------------------------------------
    async def cancel(self) -> None:
        """Give up a call we placed (§9.1). Before a final response: CANCEL, sent once a
        provisional (even 100) arrived, queued until then; ``on_ended("rejected", 487)`` follows
        (or ``timeout`` without a final response within 64*T1). If a 2xx still arrives it is ACKed
        and BYEd (``on_ended("local_bye")``). Returns once the CANCEL is sent (or queued), without
        waiting for its response. In a confirmed dialog this is :meth:`bye`."""
        if self.state == TERMINATED:
            return
        if self.state == CONFIRMED or self.role == "uas":
            await self.bye()
            return
        self._cancel_requested = True
        if self._provisional_seen and not self._cancel_sent:
            await self._send_cancel()

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
        self._stop_2xx_retransmission()
        sending = asyncio.ensure_future(self._send_bye())
        self.ua._tasks.add(sending)
        sending.add_done_callback(self.ua._tasks.discard)
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
        + 1) in the confirmed dialog, either role (§14.1), and return the answer SDP of its 2xx
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

    # -- common helpers ---------------------------------------------------------------------------
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
        assert self._invite_dest is not None
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
            answer = _notify(self.handler, "on_offer", remote)
            if answer:
                ack_body = self.local_sdp = answer
        if remote is not None:
            self.remote_sdp = remote
        host, port = self.ua.stack.advertised
        ack = build_2xx_ack(self.dialog, request, via_host=host, via_port=port,
                            transport=self.transport, body=ack_body)
        data = ack.to_bytes()
        self._acks[(response.to.tag or "", response.cseq.seq)] = data
        self.ua._send_raw(data, self.next_hop(), self.transport)
        if "Session-Expires" in request.headers:
            self._apply_session_timer(from_2xx(response))
        return remote

    def _glare_delay(self) -> float:
        """§14.1: the owner of the Call-ID (the UAC of the dialog) waits 2.1-4 s, the other side
        0-2 s, in units of 10 ms."""
        low, high = self.ua.glare_retry_owner_s if self.role == "uac" else self.ua.glare_retry_other_s
        return round(random.uniform(low, high), 2)

    async def _sleep(self, delay: float) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handle = self.ua.clock.call_later(delay, lambda: done.done() or done.set_result(None))
        try:
            await done
        finally:
            handle.cancel()

    def _lose_dialog(self, status: int | None) -> None:
        """§14.1/§12.2.1.2: the peer no longer has the dialog (408, 481) or does not answer: send
        BYE in the background and end the session now."""
        if self.state == TERMINATED:
            return
        self._bye_sent = True
        self._stop_2xx_retransmission()
        self.ua._spawn(self._bye_quietly())
        self._end(DIALOG_LOST, status)

    async def _bye_quietly(self) -> None:
        await self._send_bye()

    async def _send_bye(self) -> int | None:
        """Send BYE in the dialog; its final status, or None when it got none (logged)."""
        try:
            return (await self._send_in_dialog("BYE")).status
        except (SipError, OSError) as exc:
            log.info("BYE for %s got no response: %s", self.call_id, exc)
            return None

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

        self.ua._spawn(refresh())

    def _on_session_expired(self) -> None:
        self._timers.pop("expire", None)
        if self.state != CONFIRMED or self._bye_sent:
            return
        self.ua.stats["sessions_expired"] += 1
        log.info("session %s not refreshed within %s s: BYE", self.call_id,
                 self.session_timer.interval_s if self.session_timer else "?")
        self._bye_sent = True
        self._stop_2xx_retransmission()
        self.ua._spawn(self._bye_quietly())
        self._end(SESSION_EXPIRED, None)

    def _session_timer_headers(self, response: Response, request: Request,
                               timer: SessionTimer | None) -> None:
        """Add the Session-Expires (and Require: timer when the requester supports it) of the
        2xx we send for ``request`` (RFC 4028 §9)."""
        if timer is None:
            return
        response.headers.add("Session-Expires", str(header_in_2xx(timer)))
        if supports_timer(request):
            response.headers.add("Require", TIMER)
        response.headers.add("Supported", TIMER)

    def _start_timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._cancel_timer(name)
        self._timers[name] = self.ua.clock.call_later(delay, callback)

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _end(self, cause: str, status: int | None) -> None:
        """Terminate once: stop timers, leave the registry, tell the handler."""
        if self.end_cause is not None:
            return
        self.state = TERMINATED
        self.end_cause, self.end_status = cause, status
        for name in list(self._timers):
            self._cancel_timer(name)
        self._pending_2xx = None
        self.ua._forget(self)
        _notify(self.handler, "on_ended", cause, status)
        self.ended.set()

    # -- UAC: the INVITE client transaction --------------------------------------------------------
    def _start_invite(self, request: Request) -> None:
        """Start a client transaction for ``request``; raises TransportError when it cannot go."""
        self._invite = request
        self._provisional_seen = False
        assert self._invite_dest is not None
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
            self.ua._spawn(self._send_cancel())
        if response.status == 100:
            return
        self.state = EARLY
        sdp = sdp_of(response)
        if sdp is not None:
            self.remote_sdp = sdp
        _notify(self.handler, "on_progress", response.status, sdp)

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
        self.ua._add_dialog(self)
        sdp = sdp_of(response)
        ack_body = b""
        if sdp is not None:
            if self.local_sdp is None:  # delayed offer: the answer goes in the ACK
                answer = _notify(self.handler, "on_offer", sdp)
                if answer:
                    ack_body = answer
                    self.local_sdp = answer
            self.remote_sdp = sdp
        self._send_ack(dialog, response, ack_body)
        if self._cancel_requested:  # the 2xx crossed our CANCEL (§9.1): hang up at once
            self.ua._spawn(self.bye())
            return
        if self._session_expires_asked is not None:
            self._apply_session_timer(from_2xx(response))
        _notify(self.handler, "on_answered", sdp)

    def _send_ack(self, dialog: Dialog, response: Response, body: bytes = b"") -> None:
        assert self._invite is not None
        host, port = self.ua.stack.advertised
        ack = build_2xx_ack(dialog, self._invite, via_host=host, via_port=port,
                            transport=self.transport, body=body)
        data = ack.to_bytes()
        self._acks[(response.to.tag or "", response.cseq.seq)] = data
        dest = self.next_hop() if dialog is self.dialog else (next_hop(dialog) or self.next_hop())
        self.ua._send_raw(data, dest, self.transport)

    def _on_stray_2xx(self, response: Response) -> None:
        """A 2xx the transaction layer no longer matches (§13.2.2.4): a retransmission (send the
        same ACK again) or a 2xx from another fork (ACK it, then BYE that dialog)."""
        to_tag = response.to.tag or ""
        seq = response.cseq.seq
        data = self._acks.get((to_tag, seq))
        if data is not None:
            self.ua.stats["acks_resent"] += 1
            dialog = self.dialog if self.dialog and self.dialog.remote_tag == to_tag else None
            dest = self.next_hop() if dialog is not None else (self._invite_dest or self.next_hop())
            self.ua._send_raw(data, dest, self.transport)
            return
        if self._invite is None or seq != self._invite.cseq.seq:
            return
        if self.dialog is None and self.state in (CALLING, EARLY):
            # The final response raced its own done-callback: handle it now, once.
            self._on_final(response)
            return
        try:
            fork = Dialog.from_uac(self._invite, response)
        except SipParseError:
            fork = dialog_without_contact(self._invite, response)
        self.ua.stats["forked_2xx_released"] += 1
        self._send_ack(fork, response)
        self.ua._spawn(self._bye_fork(fork))

    async def _bye_fork(self, fork: Dialog) -> None:
        try:
            await self._send_in_dialog("BYE", dialog=fork)
        except (SipError, OSError) as exc:
            log.info("BYE to forked dialog %s failed: %s", fork.id, exc)

    async def _send_cancel(self) -> None:
        """Send CANCEL in its own transaction; its response is only logged (the INVITE's 487
        ends the session). Returns once it is sent."""
        if self._cancel_sent or self._invite is None or self.state not in (CALLING, EARLY):
            return
        self._cancel_sent = True
        cancel = build_cancel(self._invite)
        assert self._invite_dest is not None
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
                self.ua._abandon(tx)
            self._end(TIMEOUT, None)

    # -- UAS side of an INVITE (initial or re-INVITE) ---------------------------------------------
    def _send_2xx(self, tx: ServerTransaction, response: Response) -> None:
        """Send a 2xx through the server transaction, then retransmit it ourselves until the ACK
        (§13.3.1.4: T1 doubling to T2; give up after 64*T1)."""
        tx.respond(response)
        self._pending_2xx = response
        self._pending_cseq = response.cseq.seq
        self._pending_dest = tx.dest
        self._pending_transport = tx.transport
        if not tx.transport.reliable:
            self._retransmit_interval = self.ua.t1
            self._start_timer("G", self._retransmit_interval, self._retransmit_2xx)
        self._start_timer("H", 64 * self.ua.t1, self._ack_timeout)

    def _retransmit_2xx(self) -> None:
        self._timers.pop("G", None)
        if self._pending_2xx is None or self._pending_transport is None:
            return
        self.ua.stats["2xx_retransmitted"] += 1
        try:
            self._pending_transport.send(self._pending_2xx.to_bytes(), self._pending_dest)
        except OSError:
            pass
        self._retransmit_interval = min(2 * self._retransmit_interval, self.ua.t2)
        self._start_timer("G", self._retransmit_interval, self._retransmit_2xx)

    def _stop_2xx_retransmission(self) -> None:
        self._pending_2xx = None
        self._cancel_timer("G")
        self._cancel_timer("H")

    def _ack_timeout(self) -> None:
        """No ACK within 64*T1 (§13.3.1.4): the dialog is confirmed but the session ends (BYE)."""
        self._timers.pop("H", None)
        if self._pending_2xx is None or self.state == TERMINATED:
            return
        self._stop_2xx_retransmission()
        self._bye_sent = True

        async def bye_then_end() -> None:
            try:
                await self._send_in_dialog("BYE")
            except (SipError, OSError):
                pass
            self._end(TIMEOUT, None)

        self.ua._spawn(bye_then_end())

    def _on_ack(self, ack: Request) -> None:
        if self._pending_2xx is None or ack.cseq.seq != self._pending_cseq:
            return
        self._stop_2xx_retransmission()
        sdp = sdp_of(ack)
        if sdp is not None:
            self.remote_sdp = sdp
        if self.role == "uas" and not self._answered_notified:
            self._answered_notified = True
            _notify(self.handler, "on_answered", self.remote_sdp)

    def _on_reinvite(self, tx: ServerTransaction) -> None:
        """A re-INVITE (§14.2): 200 with the handler's SDP (or the last one), then wait for ACK."""
        assert self.dialog is not None
        request = tx.request
        problem = self.dialog.accept_request(request)
        if problem is not None:
            self.ua._respond(tx, make_response(request, *problem))
            return
        if self._reinvite_pending:  # glare: our re-INVITE is in progress (§14.2)
            self.ua.stats["reinvite_glare"] += 1
            self.ua._respond(tx, make_response(request, 491))
            return
        if self.ua.session_expires_s is not None and too_small(request, self.ua.min_se_s):
            response = make_response(request, 422)
            response.headers.add("Min-SE", str(self.ua.min_se_s))
            self.ua._respond(tx, response)
            return
        self._stop_2xx_retransmission()
        offer = sdp_of(request)
        if offer is not None:
            self.remote_sdp = offer
        answer = _notify(self.handler, "on_reinvite", offer)
        if answer is not None:
            self.local_sdp = answer
        response = build_2xx(request, to_tag=self.local_tag, contact=self.contact, sdp=self.local_sdp,
                             server=self.ua.stack.config.user_agent)
        timer = (for_2xx_we_send(request, self.ua.min_se_s)
                 if self.ua.session_expires_s is not None else None)
        self._session_timer_headers(response, request, timer)
        self._send_2xx(tx, response)
        self._apply_session_timer(timer)  # a re-INVITE without Session-Expires turns it off (§9)


class IncomingInvite:
    """A new INVITE waiting for the application (UAS, §13.3): ``request``, ``source``,
    ``remote_sdp``. Call :meth:`ringing`, then :meth:`answer` or :meth:`reject`. If the caller
    CANCELs first, 487 is sent, ``cancelled`` is set and ``on_cancel()`` called."""

    def __init__(self, ua: UserAgent, tx: ServerTransaction) -> None:
        self.ua = ua
        self.tx = tx
        self.request = tx.request
        self.source = tx.source
        self.local_tag = new_tag()
        self.state = "pending"  # pending | answered | rejected | cancelled
        self.cancelled = asyncio.Event()
        self.on_cancel: Callable[[], None] | None = None
        self.session: InviteSession | None = None
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
        if self.state != "pending":
            return
        response = make_response(self.request, status, to_tag=self.local_tag)
        response.headers.add("Contact", self.contact)
        if sdp:
            response.headers.add("Content-Type", SDP)
            response.body = sdp
        self.ua._respond(self.tx, response)

    def answer(self, sdp: bytes | None, handler: InviteHandler | None = None) -> InviteSession:
        """Send 200 OK with ``sdp`` (our answer, or our offer for a delayed-offer INVITE) and return
        the confirmed :class:`InviteSession`; ``handler.on_answered`` runs when the ACK arrives.
        Raises SipError when the INVITE was already answered, rejected or cancelled."""
        if self.state != "pending":
            raise SipError(f"INVITE already {self.state}")
        request = self.request
        dialog = Dialog.from_uas(request, self.local_tag)
        session = InviteSession(self.ua, role="uas", call_id=request.call_id, local_tag=self.local_tag,
                                transport=self.tx.transport.name, handler=handler or NullHandler(),
                                local_sdp=sdp, contact=self.contact,
                                dest=next_hop(dialog) if dialog.route_set else self.tx.dest)
        session.remote_sdp = self.remote_sdp
        session._invite_dest = self.tx.dest
        session.dialog = dialog
        session.state = CONFIRMED
        self.state = "answered"
        self.session = session
        self.ua._forget_incoming(self)
        self.ua._add_session(session)
        self.ua._add_dialog(session)
        self.ua._uas_by_remote[self.key] = session
        response = build_2xx(request, to_tag=self.local_tag, contact=self.contact, sdp=sdp,
                             server=self.ua.stack.config.user_agent)
        timer = (for_2xx_we_send(request, self.ua.min_se_s)
                 if self.ua.session_expires_s is not None else None)
        session._session_timer_headers(response, request, timer)
        session._initial_2xx = response
        session._send_2xx(self.tx, response)
        session._apply_session_timer(timer)
        return session

    def reject(self, status: int = 486, reason: str | None = None,
               headers: list[tuple[str, str]] | None = None) -> None:
        """Send a final non-2xx response (e.g. 486 Busy Here, 488, 603; ``headers`` such as a 407's
        ``Proxy-Authenticate``); the server transaction retransmits it until the ACK (§17.2.1)."""
        if self.state != "pending":
            return
        if not 300 <= status < 700:
            raise ValueError(f"reject needs a 3xx-6xx status, not {status}")
        self.state = "rejected"
        self.ua._forget_incoming(self)
        response = make_response(self.request, status, reason, to_tag=self.local_tag)
        for name, value in headers or ():
            response.headers.add(name, value)
        self.ua._respond(self.tx, response)

    def _on_cancelled(self) -> None:
        self.state = "cancelled"
        self.cancelled.set()
        if self.on_cancel is not None:
            try:
                self.on_cancel()
            except Exception:
                log.exception("IncomingInvite.on_cancel failed")


IncomingInviteCallback = Callable[[IncomingInvite], Awaitable[None]]


class UserAgent:
    """INVITE sessions on one :class:`SipStack`. Registers the INVITE, BYE, CANCEL, INFO and OPTIONS
    routes and the stray ACK/2xx hooks (one UserAgent per stack).

    ``on_incoming_invite``: called with each new :class:`IncomingInvite`; when None, new INVITEs get
    480 Temporarily Unavailable. ``sessions``/``dialogs``/``incoming``: the registry of live sessions.

    Tunables (attributes): ``session_expires_s`` (RFC 4028 interval asked for on our INVITEs;
    None: no session timers at all, neither asked for nor granted), ``min_se_s`` (our Min-SE:
    shorter requested intervals get 422), ``glare_retry_owner_s``/``glare_retry_other_s`` (§14.1
    retry delay ranges after a 491), ``reinvite_attempts``, ``bye_wait_s`` (how long a BYE we send
    holds its session before it ends without a response).
    """

    def __init__(self, stack: SipStack) -> None:
        self.stack = stack
        self.clock = stack.transactions.clock
        self.t1 = stack.config.timers.get("t1", T1)
        self.t2 = stack.config.timers.get("t2", T2)
        self.on_incoming_invite: IncomingInviteCallback | None = None
        self.sessions: dict[tuple[str, str], InviteSession] = {}
        self.dialogs: dict[DialogId, InviteSession] = {}
        self.incoming: dict[tuple[str, str], IncomingInvite] = {}
        self._uas_by_remote: dict[tuple[str, str], InviteSession] = {}
        self._recent: dict[tuple[str, str, str], tuple[InviteSession, TimerHandle]] = {}
        self._tasks: set[asyncio.Task] = set()
        self.stats: Counter[str] = Counter()
        self.session_expires_s: int | None = DEFAULT_SESSION_EXPIRES_S
        self.min_se_s = MIN_SE_S
        self.glare_retry_owner_s = GLARE_RETRY_OWNER_S
        self.glare_retry_other_s = GLARE_RETRY_OTHER_S
        self.reinvite_attempts = REINVITE_ATTEMPTS
        self.bye_wait_s = BYE_WAIT_S
        self._default_options = stack.handlers.get("OPTIONS")
        for method, handler in (("INVITE", self._on_invite), ("BYE", self._on_bye),
                                ("CANCEL", self._on_cancel), ("INFO", self._on_info),
                                ("OPTIONS", self._on_options)):
            stack.route(method, handler)
        stack.on_stray_ack = self._on_stray_ack
        stack.on_stray_response = self._on_stray_response

    @property
    def live_count(self) -> int:
        """Entries held in the session registry (sessions by key and by dialog, pending incoming
        INVITEs, answered INVITEs by caller tag): 0 once every call has ended. Tombstones of ended
        calls (kept 64*T1 to re-ACK late 2xx) are not counted."""
        return len(self.sessions) + len(self.dialogs) + len(self.incoming) + len(self._uas_by_remote)

    def close(self) -> None:
        """Drop timers and tasks (the stack is stopping); sessions are not signalled."""
        for session in list(self.sessions.values()):
            for name in list(session._timers):
                session._cancel_timer(name)
        for _, handle in self._recent.values():
            handle.cancel()
        self._recent.clear()
        for task in list(self._tasks):
            task.cancel()

    # -- UAC --------------------------------------------------------------------------------------
    async def invite(self, *, request_uri: str, to_uri: str, from_uri: str, from_display: str = "",
                     destination: tuple[str, int] | None = None, transport: str = "UDP",
                     sdp: bytes | None, credentials: tuple[str, str] | None = None,
                     headers: dict[str, str] | None = None,
                     handler: InviteHandler) -> InviteSession:
        """Send an INVITE (RFC 3261 §13.2.1) and return its session at once; progress arrives on
        ``handler``. ``destination`` overrides where it (and every in-dialog request) is sent, e.g.
        a registered contact's received address behind NAT (RFC 3581); else the Request-URI's host
        (an IP literal: no RFC 3263 DNS). ``sdp=None`` sends a delayed offer (the handler's
        optional ``on_offer`` gives the answer for the ACK). A 401/407 is answered once with
        ``credentials`` (new CSeq, same Call-ID, §22.2).

        Raises SipParseError for bad URIs, TransportError (or OSError) when it cannot send at all.
        """
        transport = transport.upper()
        uri = parse_uri(request_uri)
        dest = destination or uri_address(uri)
        if dest is None:
            raise TransportError(f"cannot resolve {uri.host} (no DNS; give destination)")
        from_addr = Address.parse(from_uri) if "<" in from_uri else Address(parse_uri(from_uri))
        if from_display:
            from_addr.display_name = from_display
        local_tag = new_tag()
        from_addr.params["tag"] = local_tag
        host, port = self.stack.advertised
        contact = contact_for(from_addr.uri.user if from_addr.uri else None, host, port, transport)
        extra = [("Allow", ALLOW)] + list((headers or {}).items())
        asked: int | None = None
        if self.session_expires_s is not None and not any(
                name.lower() in ("session-expires", "x") for name, _ in extra):
            asked = self.session_expires_s
            extra += [("Supported", TIMER), ("Session-Expires", str(SessionExpires(asked, "uac"))),
                      ("Min-SE", str(self.min_se_s))]
        request = self.stack.create_request(
            "INVITE", uri, from_=from_addr, to=to_uri, contact=contact, transport=transport,
            headers=extra, body=sdp or b"", content_type=SDP if sdp else None)
        session = InviteSession(self, role="uac", call_id=request.call_id, local_tag=local_tag,
                                transport=transport, handler=handler, local_sdp=sdp, contact=contact,
                                dest=destination)
        session._credentials = credentials
        session._session_expires_asked = asked
        session._invite_dest = dest
        session._start_invite(request)
        tx = session._invite_tx
        assert tx is not None
        if tx.final.done() and tx.final.exception() is not None:
            session._invite_tx = None  # the caller learns it from the exception, not on_ended
            raise tx.final.exception()  # type: ignore[misc]
        self._add_session(session)
        return session

    # -- registry ---------------------------------------------------------------------------------
    def find(self, call_id: str) -> list[InviteSession]:
        """Live sessions with this Call-ID (UAC and UAS of one call share it on a loopback)."""
        return [s for (cid, _), s in self.sessions.items() if cid == call_id]

    def _add_session(self, session: InviteSession) -> None:
        if session.state != TERMINATED:
            self.sessions[session.key] = session

    def _add_dialog(self, session: InviteSession) -> None:
        if session.dialog is not None and session.state != TERMINATED:
            self.dialogs[session.dialog.id] = session

    def _forget(self, session: InviteSession) -> None:
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
        if session.dialog is not None and self.dialogs.get(session.dialog.id) is session:
            del self.dialogs[session.dialog.id]
        if session.role == "uas" and session.dialog is not None:
            remote = (session.call_id, session.dialog.remote_tag)
            if self._uas_by_remote.get(remote) is session:
                del self._uas_by_remote[remote]
            self._keep_recent(("uas", *remote), session)
        else:
            self._keep_recent(("uac", *session.key), session)

    def _keep_recent(self, key: tuple[str, str, str], session: InviteSession) -> None:
        """Remember an ended session for 64*T1 (late 2xx / INVITE retransmissions)."""
        old = self._recent.pop(key, None)
        if old is not None:
            old[1].cancel()
        handle = self.clock.call_later(64 * self.t1, lambda: self._recent.pop(key, None))
        self._recent[key] = (session, handle)

    def _forget_incoming(self, incoming: IncomingInvite) -> None:
        if self.incoming.get(incoming.key) is incoming:
            del self.incoming[incoming.key]

    # -- I/O helpers ------------------------------------------------------------------------------
    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send_raw(self, data: bytes, dest: Addr, transport: str) -> None:
        """Send outside any transaction (the ACK for a 2xx, §17.1.1.3)."""
        try:
            self.stack.transports[transport].send(data, dest)
        except (KeyError, OSError) as exc:
            log.info("cannot send to %s: %s", dest, exc)

    def _respond(self, tx: ServerTransaction, response: Response) -> None:
        if "Server" not in response.headers:
            response.headers.add("Server", self.stack.config.user_agent)
        tx.respond(response)

    def _abandon(self, tx: ClientTransaction) -> None:
        """Destroy a client transaction that will never complete (§9.1 after CANCEL)."""
        for handle in tx.timers.values():
            handle.cancel()
        tx.timers.clear()
        if self.stack.transactions.client.get(tx.key) is tx:
            del self.stack.transactions.client[tx.key]
        if not tx.final.done():
            tx.final.cancel()

    # -- incoming requests ------------------------------------------------------------------------
    def _dialog_session(self, request: Request) -> InviteSession | None:
        try:
            return self.dialogs.get(dialog_id_for(request, incoming_request=True))
        except SipParseError:
            return None

    async def _on_invite(self, tx: ServerTransaction) -> Response | None:
        request = tx.request
        if request.to.tag is not None:
            session = self._dialog_session(request)
            if session is None:
                return make_response(request, 481)
            session._on_reinvite(tx)
            return None
        remote = (request.call_id, request.from_.tag or "")
        answered = self._uas_by_remote.get(remote)
        if answered is None and ("uas", *remote) in self._recent:
            answered = self._recent[("uas", *remote)][0]
        if answered is not None and answered._initial_2xx is not None:
            if request.cseq.seq == answered._initial_2xx.cseq.seq:  # INVITE retransmitted after 2xx
                tx.respond(answered._initial_2xx)
                return None
            return make_response(request, 482)  # §8.2.2.2 merged request / loop
        if self.on_incoming_invite is None:
            return make_response(request, 480)
        if not request.contacts:
            return make_response(request, 400, "Missing Contact")
        if self.session_expires_s is not None and too_small(request, self.min_se_s):
            response = make_response(request, 422)  # RFC 4028 §9
            response.headers.add("Min-SE", str(self.min_se_s))
            return response
        incoming = IncomingInvite(self, tx)
        self.incoming[incoming.key] = incoming
        try:
            await self.on_incoming_invite(incoming)
        except Exception:
            log.exception("on_incoming_invite failed")
            if incoming.state == "pending":
                incoming.reject(500)
        return None

    async def _on_cancel(self, tx: ServerTransaction) -> Response:
        """§9.2: 200 to the CANCEL, 487 to the INVITE if it has no final response yet; 481 when
        no INVITE transaction matches."""
        request = tx.request
        invite_tx = self.stack.transactions.find_invite(request)
        if invite_tx is None:
            return make_response(request, 481)
        last = invite_tx.fsm.last_response
        if last is None or last.status < 200:
            incoming = self.incoming.get((request.call_id, request.from_.tag or ""))
            to_tag = incoming.local_tag if incoming is not None else (last.to.tag if last else None)
            self._respond(invite_tx, make_response(invite_tx.request, 487, to_tag=to_tag))
            if incoming is not None and incoming.state == "pending":
                self._forget_incoming(incoming)
                incoming._on_cancelled()
        return make_response(request, 200)

    async def _on_bye(self, tx: ServerTransaction) -> Response | None:
        request = tx.request
        session = self._dialog_session(request)
        if session is None or session.dialog is None:
            return make_response(request, 481)
        problem = session.dialog.accept_request(request)
        if problem is not None:
            return make_response(request, *problem)
        session._stop_2xx_retransmission()
        self._respond(tx, make_response(request, 200))
        session._end(REMOTE_BYE, None)
        return None

    async def _on_info(self, tx: ServerTransaction) -> Response | None:
        request = tx.request
        session = self._dialog_session(request)
        if session is None or session.dialog is None:
            return make_response(request, 481)
        problem = session.dialog.accept_request(request)
        if problem is not None:
            return make_response(request, *problem)
        self._respond(tx, make_response(request, 200))
        _notify(session.handler, "on_info", request.content_type or "", request.body)
        return None

    async def _on_options(self, tx: ServerTransaction) -> Response | None:
        request = tx.request
        if request.to.tag is None:
            if self._default_options is not None:
                return await self._default_options(tx)
            return make_response(request, 200)
        if self._dialog_session(request) is None:
            return make_response(request, 481)
        response = make_response(request, 200)
        response.headers.add("Allow", ALLOW)
        response.headers.add("Accept", SDP)
        return response

    def _on_stray_ack(self, request: Request, addr: Addr, transport: Transport) -> None:
        session = self._dialog_session(request)
        if session is not None:
            session._on_ack(request)

    def _on_stray_response(self, response: Response, addr: Addr, transport: Transport) -> None:
        try:
            if response.cseq.method != "INVITE" or not 200 <= response.status < 300:
                return
            key = (response.call_id, response.from_.tag or "")
        except SipParseError:
            return
        session = self.sessions.get(key)
        if session is None and ("uac", *key) in self._recent:
            session = self._recent[("uac", *key)][0]
        if session is not None:  # UAC: the INVITE's 2xx; either role: a re-INVITE's 2xx
            session._on_stray_2xx(response)
