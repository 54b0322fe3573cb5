"""Transaction layer I/O (RFC 3261 §17): runs the FSMs of :mod:`voipbin.sip.transaction_fsm`.

:class:`TransactionLayer` matches incoming messages to transactions (§17.1.3, §17.2.3), executes FSM
actions (send, timers via a :class:`Clock`, TU delivery) and forgets terminated transactions.

* Server side: a new request creates a :class:`ServerTransaction` and calls ``on_request(tx)``;
  the TU answers with ``tx.respond(response)``. An ACK that matches no transaction (the ACK for a 2xx)
  and CANCEL handling are left to the TU (``on_stray_ack``; :meth:`TransactionLayer.find_invite`).
* Client side: :meth:`TransactionLayer.send_request` returns a :class:`ClientTransaction`; ``await
  tx.final`` gives the final response or raises :class:`TransactionTimeout` / :class:`TransportError`.
  Retransmitted 2xx to an INVITE (no transaction left) go to ``on_stray_response`` (§13.2.2.4).
* A non-INVITE server transaction that has sent its final response over UDP waits out Timer J
  (64*T1, §17.2.2) answering retransmissions of its request with the same response. While it waits it
  is kept as a plain ``(response bytes, destination, transport number, deadline)`` entry (a tuple of
  atoms, which the garbage collector stops tracking), not as a transaction object with a timer of its
  own: at 2,000 REGISTER/s some 128,000 transactions are in that state, and as objects (transaction,
  FSM, timer handle, callback: 10 tracked objects each) every full collection walked them, 200 ms of
  CPU per 64,000 on the event loop (issue 21). Their Timer J runs out in order (one delay for all),
  so one sweep per ``J_SWEEP_S`` forgets the due ones: Timer J lasts 64*T1 to 64*T1 + ``J_SWEEP_S``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Protocol

from voipbin.sip.errors import SipParseError, TransactionTimeout, TransportError
from voipbin.sip.headers import VIA_BRANCH_COOKIE, Via
from voipbin.sip.message import Request, Response
from voipbin.sip.transaction_fsm import (
    Action,
    CancelTimer,
    InviteClientFsm,
    InviteServerFsm,
    NonInviteClientFsm,
    NonInviteServerFsm,
    PassToTU,
    Send,
    StartTimer,
    Terminate,
    Timeout,
    TransportFailed,
)
from voipbin.sip.transport import Addr, Transport

log = logging.getLogger(__name__)

J_SWEEP_S = 0.1  # s, how often the completed non-INVITE server transactions past Timer J are forgotten


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time source and timer scheduler; tests substitute a fake one."""

    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...


