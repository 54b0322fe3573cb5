"""Transaction FSMs (RFC 3261 §17) driven without sockets: pure FSMs, then the layer on a fake clock."""

from __future__ import annotations

import pytest
from sip_fakes import FakeClock, FakeTransport

from voipbin.sip.errors import TransactionTimeout
from voipbin.sip.message import Request, Response, make_response
from voipbin.sip.parser import parse_message
from voipbin.sip.transaction import TransactionLayer
from voipbin.sip.transaction_fsm import (
    CancelTimer,
    InviteClientFsm,
    InviteServerFsm,
    NonInviteClientFsm,
    NonInviteServerFsm,
    PassToTU,
    Send,
    StartTimer,
    State,
    Terminate,
    Timeout,
)


def request(method: str = "INVITE", branch: str = "z9hG4bKfsm1") -> Request:
    msg = parse_message(
        f"{method} sip:bob@192.0.2.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={branch}\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:alice@a>;tag=1\r\nTo: <sip:bob@b>\r\nCall-ID: c1\r\n"
        f"CSeq: 1 {method}\r\nContact: <sip:alice@192.0.2.1>\r\nContent-Length: 0\r\n\r\n".encode())
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int) -> Response:
    return make_response(req, status, to_tag="t2")


def kinds(actions: list) -> list[str]:
    return [type(a).__name__ + (f":{a.name}" if hasattr(a, "name") else "") for a in actions]


# -- pure FSMs ---------------------------------------------------------------------------------
def test_invite_client_timer_a_doubles_until_timer_b() -> None:
    fsm = InviteClientFsm(request(), reliable=False)
    assert kinds(fsm.start()) == ["Send", "StartTimer:A", "StartTimer:B"]
    delays = []
    for _ in range(6):
        actions = fsm.on_timer("A")
        assert isinstance(actions[0], Send)
        delays.append(actions[1].delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]  # no T2 cap for INVITE (§17.1.1.2)
    actions = fsm.on_timer("B")
    assert Timeout("B") in actions and Terminate() in actions
    assert fsm.state is State.TERMINATED


def test_invite_client_non_2xx_acks_and_waits_timer_d() -> None:
    req = request()
    fsm = InviteClientFsm(req, reliable=False)
    fsm.start()
    assert kinds(fsm.on_response(response(req, 180))) == ["CancelTimer:A", "CancelTimer:B", "PassToTU"]
    assert fsm.state is State.PROCEEDING
    actions = fsm.on_response(response(req, 486))
    ack = next(a.message for a in actions if isinstance(a, Send))
    assert ack.method == "ACK" and ack.cseq.method == "ACK" and ack.cseq.seq == 1
    assert ack.to.tag == "t2" and ack.top_via.branch == "z9hG4bKfsm1"  # §17.1.1.3
    assert StartTimer("D", 32.0) in actions and fsm.state is State.COMPLETED
    again = fsm.on_response(response(req, 486))  # retransmitted final: ACK again, TU not told
    assert kinds(again) == ["Send"]
    assert fsm.on_timer("D") == [Terminate()]


def test_invite_client_2xx_terminates_and_goes_to_tu() -> None:
    req = request()
    fsm = InviteClientFsm(req, reliable=True)
    assert kinds(fsm.start()) == ["Send", "StartTimer:B"]  # no Timer A on TCP
    ok = response(req, 200)
    assert fsm.on_response(ok)[-2:] == [PassToTU(ok), Terminate()]


def test_invite_client_reliable_non_2xx_terminates_at_once() -> None:
    req = request()
    fsm = InviteClientFsm(req, reliable=True)
    fsm.start()
    actions = fsm.on_response(response(req, 404))
    assert actions[-1] == Terminate() and fsm.state is State.TERMINATED


