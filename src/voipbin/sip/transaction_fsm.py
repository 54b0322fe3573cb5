"""Transaction state machines (RFC 3261 §17) as plain data, free of I/O.

Each FSM holds its ``state`` and returns a list of :data:`Action` for every input: the request or
response that arrived, a TU decision, a timer that fired, a transport error. The I/O layer
(:mod:`voipbin.sip.transaction`) performs the actions: send bytes, arm/cancel timers, hand messages to
the TU. Unit tests drive these classes directly with a fake clock and no sockets.

Timer names and durations follow RFC 3261 Table 4 (§A): A, B, D (INVITE client, §17.1.1.2), E, F, K
(non-INVITE client, §17.1.2.2), G, H, I (INVITE server, §17.2.1), J (non-INVITE server, §17.2.2).
For a reliable transport the retransmit timers (A, E, G) are never armed and the wait timers
D, I, J, K are zero, so the machine reaches ``TERMINATED`` at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voipbin.sip.message import Headers, Request, Response, make_response

T1 = 0.5  # s, RTT estimate
T2 = 4.0  # s, maximum retransmit interval for non-INVITE requests and INVITE responses
T4 = 5.0  # s, maximum duration a message remains in the network
TIMER_D_UNRELIABLE = 32.0  # s, >= 32 s for unreliable transports (§17.1.1.2)


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class EncodedMessage:
    """A message kept only as its wire bytes: what a completed non-INVITE server transaction retransmits
    for Timer J (32 s over UDP). Bytes are not tracked by the garbage collector, parsed messages are:
    at 2,000 REGISTER/s some 64,000 completed transactions held parsed requests and responses, and
    every full collection walked them (tens to hundreds of ms of pause, issue 21)."""

    __slots__ = ("data", "status")

    def __init__(self, data: bytes, status: int) -> None:
        self.data = data
        self.status = status

    def to_bytes(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class Send:
    """Transmit ``message`` to the transaction's peer."""

    message: Request | Response | EncodedMessage


@dataclass(frozen=True)
class StartTimer:
    """Arm timer ``name`` to fire after ``delay`` seconds (re-arming replaces the old one)."""

    name: str
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    name: str


@dataclass(frozen=True)
class PassToTU:
    """Hand a response (client side) or a request/ACK (server side) to the transaction user."""

    message: Request | Response


@dataclass(frozen=True)
class Timeout:
    """Tell the TU the transaction timed out (Timer B, F or H)."""

    timer: str


@dataclass(frozen=True)
class TransportFailed:
    """Tell the TU the transport reported an error (§17.1.4, §17.2.4)."""


@dataclass(frozen=True)
class Terminate:
    """The machine reached ``TERMINATED``; the I/O layer forgets the transaction."""


Action = Send | StartTimer | CancelTimer | PassToTU | Timeout | TransportFailed | Terminate


class _Fsm:
    state: State
    reliable: bool
    t1: float
    t2: float
    t4: float

    def __init__(self, reliable: bool, t1: float = T1, t2: float = T2, t4: float = T4) -> None:
        self.reliable = reliable
        self.t1, self.t2, self.t4 = t1, t2, t4

    def on_transport_error(self) -> list[Action]:
        if self.state is State.TERMINATED:
            return []
        self.state = State.TERMINATED
        return [TransportFailed(), Terminate()]

    def _finish(self, wait_timer: str, unreliable_delay: float, actions: list[Action]) -> list[Action]:
        if self.reliable:
            self.state = State.TERMINATED
            actions.append(Terminate())
        else:
            actions.append(StartTimer(wait_timer, unreliable_delay))
        return actions


class InviteClientFsm(_Fsm):
    """INVITE client transaction, RFC 3261 §17.1.1 (Figure 5)."""

    def __init__(self, request: Request, reliable: bool, **timers: float) -> None:
        super().__init__(reliable, **timers)
        self.request = request
        self.state = State.CALLING
        self.timer_a = self.t1
        self.ack: Request | None = None

    def start(self) -> list[Action]:
        actions: list[Action] = [Send(self.request)]
        if not self.reliable:
            actions.append(StartTimer("A", self.timer_a))
        actions.append(StartTimer("B", 64 * self.t1))
        return actions

    def on_timer(self, name: str) -> list[Action]:
        if self.state is State.CALLING and name == "A":
            self.timer_a *= 2
            return [Send(self.request), StartTimer("A", self.timer_a)]
        if self.state is State.CALLING and name == "B":
            self.state = State.TERMINATED
            return [CancelTimer("A"), Timeout("B"), Terminate()]
        if self.state is State.COMPLETED and name == "D":
            self.state = State.TERMINATED
            return [Terminate()]
        return []

    def on_response(self, response: Response) -> list[Action]:
        status = response.status
        if self.state in (State.CALLING, State.PROCEEDING):
            stop: list[Action] = [CancelTimer("A"), CancelTimer("B")]
            if status < 200:
                self.state = State.PROCEEDING
                return [*stop, PassToTU(response)]
            if status < 300:  # the TU (dialog) sends the ACK for a 2xx (§13.2.2.4)
                self.state = State.TERMINATED
                return [*stop, PassToTU(response), Terminate()]
            self.state = State.COMPLETED
            self.ack = build_ack(self.request, response)
            return self._finish(
                "D", TIMER_D_UNRELIABLE, [*stop, Send(self.ack), PassToTU(response)]
            )
        if self.state is State.COMPLETED and status >= 300 and self.ack is not None:
            return [Send(self.ack)]
        return []


