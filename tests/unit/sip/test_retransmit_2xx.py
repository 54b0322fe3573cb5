"""The 2xx to an INVITE retransmitted until its ACK (RFC 3261 §13.3.1.4), driven by a fake clock
and a recording transport, without sockets: T1 doubling to T2 over UDP, nothing over TCP, the ACK
(only with the 2xx's CSeq) stopping it, 64*T1 without ACK timing out."""

from __future__ import annotations

from dataclasses import dataclass

from sip_fakes import FakeClock, FakeTransport

from voipbin.sip.message import Request, Response, make_response
from voipbin.sip.parser import parse_message
from voipbin.sip.retransmit_2xx import Retransmitted2xx

T1, T2 = 0.5, 4.0
INVITE = (b"INVITE sip:200@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKr1\r\n"
          b"From: <sip:100@voipbin.test>;tag=a\r\nTo: <sip:200@voipbin.test>\r\nCall-ID: c1\r\n"
          b"CSeq: 5 INVITE\r\nContact: <sip:100@127.0.0.1:5070>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")


@dataclass
class StubTx:
    """What :meth:`Retransmitted2xx.send` uses of a server transaction."""

    transport: FakeTransport
    dest: tuple[str, int] = ("127.0.0.1", 5070)

    def respond(self, response: Response) -> None:
        self.transport.send(response.to_bytes(), self.dest)


def _ok() -> Response:
    request = parse_message(INVITE)
    assert isinstance(request, Request)
    return make_response(request, 200, to_tag="b")


def _answer(clock: FakeClock) -> tuple[Retransmitted2xx, list[str]]:
    events: list[str] = []
    answer = Retransmitted2xx(clock, T1, T2, on_retransmit=lambda: events.append("retransmit"),
                              on_timeout=lambda: events.append("timeout"))
    return answer, events


def test_udp_retransmits_doubling_to_t2_until_the_ack(clock: FakeClock, udp: FakeTransport) -> None:
    sent_at: list[float] = []
    answer = Retransmitted2xx(clock, T1, T2, on_retransmit=lambda: sent_at.append(clock.now),
                              on_timeout=lambda: sent_at.append(-1.0))
    answer.send(StubTx(udp), _ok())  # type: ignore[arg-type]
    assert len(udp.sent) == 1 and answer.active
    clock.advance(12.0)
    # T1, 2*T1, 4*T1, then T2 apart: 0.5, 1.5, 3.5, 7.5, 11.5 s after the 2xx
    assert sent_at == [0.5, 1.5, 3.5, 7.5, 11.5] and len(udp.sent) == 6
    assert all(data == udp.sent[0][0] for data, _ in udp.sent)
    assert not answer.ack(4)  # another CSeq: not this 2xx's ACK
    assert answer.ack(5) and not answer.active
    clock.advance(60.0)
    assert len(sent_at) == 5 and len(udp.sent) == 6


def test_no_ack_within_64_t1_times_out_once(clock: FakeClock, udp: FakeTransport) -> None:
    answer, events = _answer(clock)
    answer.send(StubTx(udp), _ok())  # type: ignore[arg-type]
    clock.advance(64 * T1 - 0.01)
    assert "timeout" not in events
    clock.advance(0.01)
    assert events[-1] == "timeout" and events.count("timeout") == 1 and not answer.active
    count = len(udp.sent)
    clock.advance(60.0)
    assert len(udp.sent) == count and not answer.ack(5)


def test_reliable_transport_is_not_retransmitted_but_still_times_out(clock: FakeClock) -> None:
    tcp = FakeTransport("TCP", reliable=True)
    answer, events = _answer(clock)
    answer.send(StubTx(tcp), _ok())  # type: ignore[arg-type]
    assert clock.pending() == [64 * T1]
    clock.advance(64 * T1)
    assert events == ["timeout"] and len(tcp.sent) == 1


def test_stop_cancels_both_timers(clock: FakeClock, udp: FakeTransport) -> None:
    answer, events = _answer(clock)
    answer.send(StubTx(udp), _ok())  # type: ignore[arg-type]
    answer.stop()
    assert not answer.active and clock.pending() == []
    clock.advance(60.0)
    assert events == [] and len(udp.sent) == 1