def test_non_invite_client_timer_e_caps_at_t2_then_f() -> None:
    fsm = NonInviteClientFsm(request("REGISTER"), reliable=False)
    fsm.start()
    delays = [fsm.on_timer("E")[1].delay for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert Timeout("F") in fsm.on_timer("F")


def test_non_invite_client_proceeding_retransmits_every_t2() -> None:
    req = request("REGISTER")
    fsm = NonInviteClientFsm(req, reliable=False)
    fsm.start()
    fsm.on_response(response(req, 100))
    assert fsm.state is State.PROCEEDING
    assert fsm.on_timer("E")[1] == StartTimer("E", 4.0)
    final = response(req, 200)
    actions = fsm.on_response(final)
    assert PassToTU(final) in actions and StartTimer("K", 5.0) in actions
    assert fsm.on_response(final) == []  # absorbed in Completed
    assert fsm.on_timer("K") == [Terminate()]


def test_invite_server_sends_trying_retransmits_final_with_g_until_ack() -> None:
    req = request()
    fsm = InviteServerFsm(req, reliable=False)
    start = fsm.start()
    assert isinstance(start[0], Send) and start[0].message.status == 100
    assert start[1] == PassToTU(req)
    assert fsm.on_request(req)[0].message.status == 100  # retransmitted INVITE
    busy = response(req, 486)
    assert kinds(fsm.on_tu_response(busy)) == ["Send", "StartTimer:G", "StartTimer:H"]
    delays = [fsm.on_timer("G")[1].delay for _ in range(5)]
    assert delays == [1.0, 2.0, 4.0, 4.0, 4.0]  # min(2G, T2)
    assert fsm.on_request(req) == [Send(busy)]
    ack = request("ACK")
    actions = fsm.on_request(ack)
    assert CancelTimer("G") in actions and StartTimer("I", 5.0) in actions
    assert fsm.state is State.CONFIRMED
    assert fsm.on_request(ack) == []
    assert fsm.on_timer("I") == [Terminate()]


def test_invite_server_timer_h_without_ack() -> None:
    req = request()
    fsm = InviteServerFsm(req, reliable=False)
    fsm.start()
    fsm.on_tu_response(response(req, 500))
    assert Timeout("H") in fsm.on_timer("H") and fsm.state is State.TERMINATED


def test_invite_server_2xx_terminates() -> None:
    req = request()
    fsm = InviteServerFsm(req, reliable=False)
    fsm.start()
    assert fsm.on_tu_response(response(req, 200))[-1] == Terminate()


def test_non_invite_server_timer_j() -> None:
    req = request("OPTIONS")
    fsm = NonInviteServerFsm(req, reliable=False)
    assert fsm.start() == [PassToTU(req)]
    assert fsm.on_request(req) == []  # Trying absorbs
    ok = response(req, 200)
    sent, timer = fsm.on_tu_response(ok)
    assert isinstance(sent, Send) and sent.message.to_bytes() == ok.to_bytes() and timer == StartTimer("J", 32.0)
    assert fsm.request is None  # answered: only the response's bytes stay (no parsed message for the GC to walk)
    again = fsm.on_request(req)
    assert len(again) == 1 and again[0].message.to_bytes() == ok.to_bytes()  # type: ignore[attr-defined]
    assert fsm.on_timer("J") == [Terminate()]
    reliable = NonInviteServerFsm(req, reliable=True)
    reliable.start()
    sent, end = reliable.on_tu_response(ok)
    assert sent.message.to_bytes() == ok.to_bytes() and end == Terminate()  # type: ignore[attr-defined]


# -- the layer on a fake clock -----------------------------------------------------------------
async def test_layer_retransmits_register_on_udp_then_times_out(clock: FakeClock,
                                                               udp: FakeTransport) -> None:
    layer = TransactionLayer(lambda tx: None, clock=clock)
    tx = layer.send_request(request("REGISTER"), ("192.0.2.2", 5060), udp)
    clock.advance(31.9)
    sent_times = len(udp.sent)
    assert sent_times == 1 + 6 + 4  # t=0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5
    assert not tx.final.done()
    clock.advance(0.1)  # Timer F = 64*T1 = 32 s
    assert isinstance(tx.final.exception(), TransactionTimeout)
    assert layer.client == {}


async def test_layer_matches_response_and_absorbs_retransmissions(clock: FakeClock,
                                                                 udp: FakeTransport) -> None:
    seen = []
    layer = TransactionLayer(seen.append, clock=clock)
    req = request("OPTIONS")
    layer.receive_request(req, ("192.0.2.1", 5060), udp)
    assert len(seen) == 1
    layer.receive_request(request("OPTIONS"), ("192.0.2.1", 5060), udp)  # retransmission
    assert len(seen) == 1 and layer.stats["retransmissions_absorbed"] == 1
    seen[0].respond(response(req, 200))
    layer.receive_request(request("OPTIONS"), ("192.0.2.1", 5060), udp)
    assert [parse_message(d).status for d, _ in udp.sent] == [200, 200]  # type: ignore[attr-defined]
    clock.advance(32)
    assert layer.server == {}


async def test_layer_completed_non_invite_waits_timer_j_without_a_timer_each(clock: FakeClock,
                                                                            udp: FakeTransport) -> None:
    """§17.2.2 Completed: a retransmission gets the same final response, not the TU, until Timer J
    (64*T1) runs out; then the same branch starts a new transaction. However many transactions wait
    out Timer J, one sweep timer is armed (not one timer and transaction object each)."""
    seen = []
    layer = TransactionLayer(seen.append, clock=clock)
    for n in range(50):
        layer.receive_request(request("REGISTER", branch=f"z9hG4bKj{n}"), ("192.0.2.1", 5060), udp)
        seen[-1].respond(response(seen[-1].request, 200))
    assert len(seen) == 50 and layer.server == {} and len(layer.completed) == 50
    assert len(clock.pending()) == 1
    clock.advance(31.9)
    layer.receive_request(request("REGISTER", branch="z9hG4bKj7"), ("192.0.2.1", 5060), udp)
    assert len(seen) == 50 and layer.stats["retransmissions_absorbed"] == 1
    assert udp.sent[-1] == udp.sent[7]  # the same bytes to the same address
    clock.advance(0.1 + 0.1)  # Timer J = 32 s, forgotten by the next sweep (J_SWEEP_S)
    assert layer.completed == {} and clock.pending() == []
    layer.receive_request(request("REGISTER", branch="z9hG4bKj7"), ("192.0.2.1", 5060), udp)
    assert len(seen) == 51  # a new transaction


async def test_layer_completed_non_invite_leaves_nothing_for_the_gc_to_walk(clock: FakeClock,
                                                                            udp: FakeTransport) -> None:
    """What waits out Timer J is untracked by the garbage collector once collections have seen it (a tuple
    is untracked after the tuples in it; at 2,000 REGISTER/s some 128,000 entries: as objects, each full
    collection walked them, issue 21)."""
    import gc

    seen = []
    layer = TransactionLayer(seen.append, clock=clock)
    layer.receive_request(request("REGISTER"), ("192.0.2.1", 5060), udp)
    seen[0].respond(response(seen[0].request, 200))
    seen.clear()
    gc.collect()
    gc.collect()
    (entry,) = layer.completed.values()
    assert not gc.is_tracked(entry) and not gc.is_tracked(layer._completed_order[0])


async def test_layer_completed_non_invite_over_tcp_is_forgotten_at_once(clock: FakeClock) -> None:
    tcp = FakeTransport("TCP", reliable=True)
    seen = []
    layer = TransactionLayer(seen.append, clock=clock)
    layer.receive_request(request("REGISTER"), ("192.0.2.1", 5060), tcp)
    seen[0].respond(response(seen[0].request, 200))
    assert layer.server == {} and layer.completed == {} and clock.pending() == []


async def test_layer_invite_client_gets_final_and_acks(clock: FakeClock, udp: FakeTransport) -> None:
    layer = TransactionLayer(lambda tx: None, clock=clock)
    req = request()
    provisional = []
    tx = layer.send_request(req, ("192.0.2.2", 5060), udp)
    tx.on_provisional = provisional.append
    layer.receive_response(response(req, 180), ("192.0.2.2", 5060), udp)
    layer.receive_response(response(req, 603), ("192.0.2.2", 5060), udp)
    assert [p.status for p in provisional] == [180]
    assert tx.final.result().status == 603
    assert parse_message(udp.sent[-1][0]).method == "ACK"  # type: ignore[attr-defined]
    clock.advance(32)
    assert layer.client == {}


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS"])
async def test_layer_transport_error_fails_client(clock: FakeClock, udp: FakeTransport,
                                                 method: str) -> None:
    from voipbin.sip.errors import TransportError
    layer = TransactionLayer(lambda tx: None, clock=clock)
    tx = layer.send_request(request(method), ("192.0.2.9", 5060), udp)
    layer.transport_error(("192.0.2.9", 5060))
    assert isinstance(tx.final.exception(), TransportError)