class NonInviteClientFsm(_Fsm):
    """Non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6)."""

    def __init__(self, request: Request, reliable: bool, **timers: float) -> None:
        super().__init__(reliable, **timers)
        self.request = request
        self.state = State.TRYING
        self.timer_e = self.t1

    def start(self) -> list[Action]:
        actions: list[Action] = [Send(self.request)]
        if not self.reliable:
            actions.append(StartTimer("E", self.timer_e))
        actions.append(StartTimer("F", 64 * self.t1))
        return actions

    def on_timer(self, name: str) -> list[Action]:
        if self.state in (State.TRYING, State.PROCEEDING):
            if name == "E":
                if self.state is State.TRYING:
                    self.timer_e = min(2 * self.timer_e, self.t2)
                else:
                    self.timer_e = self.t2
                return [Send(self.request), StartTimer("E", self.timer_e)]
            if name == "F":
                self.state = State.TERMINATED
                return [CancelTimer("E"), Timeout("F"), Terminate()]
        if self.state is State.COMPLETED and name == "K":
            self.state = State.TERMINATED
            return [Terminate()]
        return []

    def on_response(self, response: Response) -> list[Action]:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return []  # Completed absorbs retransmitted responses
        if response.status < 200:
            self.state = State.PROCEEDING
            return [PassToTU(response)]
        self.state = State.COMPLETED
        return self._finish(
            "K", self.t4, [CancelTimer("E"), CancelTimer("F"), PassToTU(response)]
        )


class InviteServerFsm(_Fsm):
    """INVITE server transaction, RFC 3261 §17.2.1 (Figure 7).

    ``start()`` sends 100 Trying at once (§17.2.1: allowed instead of waiting 200 ms). A 2xx from the
    TU terminates the transaction; the TU retransmits the 2xx until the ACK (§13.3.1.4).
    """

    def __init__(self, request: Request, reliable: bool, **timers: float) -> None:
        super().__init__(reliable, **timers)
        self.request = request
        self.state = State.PROCEEDING
        self.last_response: Response | None = None
        self.timer_g = self.t1

    def start(self) -> list[Action]:
        self.last_response = make_response(self.request, 100)
        return [Send(self.last_response), PassToTU(self.request)]

    def on_request(self, request: Request) -> list[Action]:
        if request.method == "ACK":
            if self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                actions: list[Action] = [CancelTimer("G"), CancelTimer("H")]
                return self._finish("I", self.t4, actions)
            return []
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            return [Send(self.last_response)]
        return []

    def on_tu_response(self, response: Response) -> list[Action]:
        if self.state is not State.PROCEEDING:
            return []
        self.last_response = response
        if response.status < 200:
            return [Send(response)]
        if response.status < 300:
            self.state = State.TERMINATED
            return [Send(response), Terminate()]
        self.state = State.COMPLETED
        actions: list[Action] = [Send(response)]
        if not self.reliable:
            actions.append(StartTimer("G", self.timer_g))
        actions.append(StartTimer("H", 64 * self.t1))
        return actions

    def on_timer(self, name: str) -> list[Action]:
        if self.state is State.COMPLETED and name == "G" and self.last_response is not None:
            self.timer_g = min(2 * self.timer_g, self.t2)
            return [Send(self.last_response), StartTimer("G", self.timer_g)]
        if self.state is State.COMPLETED and name == "H":
            self.state = State.TERMINATED
            return [CancelTimer("G"), Timeout("H"), Terminate()]
        if self.state is State.CONFIRMED and name == "I":
            self.state = State.TERMINATED
            return [Terminate()]
        return []


class NonInviteServerFsm(_Fsm):
    """Non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8)."""

    def __init__(self, request: Request, reliable: bool, **timers: float) -> None:
        super().__init__(reliable, **timers)
        self.request: Request | None = request  # None once answered (see EncodedMessage)
        self.state = State.TRYING
        self.last_response: Response | EncodedMessage | None = None

    def start(self) -> list[Action]:
        assert self.request is not None
        return [PassToTU(self.request)]

    def on_request(self, request: Request) -> list[Action]:
        if self.state in (State.PROCEEDING, State.COMPLETED) and self.last_response is not None:
            return [Send(self.last_response)]
        return []  # Trying: retransmissions are absorbed

    def on_tu_response(self, response: Response) -> list[Action]:
        if self.state not in (State.TRYING, State.PROCEEDING):
            return []
        if response.status < 200:
            self.last_response = response
            self.state = State.PROCEEDING
            return [Send(response)]
        self.last_response = EncodedMessage(response.to_bytes(), response.status)
        self.request = None  # the TU has answered: only the bytes stay for retransmissions
        self.state = State.COMPLETED
        return self._finish("J", 64 * self.t1, [Send(self.last_response)])

    def on_timer(self, name: str) -> list[Action]:
        if self.state is State.COMPLETED and name == "J":
            self.state = State.TERMINATED
            return [Terminate()]
        return []


def build_ack(request: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response (RFC 3261 §17.1.1.3): same Request-URI, Call-ID, From
    and CSeq number as the INVITE, To from the response, the INVITE's top Via and its Route set."""
    headers = Headers()
    top_via = request.headers.get("Via")
    if top_via is not None:
        headers.add("Via", top_via)
    for name in ("Route",):
        for value in request.headers.get_all(name):
            headers.add(name, value)
    headers.add("Max-Forwards", "70")
    headers.add("From", request.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or request.headers.get("To") or "")
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{request.cseq.seq} ACK")
    return Request(headers, method="ACK", uri=request.uri)
