"""Overload (issue 21): beyond ``max_in_flight`` REGISTERs in their handler, the stack answers 503 with
Retry-After at once (RFC 3261 §21.5.4) instead of queueing; capacity that frees up is used again."""

from __future__ import annotations

import asyncio

from sip_fakes import FakeClock, FakeTransport

from voipbin.sip.message import Response, make_response
from voipbin.sip.parser import parse_message
from voipbin.sip.stack import BUSY_PROBES, SipStack, StackConfig
from voipbin.sip.transaction import ServerTransaction


def register(n: int) -> bytes:
    return (f"REGISTER sip:c1.registrar.voipbin.test SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bKov{n}\r\nMax-Forwards: 70\r\n"
            f"From: <sip:100@c1.registrar.voipbin.test>;tag=t{n}\r\nTo: <sip:100@c1.registrar.voipbin.test>\r\n"
            f"Call-ID: ov-{n}\r\nCSeq: 1 REGISTER\r\nContact: <sip:100@192.0.2.1:5062>\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


class Gate:
    """A REGISTER handler that holds every request until ``release``; ``entered`` counts arrivals."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.entered: asyncio.Queue[str] = asyncio.Queue()

    async def handle(self, tx: ServerTransaction) -> Response:
        await self.entered.put(tx.request.call_id)
        await self.open.wait()
        return make_response(tx.request, 200)


class Wire(FakeTransport):
    """A FakeTransport whose sends can be awaited, parsed: ``await wire.next()``."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[Response] = asyncio.Queue()

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        super().send(data, addr)
        message = parse_message(data)
        assert isinstance(message, Response)
        self.queue.put_nowait(message)

    async def next(self) -> Response:
        return await asyncio.wait_for(self.queue.get(), 5)


async def test_register_beyond_max_in_flight_gets_503_with_retry_after(clock: FakeClock) -> None:
    udp = Wire()
    stack = SipStack(StackConfig(max_in_flight={"REGISTER": 2}, overload_retry_after_s=7), clock=clock)
    gate = Gate()
    stack.route("REGISTER", gate.handle)
    for n in range(3):
        stack.receive(register(n), ("192.0.2.1", 5062), udp)
    assert {await gate.entered.get(), await gate.entered.get()} == {"ov-0", "ov-1"}

    refused = udp.queue.get_nowait()  # answered at once; the handler never saw it
    assert (refused.call_id, refused.status, refused.headers.get("Retry-After")) == ("ov-2", 503, "7")
    assert stack.stats["overloaded"] == 1

    stack.receive(register(2), ("192.0.2.1", 5062), udp)  # its retransmission: the same 503 again
    again = udp.queue.get_nowait()
    assert (again.call_id, again.status) == ("ov-2", 503)

    gate.open.set()
    assert {(r.call_id, r.status) for r in [await udp.next(), await udp.next()]} == {("ov-0", 200), ("ov-1", 200)}
    stack.receive(register(3), ("192.0.2.1", 5062), udp)  # capacity is back
    assert await gate.entered.get() == "ov-3"
    last = await udp.next()
    assert (last.call_id, last.status) == ("ov-3", 200)
    await stack.stop()


async def test_a_failing_handler_frees_its_slot(clock: FakeClock) -> None:
    udp = Wire()
    stack = SipStack(StackConfig(max_in_flight={"REGISTER": 1}), clock=clock)
    calls: asyncio.Queue[str] = asyncio.Queue()

    async def broken(tx: ServerTransaction) -> Response:
        await calls.put(tx.request.call_id)
        raise RuntimeError("store down")

    stack.route("REGISTER", broken)
    for n in range(3):
        stack.receive(register(n), ("192.0.2.1", 5062), udp)
        assert await calls.get() == f"ov-{n}"
        answer = await udp.next()
        assert (answer.call_id, answer.status) == (f"ov-{n}", 500)
    await stack.stop()


async def test_register_refused_while_the_loop_runs_late(clock: FakeClock) -> None:
    udp = Wire()
    stack = SipStack(StackConfig(overload_lag_s=0.1), clock=clock)
    gate = Gate()
    gate.open.set()
    stack.route("REGISTER", gate.handle)

    stack.note_loop_load(0.5, 0.2)  # one late probe (a GC pause): not overload
    stack.receive(register(0), ("192.0.2.1", 5062), udp)
    assert (await udp.next()).status == 200

    stack.note_loop_load(0.3, 0.2)  # late twice in a row: a backlog
    assert stack.overloaded
    stack.receive(register(1), ("192.0.2.1", 5062), udp)
    refused = udp.queue.get_nowait()
    assert (refused.call_id, refused.status, refused.headers.get("Retry-After")) == ("ov-1", 503, "5")

    stack.note_loop_load(0.0, 0.2)  # caught up
    stack.receive(register(2), ("192.0.2.1", 5062), udp)
    assert (await udp.next()).status == 200
    await stack.stop()


async def test_first_legs_refused_while_the_loop_is_saturated(clock: FakeClock) -> None:
    udp = Wire()
    stack = SipStack(StackConfig(overload_busy=0.95), clock=clock)
    gate = Gate()
    gate.open.set()
    stack.route("REGISTER", gate.handle)
    for _ in range(BUSY_PROBES - 1):
        stack.note_loop_load(0.0, 1.0)
    stack.note_loop_load(0.0, 0.5)  # one probe with idle time: not saturated
    stack.receive(register(0), ("192.0.2.1", 5062), udp)
    assert (await udp.next()).status == 200

    for _ in range(BUSY_PROBES):  # 500 ms without idle time
        stack.note_loop_load(0.0, 0.99)
    assert stack.saturated
    stack.receive(register(1), ("192.0.2.1", 5062), udp)
    refused = udp.queue.get_nowait()
    assert (refused.call_id, refused.status, refused.headers.get("Retry-After")) == ("ov-1", 503, "5")

    answer = register(2).replace(b"Content-Length", b'Authorization: Digest username="100"\r\nContent-Length')
    stack.receive(answer, ("192.0.2.1", 5062), udp)  # the answer to a challenge is still taken
    assert (await udp.next()).status == 200
    await stack.stop()
