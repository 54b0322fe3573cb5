"""The user agent of INVITE sessions (RFC 3261 §13-§15) that ``calls/`` drives: :class:`UserAgent`.

:class:`UserAgent` sits on a :class:`~voipbin.sip.stack.SipStack`, routes INVITE, BYE, CANCEL, INFO
and OPTIONS and the stray ACKs and 2xx to the session they belong to, and keeps the registry of
sessions:

* UAC: :meth:`UserAgent.invite` sends an INVITE and returns its
  :class:`~voipbin.sip.invite_client.ClientInviteSession` (provisional/final responses, 401/407,
  forks, CANCEL, ACK; :mod:`voipbin.sip.invite_client`).
* UAS: each new INVITE reaches :attr:`UserAgent.on_incoming_invite` as an
  :class:`~voipbin.sip.invite_server.IncomingInvite` whose ``answer`` gives a
  :class:`~voipbin.sip.invite_server.ServerInviteSession` (2xx until the ACK, CANCEL → 487;
  :mod:`voipbin.sip.invite_server`). A retransmitted INVITE gets the same 2xx again; another
  INVITE with the Call-ID and From tag of an answered one gets 482 (§8.2.2.2).
* In a dialog, either side (:class:`~voipbin.sip.invite_dialog.InviteSession`,
  :mod:`voipbin.sip.invite_dialog`): BYE, re-INVITE (glare, 491), INFO, session timers (RFC 4028).
  OPTIONS in a dialog is answered 200 (§11); requests for an unknown dialog get 481 (§12.2.2).

SDP bodies are opaque bytes: the call layer builds and parses them. Events reach the call layer on
an :class:`~voipbin.sip.invite_handler.InviteHandler` (plain synchronous callbacks). Sessions live in
a registry keyed by Call-ID + local tag and by dialog id; terminated sessions leave it at once (a
tombstone is kept for 64*T1 so that late 2xx retransmissions are still ACKed).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from voipbin.sip.dialog import DialogId, dialog_id_for
from voipbin.sip.errors import SipParseError
from voipbin.sip.invite import ALLOW, SDP
from voipbin.sip.invite_client import ClientInviteSession
from voipbin.sip.invite_dialog import (
    BYE_WAIT_S,
    GLARE_RETRY_OTHER_S,
    GLARE_RETRY_OWNER_S,
    REINVITE_ATTEMPTS,
    TERMINATED,
    InviteSession,
)
from voipbin.sip.invite_handler import InviteHandler, notify
from voipbin.sip.invite_server import PENDING, IncomingInvite, ServerInviteSession
from voipbin.sip.message import Request, Response, make_response
from voipbin.sip.session_timer import DEFAULT_SESSION_EXPIRES_S, MIN_SE_S, too_small
from voipbin.sip.stack import SipStack
from voipbin.sip.transaction import ClientTransaction, Clock, ServerTransaction, TimerHandle
from voipbin.sip.transaction_fsm import T1, T2
from voipbin.sip.transport import Addr, Transport

log = logging.getLogger(__name__)

__all__ = ["IncomingInviteCallback", "UserAgent"]

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

    ``clock``: the timers of the sessions (session timer, glare delay, 2xx retransmission, ACK
    wait, BYE wait, CANCEL wait, tombstones); default: the stack's transaction clock. ``rng``: draws
    the §14.1 glare delays. Tests pass a fake clock here (the transaction layer keeps its own).
    """

    def __init__(self, stack: SipStack, *, clock: Clock | None = None, rng: random.Random | None = None) -> None:
        self.stack = stack
        self.clock: Clock = clock or stack.transactions.clock
        self.rng = rng or random.Random()
        self.t1 = stack.config.timers.get("t1", T1)
        self.t2 = stack.config.timers.get("t2", T2)
        self.on_incoming_invite: IncomingInviteCallback | None = None
        self.sessions: dict[tuple[str, str], InviteSession] = {}
        self.dialogs: dict[DialogId, InviteSession] = {}
        self.incoming: dict[tuple[str, str], IncomingInvite] = {}
        self._uas_by_remote: dict[tuple[str, str], ServerInviteSession] = {}
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
            session.stop_timers()
        for _, handle in self._recent.values():
            handle.cancel()
        self._recent.clear()
        for task in list(self._tasks):
            task.cancel()

    # -- UAC --------------------------------------------------------------------------------------
    async def invite(self, *, request_uri: str, to_uri: str, from_uri: str, from_display: str = "",
                     destination: tuple[str, int] | None = None, transport: str = "UDP",
                     sdp: bytes | None, credentials: tuple[str, str] | None = None,
                     headers: dict[str, str] | None = None, route: Sequence[str] = (),
                     handler: InviteHandler) -> ClientInviteSession:
        """Send an INVITE (RFC 3261 §13.2.1) on this UA and return its session at once: see
        :meth:`ClientInviteSession.send <voipbin.sip.invite_client.ClientInviteSession.send>` for the
        arguments, the delayed offer, the digest retry and what it raises."""
        session = ClientInviteSession.send(
            self, request_uri=request_uri, to_uri=to_uri, from_uri=from_uri, from_display=from_display,
            destination=destination, transport=transport, sdp=sdp, credentials=credentials, headers=headers,
            route=route, handler=handler)
        self.add_session(session)
        return session

    # -- registry ---------------------------------------------------------------------------------
    def find(self, call_id: str) -> list[InviteSession]:
        """Live sessions with this Call-ID (UAC and UAS of one call share it on a loopback)."""
        return [s for (cid, _), s in self.sessions.items() if cid == call_id]

    def add_session(self, session: InviteSession) -> None:
        """Register a live session by Call-ID + local tag."""
        if session.state != TERMINATED:
            self.sessions[session.key] = session

    def add_dialog(self, session: InviteSession) -> None:
        """Register a live session by its (confirmed) dialog id."""
        if session.dialog is not None and session.state != TERMINATED:
            self.dialogs[session.dialog.id] = session

    def add_answered(self, session: ServerInviteSession) -> None:
        """Register a session just answered: by key, by dialog and by the caller's Call-ID + tag."""
        self.add_session(session)
        self.add_dialog(session)
        self._uas_by_remote[session.remote_key] = session

    def forget(self, session: InviteSession) -> None:
        """A session ended: drop it from the registry, keep its tombstone for 64*T1."""
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]
        if session.dialog is not None and self.dialogs.get(session.dialog.id) is session:
            del self.dialogs[session.dialog.id]
        kind, call_id, tag = session.tombstone_key  # a UAS session: ("uas", its remote_key)
        if self._uas_by_remote.get((call_id, tag)) is session:
            del self._uas_by_remote[(call_id, tag)]
        self._keep_recent((kind, call_id, tag), session)

    def _keep_recent(self, key: tuple[str, str, str], session: InviteSession) -> None:
        """Remember an ended session for 64*T1 (late 2xx / INVITE retransmissions)."""
        old = self._recent.pop(key, None)
        if old is not None:
            old[1].cancel()
        handle = self.clock.call_later(64 * self.t1, lambda: self._recent.pop(key, None))
        self._recent[key] = (session, handle)

    def forget_incoming(self, incoming: IncomingInvite) -> None:
        """An incoming INVITE left ``pending`` (answered, rejected or cancelled)."""
        if self.incoming.get(incoming.key) is incoming:
            del self.incoming[incoming.key]

    # -- I/O helpers ------------------------------------------------------------------------------
    def spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run ``coro`` as a task owned by the user agent (cancelled by :meth:`close`)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def send_raw(self, data: bytes, dest: Addr, transport: str) -> None:
        """Send outside any transaction (the ACK for a 2xx, §17.1.1.3)."""
        try:
            self.stack.transports[transport].send(data, dest)
        except (KeyError, OSError) as exc:
            log.info("cannot send to %s: %s", dest, exc)

    def respond(self, tx: ServerTransaction, response: Response) -> None:
        """Send ``response`` on ``tx`` with our Server header."""
        if "Server" not in response.headers:
            response.headers.add("Server", self.stack.config.user_agent)
        tx.respond(response)

    def abandon(self, tx: ClientTransaction) -> None:
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
            session.on_reinvite(tx)
            return None
        remote = (request.call_id, request.from_.tag or "")
        answered = self._uas_by_remote.get(remote)
        if answered is None and ("uas", *remote) in self._recent:
            answered = self._recent[("uas", *remote)][0]
        if answered is not None and answered.initial_2xx is not None:
            if request.cseq.seq == answered.initial_2xx.cseq.seq:  # INVITE retransmitted after 2xx
                tx.respond(answered.initial_2xx)
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
            if incoming.state == PENDING:
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
            self.respond(invite_tx, make_response(invite_tx.request, 487, to_tag=to_tag))
            if incoming is not None and incoming.state == PENDING:
                incoming.cancelled_by_peer()
        return make_response(request, 200)

    async def _on_bye(self, tx: ServerTransaction) -> Response | None:
        request = tx.request
        session = self._dialog_session(request)
        if session is None or session.dialog is None:
            return make_response(request, 481)
        problem = session.dialog.accept_request(request)
        if problem is not None:
            return make_response(request, *problem)
        session.on_bye(tx)
        return None

    async def _on_info(self, tx: ServerTransaction) -> Response | None:
        request = tx.request
        session = self._dialog_session(request)
        if session is None or session.dialog is None:
            return make_response(request, 481)
        problem = session.dialog.accept_request(request)
        if problem is not None:
            return make_response(request, *problem)
        self.respond(tx, make_response(request, 200))
        notify(session.handler, "on_info", request.content_type or "", request.body)
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
            session.on_ack(request)

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
        if session is not None:  # UAC: the INVITE's 2xx; either side: a re-INVITE's 2xx
            session.on_stray_2xx(response)
