"""The SIP endpoint: transports + transaction layer + request routing + UAC helpers.

``SipStack(StackConfig(...))``; ``await stack.start()`` binds UDP and TCP on the same port (port 0
picks one; see :attr:`SipStack.port`). Incoming requests are routed by method to handlers
(``stack.route("INVITE", handler)``; a registrar is attached the same way:
``stack.route("REGISTER", registrar.on_register)``); OPTIONS is answered 200 (RFC 3261 §11.2),
CANCEL per §9.2, other methods 405/501.

Hostile input (see :meth:`SipStack.receive`): every source IP has a token bucket; oversize messages
get 513 (or are dropped when they cannot be answered); unparseable ones are dropped; parseable but
invalid requests get 400 with a reason phrase naming the problem. ``stack.stats`` counts each case.

UAC side: :meth:`SipStack.create_request`, :meth:`SipStack.send_request` (one client transaction,
returns the final response) and :meth:`SipStack.send_request_with_auth` (answers 401/407 once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from voipbin.sip.digest import build_authorization, parse_auth_header, pick_challenge
from voipbin.sip.errors import SipParseError
from voipbin.sip.headers import Address, Via
from voipbin.sip.message import Headers, Request, Response, make_response, new_branch, new_tag
from voipbin.sip.parser import parse_message, validate_request
from voipbin.sip.ratelimit import TokenBuckets
from voipbin.sip.transaction import (
    ClientTransaction,
    Clock,
    ServerTransaction,
    TransactionLayer,
    response_destination,
)
from voipbin.sip.transport import Addr, TcpTransport, Transport, UdpTransport
from voipbin.sip.uri import SipUri, parse_uri

log = logging.getLogger(__name__)

BUSY_PROBES = 25  # loop-load probes (20 ms apart) that must all be busy for "saturated": 500 ms
# (200 ms refused ~40 first legs in one 8 s round of ten at 2,000 REGISTERs/s, ~65 % busy on average,
# while the loop kept up: a full GC pass and a burst make 200 ms spells at 95 %, 500 ms ones are rare)

ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "NOTIFY", "REFER",
                   "UPDATE", "PRACK", "MESSAGE", "SUBSCRIBE", "PUBLISH")

Handler = Callable[[ServerTransaction], Awaitable[Response | None]]


@dataclass
class StackConfig:
    """``host``/``port``: where to bind (port 0: any free port, same for UDP and TCP);
    ``domain``: the SIP domain (``<customer_id>.registrar.<domain>``); ``advertised_host``/``_port``:
    the address written in Via and Contact (default: the bound one); ``max_message_bytes``: larger
    messages get 513; ``rate_per_source_s``/``rate_burst``: token bucket per source IP (messages),
    except for ``trusted_sources`` (the SIP edge proxies: every phone behind one shares its address);
    ``timers``: T1/T2/T4 overrides, e.g. ``{"t1": 0.5}``; ``tcp_*``: inbound TCP limits (see
    :class:`~voipbin.sip.transport.TcpTransport`); ``max_in_flight``: per method, how many requests
    may be in their handlers at once - beyond it a new one is answered 503 at once with
    ``Retry-After: overload_retry_after_s`` (RFC 3261 §21.5.4), so a burst beyond capacity is refused
    instead of queueing work (and database connections) without bound; those methods are refused the
    same way while the event loop runs more than ``overload_lag_s`` late at two probes in a row (it is
    busy with a backlog of received datagrams: answering them in full would only make every answer
    later; one late probe, a GC pause, does not count), and a REGISTER without credentials (a first
    leg, the cheapest to refuse) is refused while the loop's thread has been on the CPU at least
    ``overload_busy`` of every 20 ms for 500 ms (saturated: taking it would only queue it)."""

    host: str = "127.0.0.1"
    port: int = 5060
    domain: str = "voipbin.test"
    advertised_host: str | None = None
    advertised_port: int | None = None
    user_agent: str = "voipbin"
    max_message_bytes: int = 16384
    rate_per_source_s: float = 2000.0
    rate_burst: float = 4000.0
    trusted_sources: frozenset[str] = frozenset()
    transports: tuple[str, ...] = ("UDP", "TCP")
    timers: dict[str, float] = field(default_factory=dict)
    tcp_idle_timeout_s: float = 3900.0
    tcp_first_message_timeout_s: float = 10.0
    tcp_max_connections_per_source: int = 32
    max_in_flight: dict[str, int] = field(default_factory=lambda: {"REGISTER": 256})
    overload_retry_after_s: int = 5
    overload_lag_s: float = 0.1
    overload_busy: float = 0.95


class SipStack:
    """A SIP endpoint (UAS core + UAC helpers). Not thread safe; lives on one event loop.

    ``clock``: the transaction timers' :class:`~voipbin.sip.transaction.Clock` (default: the loop's);
    a :class:`~voipbin.sip.ua.UserAgent` on this stack uses it too unless given its own."""

    def __init__(self, config: StackConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.stats: Counter[str] = Counter()
        self.buckets = TokenBuckets(config.rate_per_source_s, config.rate_burst)
        self.transactions = TransactionLayer(self._on_request, clock, on_stray_ack=self._stray_ack,
                                             on_stray_response=self._stray_response, **config.timers)
        self.transports: dict[str, Transport] = {}
        self.handlers: dict[str, Handler] = {"OPTIONS": self._options, "CANCEL": self._cancel}
        self.on_stray_ack: Callable[[Request, Addr, Transport], None] | None = None
        self.on_stray_response: Callable[[Response, Addr, Transport], None] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._in_flight: Counter[str] = Counter()
        self._lags = (0.0, 0.0)  # how late the event loop ran the last two lag probes (seconds)
        self._busy: deque[float] = deque([0.0] * BUSY_PROBES, maxlen=BUSY_PROBES)  # loop thread CPU / wall time
        self._lag_probe: asyncio.Task[None] | None = None
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> int:
        """Bind the transports; return the port (UDP and TCP share it)."""
        for attempt in range(20):
            port = self.config.port
            try:
                if "UDP" in self.config.transports:
                    udp = UdpTransport(self.receive, self.transactions.transport_error)
                    port = (await udp.listen(self.config.host, port))[1]
                    self.transports["UDP"] = udp
                if "TCP" in self.config.transports:
                    tcp = TcpTransport(self.receive, self.transactions.transport_error,
                                       self.config.max_message_bytes,
                                       idle_timeout_s=self.config.tcp_idle_timeout_s,
                                       first_message_timeout_s=self.config.tcp_first_message_timeout_s,
                                       max_connections_per_source=self.config.tcp_max_connections_per_source)
                    port = (await tcp.listen(self.config.host, port))[1]
                    self.transports["TCP"] = tcp
            except OSError:
                self._close_transports()
                if self.config.port != 0 or attempt == 19:
                    raise
                continue
            break
        self.port = port
        if self._lag_probe is None:
            self._lag_probe = asyncio.create_task(self._probe_lag())
        return port

    async def stop(self) -> None:
        if self._lag_probe is not None:
            self._lag_probe.cancel()
            self._lag_probe = None
        for task in list(self._tasks):
            task.cancel()
        self._close_transports()

    async def _probe_lag(self, interval_s: float = 0.02) -> None:
        """Every ``interval_s``: how late the loop woke this task up and how busy its thread was, to
        :meth:`note_loop_load`."""
        loop = asyncio.get_running_loop()
        while True:
            start, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(interval_s)
            now = loop.time()
            self.note_loop_load(now - start - interval_s, (time.thread_time() - cpu) / max(now - start, 1e-6))

    def note_loop_load(self, lag_s: float, busy: float) -> None:
        """Record one probe: how late the event loop ran it (seconds) and the share of the interval the
        loop's thread spent on the CPU (0..1). The stack's own probe calls this every 20 ms."""
        self._lags = (self._lags[1], max(0.0, lag_s))
        self._busy.append(busy)

    @property
    def overloaded(self) -> bool:
        """Whether the loop ran more than ``overload_lag_s`` late at the last two probes."""
        return min(self._lags) > self.config.overload_lag_s

    @property
    def saturated(self) -> bool:
        """Whether the loop's thread was on the CPU at least ``overload_busy`` of the time at each of the
        last ``BUSY_PROBES`` probes (500 ms): no idle time left for more work."""
        return min(self._busy) >= self.config.overload_busy

    def _close_transports(self) -> None:
        for transport in self.transports.values():
            transport.close()  # type: ignore[attr-defined]
        self.transports.clear()

    def route(self, method: str, handler: Handler) -> None:
        """Send requests of ``method`` to ``handler(tx)``; a returned Response is sent for it."""
        self.handlers[method.upper()] = handler

    @property
    def advertised(self) -> tuple[str, int]:
        return (self.config.advertised_host or self.config.host,
                self.config.advertised_port or self.port)

    # -- receive path -------------------------------------------------------------------------
    def receive(self, data: bytes, addr: Addr, transport: Transport, oversize: bool = False) -> None:
        """Entry point for every received message. Never raises: whatever goes wrong is counted
        in ``stats`` and the message dropped."""
        try:
            self._receive(data, addr, transport, oversize)
        except Exception:
            self.stats["internal_errors"] += 1
            log.exception("error processing message from %s", addr)

    def _receive(self, data: bytes, addr: Addr, transport: Transport, oversize: bool) -> None:
        if addr[0] not in self.config.trusted_sources and not self.buckets.allow(addr[0]):
            self.stats["rate_limited"] += 1
            return
        if oversize or len(data) > self.config.max_message_bytes:
            self.stats["oversize"] += 1
            self._refuse_oversize(data, addr, transport)
            return
        if not data or data[:1] in (b"\r", b"\n") and not data.strip(b"\r\n"):
            return  # keep-alive (RFC 5626 §3.5.1)
        try:
            message = parse_message(data)
        except SipParseError:
            self.stats["unparseable"] += 1
            return
        if isinstance(message, Response):
            if message.defects:
                self.stats["bad_responses"] += 1
                return
            self.transactions.receive_response(message, addr, transport)
            return
        assert isinstance(message, Request)
        try:
            via = message.top_via
        except SipParseError:
            self.stats["unanswerable"] += 1
            return
        self._stamp_via(message, via, addr)
        problem = validate_request(message)
        if problem is not None:
            self.stats["rejected"] += 1
            if message.method != "ACK":
                self._send_stateless(make_response(message, *problem), via, addr, transport)
            return
        self.stats["requests"] += 1
        self.transactions.receive_request(message, addr, transport, via)

    @staticmethod
    def _stamp_via(request: Request, via: Via, addr: Addr) -> None:
        """RFC 3261 §18.2.1 ``received`` and RFC 3581 §4 ``rport`` on the top Via."""
        changed = False
        if "rport" in via.params and not via.params["rport"]:
            via.params["rport"] = str(addr[1])
            changed = True
        if via.host != addr[0] or changed:
            via.params["received"] = addr[0]
            changed = True
        if changed:
            request.headers.replace_first("Via", str(via))

    def _refuse_oversize(self, data: bytes, addr: Addr, transport: Transport) -> None:
        head = data[:8192]
        end = head.find(b"\r\n\r\n")
        try:
            message = parse_message(head[:end + 4] if end >= 0 else head)
            if not isinstance(message, Request) or message.method == "ACK":
                return
            via = message.top_via
            self._stamp_via(message, via, addr)
            self._send_stateless(make_response(message, 513), via, addr, transport)
        except SipParseError:
            return

    def _send_stateless(self, response: Response, via: Via, addr: Addr, transport: Transport) -> None:
        self._add_server(response)
        transport.send(response.to_bytes(), response_destination(via, addr, transport))

    def _add_server(self, response: Response) -> None:
        if "Server" not in response.headers:
            response.headers.add("Server", self.config.user_agent)

    def _on_request(self, tx: ServerTransaction) -> None:
        method = tx.request.method
        limit = self.config.max_in_flight.get(method)
        if limit is not None and (self._in_flight[method] >= limit or self.overloaded or (
                self.saturated and "Authorization" not in tx.request.headers)):
            self.stats["overloaded"] += 1
            response = make_response(tx.request, 503)
            response.headers.add("Retry-After", str(self.config.overload_retry_after_s))
            self._add_server(response)
            tx.respond(response)
            return
        self._in_flight[method] += 1
        self._spawn(self._dispatch(tx))

    async def _dispatch(self, tx: ServerTransaction) -> None:
        method = tx.request.method  # a non-INVITE transaction lets go of its request once answered
        try:
            await self._handle(tx)
        finally:
            self._in_flight[method] -= 1

    async def _handle(self, tx: ServerTransaction) -> None:
        request = tx.request
        handler = self.handlers.get(request.method)
        try:
            if handler is None:
                status = 405 if request.method in ALLOWED_METHODS else 501
                response: Response | None = make_response(request, status)
                if status == 405:
                    response.headers.add("Allow", ", ".join(self._allow()))
            else:
                response = await handler(tx)
        except Exception:
            log.exception("handler for %s failed", request.method)
            self.stats["handler_errors"] += 1
            response = make_response(request, 500)
        if response is not None:
            self._add_server(response)
            tx.respond(response)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _allow(self) -> list[str]:
        return [m for m in ALLOWED_METHODS if m in self.handlers or m == "ACK"]

    async def _options(self, tx: ServerTransaction) -> Response:
        response = make_response(tx.request, 200)
        response.headers.add("Allow", ", ".join(self._allow()))
        response.headers.add("Accept", "application/sdp")
        return response

    async def _cancel(self, tx: ServerTransaction) -> Response:
        """RFC 3261 §9.2: 200 to the CANCEL and 487 to a pending INVITE; 481 when none."""
        invite = self.transactions.find_invite(tx.request)
        if invite is None:
            return make_response(tx.request, 481)
        if invite.fsm.last_response is None or invite.fsm.last_response.status < 200:
            to_tag = None
            if invite.fsm.last_response is not None:
                to_tag = invite.fsm.last_response.to.tag
            invite.respond(make_response(invite.request, 487, to_tag=to_tag))
        return make_response(tx.request, 200)

    def _stray_ack(self, request: Request, addr: Addr, transport: Transport) -> None:
        if self.on_stray_ack is not None:
            self.on_stray_ack(request, addr, transport)

    def _stray_response(self, response: Response, addr: Addr, transport: Transport) -> None:
        if self.on_stray_response is not None:
            self.on_stray_response(response, addr, transport)

    # -- UAC side -----------------------------------------------------------------------------
    def create_request(
        self,
        method: str,
        uri: str | SipUri,
        *,
        from_: str | Address,
        to: str | Address,
        call_id: str | None = None,
        cseq: int = 1,
        contact: str | None = None,
        transport: str = "UDP",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """A new out-of-dialog request (RFC 3261 §8.1.1): Via with a fresh branch and ``rport``,
        Max-Forwards 70, a From tag, a new Call-ID unless given. Raises SipParseError on bad URIs."""
        request_uri = parse_uri(uri) if isinstance(uri, str) else uri
        from_addr = Address.parse(from_) if isinstance(from_, str) else from_
        to_addr = Address.parse(to) if isinstance(to, str) else to
        if "tag" not in from_addr.params:
            from_addr.params["tag"] = new_tag()
        host, port = self.advertised
        h = Headers()
        h.add("Via", f"SIP/2.0/{transport.upper()} {host}:{port};branch={new_branch()};rport")
        h.add("Max-Forwards", "70")
        h.add("From", str(from_addr))
        h.add("To", str(to_addr))
        h.add("Call-ID", call_id or f"{new_tag()}{new_tag()}@{host}")
        h.add("CSeq", f"{cseq} {method}")
        if contact is not None:
            h.add("Contact", contact)
        h.add("User-Agent", self.config.user_agent)
        for name, value in headers or []:
            h.add(name, value)
        if content_type is not None:
            h.add("Content-Type", content_type)
        return Request(h, body, method=method, uri=request_uri)

    def start_transaction(self, request: Request, dest: Addr | None = None,
                          transport: str = "UDP") -> ClientTransaction:
        """Start a client transaction (§17.1) for ``request`` towards ``dest`` (default: the
        Request-URI host/port, which must be an IP address: no RFC 3263 DNS yet)."""
        name = transport.upper()
        via = request.top_via
        if via.transport != name:
            via.transport = name
            request.headers.replace_first("Via", str(via))
        if dest is None:
            dest = (request.uri.host.strip("[]"), request.uri.effective_port)
        return self.transactions.send_request(request, dest, self.transports[name])

    async def send_request(self, request: Request, dest: Addr | None = None, transport: str = "UDP",
                           on_provisional: Callable[[Response], None] | None = None) -> Response:
        """Send ``request`` in a client transaction and return its final response.

        Raises :class:`TransactionTimeout` (Timer B/F) or :class:`TransportError`.
        """
        tx = self.start_transaction(request, dest, transport)
        tx.on_provisional = on_provisional
        return await tx.final

    async def send_request_with_auth(self, request: Request, *, username: str, password: str,
                                     dest: Addr | None = None, transport: str = "UDP") -> Response:
        """Like :meth:`send_request`; a 401/407 is answered once with Digest credentials
        (RFC 3261 §22.2, the strongest offered algorithm) and the final response of the retry
        returned."""
        response = await self.send_request(request, dest, transport)
        if response.status not in (401, 407):
            return response
        retry = authorize(request, response, username, password)
        return await self.send_request(retry, dest, transport)


def authorize(request: Request, challenge: Response, username: str, password: str) -> Request:
    """A copy of ``request`` with credentials for ``challenge`` (401/407), CSeq + 1 and a new
    branch (RFC 3261 §22.2, §8.1.3.5). Raises SipParseError when no challenge can be answered."""
    www = challenge.status == 401
    challenges = challenge.headers.get_all("WWW-Authenticate" if www else "Proxy-Authenticate")
    by_realm: dict[str, list[str]] = {}
    for value in challenges:
        try:
            by_realm.setdefault(parse_auth_header(value)[1].get("realm", ""), []).append(value)
        except SipParseError:
            continue
    if not by_realm:
        raise SipParseError("No Supported Challenge")
    headers = request.headers.copy()
    headers.remove("Authorization" if www else "Proxy-Authorization")
    cseq = request.cseq
    headers.set("CSeq", f"{cseq.seq + 1} {cseq.method}")
    via = request.top_via
    via.params["branch"] = new_branch()
    via.params.pop("received", None)
    headers.replace_first("Via", str(via))
    for values in by_realm.values():
        value = build_authorization(pick_challenge(values), method=request.method,
                                    uri=str(request.uri), username=username, password=password)
        headers.add("Authorization" if www else "Proxy-Authorization", value)
    return Request(headers, request.body, method=request.method, uri=request.uri)