class LoopClock:
    """:class:`Clock` on the running asyncio loop."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)


def response_destination(via: Via, source: Addr, transport: Transport) -> Addr:
    """Where to send a response (RFC 3261 §18.2.2, RFC 3581 §4): the connection's peer for TCP;
    for UDP ``received`` (or the sent-by host) and ``rport`` (or the sent-by port, default 5060)."""
    if transport.reliable:
        return source
    host = via.params.get("received") or via.host
    rport = via.params.get("rport")
    if rport and rport.isdigit():
        return host, int(rport)
    return host, via.port or 5060


def server_key(request: Request, via: Via) -> tuple[str, ...]:
    """Server transaction key (§17.2.3): branch + sent-by + method (ACK matches INVITE).
    Requests without the magic cookie fall back to an RFC 2543-style key."""
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(VIA_BRANCH_COOKIE):
        return (branch, via.sent_by, method)
    cseq = request.cseq
    to_tag = "" if request.method == "ACK" else (request.to.tag or "")
    return ("2543", request.call_id, request.from_.tag or "", to_tag, str(cseq.seq), str(request.uri),
            via.sent_by, branch, method)


class _Base:
    def __init__(self, layer: TransactionLayer, fsm, transport: Transport, dest: Addr,
                 key: tuple[str, ...]) -> None:
        self._layer = layer
        self.fsm = fsm
        self.transport = transport
        self.dest = dest
        self.key = key
        self.timers: dict[str, TimerHandle] = {}

    @property
    def state(self):
        return self.fsm.state


class ServerTransaction(_Base):
    """A server transaction (§17.2). ``request`` (a non-INVITE transaction drops it once it has
    answered: only the response's bytes stay for retransmissions), ``source`` (peer address), ``transport``."""

    def __init__(self, layer, fsm, transport, dest, key, source: Addr) -> None:
        super().__init__(layer, fsm, transport, dest, key)
        self.source = source
        self.on_timeout: Callable[[], None] | None = None  # Timer H: no ACK for a non-2xx

    @property
    def request(self) -> Request:
        return self.fsm.request

    def respond(self, response: Response) -> None:
        """Send a provisional or final response through the transaction (§17.2.1, §17.2.2)."""
        self._layer._run(self, self.fsm.on_tu_response(response))


class ClientTransaction(_Base):
    """A client transaction (§17.1). ``final`` resolves to the final response."""

    def __init__(self, layer, fsm, transport, dest, key) -> None:
        super().__init__(layer, fsm, transport, dest, key)
        self.final: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.on_provisional: Callable[[Response], None] | None = None

    @property
    def request(self) -> Request:
        return self.fsm.request


class TransactionLayer:
    """Owns every live transaction. ``timers`` overrides T1/T2/T4 (keyword args of the FSMs)."""

    def __init__(
        self,
        on_request: Callable[[ServerTransaction], None],
        clock: Clock | None = None,
        on_stray_ack: Callable[[Request, Addr, Transport], None] | None = None,
        on_stray_response: Callable[[Response, Addr, Transport], None] | None = None,
        **timers: float,
    ) -> None:
        self._on_request = on_request
        self.clock: Clock = clock or LoopClock()
        self._on_stray_ack = on_stray_ack
        self._on_stray_response = on_stray_response
        self._timers = timers
        self.server: dict[tuple[str, ...], ServerTransaction] = {}
        self.client: dict[tuple[str, str], ClientTransaction] = {}
        # non-INVITE server transactions in Completed (see the module docstring): key -> (response bytes,
        # destination, index in _senders, Timer J deadline); the keys in deadline order; the sweep's timer
        self.completed: dict[tuple[str, ...], tuple[bytes, Addr, int, float]] = {}
        self._senders: list[Transport] = []
        self._completed_order: deque[tuple[float, tuple[str, ...]]] = deque()
        self._sweep: TimerHandle | None = None
        self.stats = {"retransmissions_absorbed": 0, "stray_responses": 0, "timeouts": 0}

    # -- server side ------------------------------------------------------------------------------
    def receive_request(self, request: Request, source: Addr, transport: Transport, via: Via | None = None) -> None:
        """Match a validated request to a server transaction or create one (§17.2.3). ``via``: the request's
        top Via when the caller has parsed it already (the stack has: one parse less per request)."""
        if via is None:
            via = request.top_via
        key = server_key(request, via)
        tx = self.server.get(key)
        if tx is not None:
            self.stats["retransmissions_absorbed"] += 1
            self._run(tx, tx.fsm.on_request(request))
            return
        completed = self.completed.get(key)
        if completed is not None:  # §17.2.2: Completed answers a retransmission with the final response
            self.stats["retransmissions_absorbed"] += 1
            data, dest, sender, _ = completed
            try:
                self._senders[sender].send(data, dest)
            except OSError:
                del self.completed[key]
            return
        if request.method == "ACK":
            if self._on_stray_ack is not None:
                self._on_stray_ack(request, source, transport)
            return
        dest = response_destination(via, source, transport)
        fsm_cls = InviteServerFsm if request.method == "INVITE" else NonInviteServerFsm
        tx = ServerTransaction(self, fsm_cls(request, transport.reliable, **self._timers),
                               transport, dest, key, source)
        self.server[key] = tx
        self._run(tx, tx.fsm.start())

    def find_invite(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL targets (§9.2), or None."""
        try:
            via = cancel.top_via
            key = server_key(cancel, via)
        except SipParseError:
            return None
        return self.server.get((*key[:-1], "INVITE"))

    # -- client side ------------------------------------------------------------------------------
    def send_request(self, request: Request, dest: Addr, transport: Transport) -> ClientTransaction:
        """Start a client transaction for ``request`` (its top Via carries the branch)."""
        branch = request.top_via.branch or ""
        key = (branch, request.cseq.method)
        fsm_cls = InviteClientFsm if request.method == "INVITE" else NonInviteClientFsm
        tx = ClientTransaction(self, fsm_cls(request, transport.reliable, **self._timers),
                               transport, dest, key)
        self.client[key] = tx
        self._run(tx, tx.fsm.start())
        return tx

    def receive_response(self, response: Response, source: Addr, transport: Transport) -> None:
        """Match a response to a client transaction by branch + CSeq method (§17.1.3)."""
        try:
            key = (response.top_via.branch or "", response.cseq.method)
        except SipParseError:
            self.stats["stray_responses"] += 1
            return
        tx = self.client.get(key)
        if tx is None:
            self.stats["stray_responses"] += 1
            if self._on_stray_response is not None:
                self._on_stray_response(response, source, transport)
            return
        self._run(tx, tx.fsm.on_response(response))

    def transport_error(self, addr: Addr) -> None:
        """A transport could not reach ``addr``: fail the transactions sending there (§17.1.4)."""
        for tx in [*self.client.values(), *self.server.values()]:
            if tx.dest == addr:
                self._run(tx, tx.fsm.on_transport_error())
        for key in [k for k, entry in self.completed.items() if entry[1] == addr]:
            del self.completed[key]

    # -- action execution -------------------------------------------------------------------------
    def _run(self, tx: ServerTransaction | ClientTransaction, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                try:
                    tx.transport.send(action.message.to_bytes(), tx.dest)
                except OSError:
                    self._run(tx, tx.fsm.on_transport_error())
                    return
            elif isinstance(action, StartTimer):
                if action.name == "J" and isinstance(tx, ServerTransaction):
                    self._complete(tx, action.delay)
                    continue
                old = tx.timers.pop(action.name, None)
                if old is not None:
                    old.cancel()
                tx.timers[action.name] = self.clock.call_later(
                    action.delay, lambda tx=tx, name=action.name: self._fire(tx, name)
                )
            elif isinstance(action, CancelTimer):
                handle = tx.timers.pop(action.name, None)
                if handle is not None:
                    handle.cancel()
            elif isinstance(action, PassToTU):
                self._deliver(tx, action.message)
            elif isinstance(action, Timeout):
                self.stats["timeouts"] += 1
                if isinstance(tx, ClientTransaction):
                    if not tx.final.done():
                        tx.final.set_exception(TransactionTimeout(f"Timer {action.timer} fired"))
                elif tx.on_timeout is not None:
                    tx.on_timeout()
            elif isinstance(action, TransportFailed):
                if isinstance(tx, ClientTransaction) and not tx.final.done():
                    tx.final.set_exception(TransportError(f"cannot reach {tx.dest}"))
            elif isinstance(action, Terminate):
                for handle in tx.timers.values():
                    handle.cancel()
                tx.timers.clear()
                table = self.client if isinstance(tx, ClientTransaction) else self.server
                if table.get(tx.key) is tx:  # type: ignore[arg-type]
                    del table[tx.key]  # type: ignore[arg-type]

    def _complete(self, tx: ServerTransaction, timer_j: float) -> None:
        """A non-INVITE server transaction has sent its final response over an unreliable transport:
        keep only what a retransmission needs until Timer J (``timer_j`` s from now) runs out."""
        last = tx.fsm.last_response
        assert last is not None
        if self.server.get(tx.key) is tx:
            del self.server[tx.key]
        for handle in tx.timers.values():
            handle.cancel()
        tx.timers.clear()
        deadline = self.clock.time() + timer_j
        if tx.transport not in self._senders:  # one or two transports: a list beats a dict keyed by them
            self._senders.append(tx.transport)
        self.completed[tx.key] = (last.to_bytes(), tx.dest, self._senders.index(tx.transport), deadline)
        self._completed_order.append((deadline, tx.key))
        if self._sweep is None:
            self._sweep = self.clock.call_later(timer_j + J_SWEEP_S, self._sweep_completed)

    def _sweep_completed(self) -> None:
        """Forget the completed transactions whose Timer J has run out; re-arm for the next one."""
        self._sweep = None
        now, order = self.clock.time(), self._completed_order
        while order and order[0][0] <= now:
            deadline, key = order.popleft()
            entry = self.completed.get(key)
            if entry is not None and entry[3] == deadline:  # not a newer transaction of the same key
                del self.completed[key]
        if order:
            self._sweep = self.clock.call_later(max(order[0][0] - now, 0.0) + J_SWEEP_S, self._sweep_completed)

    def _fire(self, tx: ServerTransaction | ClientTransaction, name: str) -> None:
        tx.timers.pop(name, None)
        self._run(tx, tx.fsm.on_timer(name))

    def _deliver(self, tx: ServerTransaction | ClientTransaction, message: Request | Response) -> None:
        if isinstance(tx, ServerTransaction):
            self._on_request(tx)
            return
        assert isinstance(message, Response)
        if message.status < 200:
            if tx.on_provisional is not None:
                tx.on_provisional(message)
        elif not tx.final.done():
            tx.final.set_result(message)
