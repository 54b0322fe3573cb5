"""Two UserAgents over loopback: one places calls (UAC), the other answers them (UAS).

Covers answer, reject, CANCEL while ringing, BYE both ways, re-INVITE, INFO, in-dialog OPTIONS,
2xx retransmission until the ACK (first ACK dropped), the UAS giving up without an ACK, delayed
offer, and that the session registry is empty after many calls. The ``pair`` fixture is in
``conftest.py``; the recording handler, the UAS application and ``dial`` in ``ua_peers.py``.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from ua_peers import ANSWER, OFFER, T1, WAIT, dial, until

from tests_support.legs import LegRecorder
from voipbin.sip.errors import SipError
from voipbin.sip.invite_server import IncomingInvite
from voipbin.sip.message import Response
from voipbin.sip.ua import UserAgent


def assert_empty(*uas: UserAgent) -> None:
    for ua in uas:
        assert ua.live_count == 0, (ua.sessions, ua.dialogs, ua.incoming)


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
async def test_answer_then_caller_hangs_up(pair, transport: str) -> None:
    caller, callee_ua, callee = pair
    rec = LegRecorder()
    session = await dial(caller, callee_ua, rec, transport=transport)
    assert session.state in ("calling", "early")
    await until(rec.answered)
    assert rec.progress == [(180, None)]
    assert rec.answered_sdp == [ANSWER]
    assert session.state == "confirmed" and session.remote_sdp == ANSWER and session.local_sdp == OFFER
    uas_session, uas_rec = callee.sessions[0]
    await until(uas_rec.answered)  # the ACK reached the UAS
    assert uas_rec.answered_sdp == [OFFER]
    assert uas_session.dialog is not None and session.dialog is not None
    assert uas_session.dialog.remote_tag == session.dialog.local_tag
    incoming = callee.incoming[0]
    assert incoming.request.headers.get("From", "").startswith('"Alice"')
    assert incoming.request.top_via.transport == transport

    await session.bye()
    assert rec.ended_with == [("local_bye", 200)]
    await until(uas_rec.ended)
    assert uas_rec.ended_with == [("remote_bye", None)]
    assert session.state == uas_session.state == "terminated"
    assert_empty(caller, callee_ua)


async def test_callee_hangs_up(pair) -> None:
    caller, callee_ua, callee = pair
    rec = LegRecorder()
    session = await dial(caller, callee_ua, rec)
    await until(rec.answered)
    await until(callee.session_ready)
    uas_session, uas_rec = callee.sessions[0]
    await until(uas_rec.answered)
    await uas_session.bye()
    assert uas_rec.ended_with == [("local_bye", 200)]
    await until(rec.ended)
    assert rec.ended_with == [("remote_bye", None)]
    assert session.end_cause == "remote_bye"
    assert_empty(caller, callee_ua)


async def test_reject_486(pair) -> None:
    caller, callee_ua, callee = pair
    callee.mode = "reject"
    rec = LegRecorder()
    await dial(caller, callee_ua, rec)
    await until(rec.ended)
    assert rec.ended_with == [("rejected", 486)]
    assert not rec.answered.is_set()
    assert callee.incoming[0].state == "rejected"
    assert_empty(caller, callee_ua)


async def test_cancel_while_ringing_gets_487(pair) -> None:
    caller, callee_ua, callee = pair
    callee.mode = "ring"
    rec = LegRecorder()
    session = await dial(caller, callee_ua, rec)
    await until(rec.ringing)
    assert session.state == "early"
    await session.cancel()
    await until(rec.ended)
    assert rec.ended_with == [("rejected", 487)]
    incoming = callee.incoming[0]
    await until(incoming.cancelled)
    assert incoming.state == "cancelled"
    with pytest.raises(SipError, match="already cancelled"):
        incoming.answer(ANSWER)
    assert_empty(caller, callee_ua)


async def test_cancel_and_bye_after_end_are_noops(pair) -> None:
    caller, callee_ua, callee = pair
    callee.mode = "reject"
    rec = LegRecorder()
    session = await dial(caller, callee_ua, rec)
    await until(rec.ended)
    await session.cancel()
    await session.bye()
    assert rec.ended_with == [("rejected", 486)]


async def test_info_both_ways(pair) -> None:
    caller, callee_ua, callee = pair
    rec = LegRecorder()
    session = await dial(caller, callee_ua, rec)
    await until(rec.answered)
    uas_session, uas_rec = callee.sessions[0]
    body = b"Signal=5\r\nDuration=160\r\n"
    assert await session.info("application/dtmf-relay", body) == 200
    assert await uas_rec.next_info(WAIT) == ("application/dtmf-relay", body)
    assert await uas_session.info("application/dtmf", b"7") == 200
    assert await rec.next_info(WAIT) == ("application/dtmf", b"7")
    await session.bye()
    await until(uas_rec.ended)
    assert_empty(caller, callee_ua)


async def test_reinvite_from_remote_answered_and_retransmitted_until_ack(pair) -> None:
    """The callee puts the call on hold with a re-INVITE; we answer 200 with the handler's SDP and
    retransmit it (§13.3.1.4) until the ACK, which the test sends late on purpose."""
    caller, callee_ua, callee = pair
    hold_answer = ANSWER.replace(b"RTP/AVP 0", b"RTP/AVP 0\r\na=recvonly")
    rec = LegRecorder(reinvite_answer=hold_answer)
    session = await dial(caller, callee_ua, rec)
    await until(rec.answered)
    uas_session, uas_rec = callee.sessions[0]
    await until(uas_rec.answered)
    assert uas_session.dialog is not None

    retransmitted: asyncio.Queue[Response] = asyncio.Queue()
    original = callee_ua.stack.on_stray_response
    assert original is not None

    def spy(response: Response, addr, transport) -> None:
        retransmitted.put_nowait(response)
        original(response, addr, transport)

    callee_ua.stack.on_stray_response = spy
    host, port = callee_ua.stack.advertised
    hold_offer = OFFER.replace(b"RTP/AVP 0", b"RTP/AVP 0\r\na=sendonly")
    reinvite = uas_session.dialog.create_request("INVITE", via_host=host, via_port=port,
                                                 contact=uas_session.contact, body=hold_offer,
                                                 content_type="application/sdp")
    response = await callee_ua.stack.send_request(reinvite, uas_session.next_hop())
    assert response.status == 200 and response.body == hold_answer
    assert rec.reinvites == [hold_offer]
    assert session.remote_sdp == hold_offer and session.local_sdp == hold_answer
    again = await asyncio.wait_for(retransmitted.get(), WAIT)  # no ACK yet: the 200 comes again
    assert again.status == 200 and again.cseq == response.cseq
    assert caller.stats["2xx_retransmitted"] >= 1
    ack = uas_session.dialog.create_request("ACK", via_host=host, via_port=port,
                                            cseq=reinvite.cseq.seq)
    callee_ua.stack.transports["UDP"].send(ack.to_bytes(), uas_session.next_hop())
    info = await session.info("application/dtmf", b"1")  # a round trip: the ACK has arrived by now
    assert info == 200
    count = caller.stats["2xx_retransmitted"]
    assert not session.awaiting_ack  # no 2xx pending, no retransmission timer
    assert caller.stats["2xx_retransmitted"] == count
    assert session.state == "confirmed"
    await session.bye()
    await until(uas_rec.ended)
    assert_empty(caller, callee_ua)


async def test_reinvite_without_sdp_reuses_last_local_sdp(pair) -> None:
    caller, callee_ua, callee = pair
    rec = LegRecorder(reinvite_answer=None)
    session = await dial(caller, callee_ua, rec)
    await until(rec.answered)
    uas_session, uas_rec = callee.sessions[0]
    await until(uas_rec.answered)
    assert uas_session.dialog is not None
    host, port = callee_ua.stack.advertised
    reinvite = uas_session.dialog.create_request("INVITE", via_host=host, via_port=port,
                                                 contact=uas_session.contact)
    response = await callee_ua.stack.send_request(reinvite, uas_session.next_hop())
    assert response.status == 200 and response.body == OFFER  # our last SDP, as an offer
    assert rec.reinvites == [None]
    ack = uas_session.dialog.create_request("ACK", via_host=host, via_port=port,
                                            cseq=reinvite.cseq.seq, body=ANSWER,
                                            content_type="application/sdp")
    callee_ua.stack.transports["UDP"].send(ack.to_bytes(), uas_session.next_hop())
    assert await session.info("application/dtmf", b"2") == 200
    assert session.remote_sdp == ANSWER
    await session.bye()
    assert_empty(caller, callee_ua)


def drop_outgoing(ua: UserAgent, method: str, count: int) -> list[bytes]:
    """Make ``ua``'s UDP transport drop its next ``count`` requests of ``method``; returns the list
    the dropped datagrams are appended to."""
    transport = ua.stack.transports["UDP"]
    send = transport.send
    dropped: list[bytes] = []

    def filtered(data: bytes, addr) -> None:
        if len(dropped) < count and data.startswith(method.encode() + b" "):
            dropped.append(data)
            return
        send(data, addr)

    transport.send = filtered  # type: ignore[method-assign]
    return dropped


async def test_lost_ack_2xx_retransmitted_and_reacked(pair) -> None:
    caller, callee_ua, callee = pair
    dropped = drop_outgoing(caller, "ACK", 1)
    rec = LegRecorder()
    await dial(caller, callee_ua, rec)
    await until(rec.answered)
    await until(callee.session_ready)
    uas_session, uas_rec = callee.sessions[0]
    await until(uas_rec.answered)  # only the re-sent ACK can have done this
    assert len(dropped) == 1
    assert callee_ua.stats["2xx_retransmitted"] >= 1
    assert caller.stats["acks_resent"] >= 1
    assert rec.answered_sdp == [ANSWER]  # once, despite the retransmitted 2xx
    await uas_session.bye()
    await until(rec.ended)
    assert_empty(caller, callee_ua)


async def test_no_ack_at_all_uas_gives_up_with_bye(pair) -> None:
    caller, callee_ua, callee = pair
    drop_outgoing(caller, "ACK", 1000)
    rec = LegRecorder()
    await dial(caller, callee_ua, rec)
    await until(rec.answered)
    await until(callee.session_ready)
    _, uas_rec = callee.sessions[0]
    await until(uas_rec.ended, 64 * T1 + WAIT)
    assert uas_rec.ended_with == [("timeout", None)]
    assert not uas_rec.answered.is_set()
    await until(rec.ended)
    assert rec.ended_with == [("remote_bye", None)]
    assert_empty(caller, callee_ua)


async def test_delayed_offer_answer_in_ack(pair) -> None:
    caller, callee_ua, callee = pair
    callee.answer_sdp = OFFER.replace(b"40000", b"40004")  # the callee's offer, in its 200
    rec = LegRecorder(offer_answer=ANSWER)
    session = await dial(caller, callee_ua, rec, sdp=None)
    await until(rec.answered)
    assert callee.incoming[0].remote_sdp is None
    assert session.local_sdp == ANSWER
    _, uas_rec = callee.sessions[0]
    await until(uas_rec.answered)
    assert uas_rec.answered_sdp == [ANSWER]  # taken from the ACK
    await session.bye()
    assert_empty(caller, callee_ua)


async def test_no_incoming_handler_gets_480(pair) -> None:
    caller, callee_ua, _ = pair
    callee_ua.on_incoming_invite = None
    rec = LegRecorder()
    await dial(caller, callee_ua, rec)
    await until(rec.ended)
    assert rec.ended_with == [("rejected", 480)]
    assert_empty(caller, callee_ua)


async def test_in_dialog_options_and_unknown_dialog_481(pair) -> None:
    caller, callee_ua, callee = pair
    rec = LegRecorder()
    session = await dial(caller, callee_ua, rec)
    await until(rec.answered)
    assert session.dialog is not None
    host, port = caller.stack.advertised
    options = session.dialog.create_request("OPTIONS", via_host=host, via_port=port)
    response = await caller.stack.send_request(options, session.next_hop())
    assert response.status == 200 and "INFO" in response.headers.get_all("Allow")
    for method in ("OPTIONS", "BYE", "INFO", "INVITE"):
        stray = session.dialog.create_request(method, via_host=host, via_port=port)
        stray.headers.set("To", stray.headers.get("To", "").replace("tag=", "tag=x"))
        response = await caller.stack.send_request(stray, session.next_hop())
        assert response.status == 481, method
    out_of_dialog = caller.stack.create_request("OPTIONS", f"sip:127.0.0.1:{callee_ua.stack.port}",
                                                from_="<sip:a@b>", to="<sip:c@d>")
    assert (await caller.stack.send_request(out_of_dialog)).status == 200
    await session.bye()
    assert_empty(caller, callee_ua)


async def test_unreachable_over_tcp_ends_with_transport_error(pair) -> None:
    caller, _, _ = pair
    rec = LegRecorder()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connection refused
        session = await caller.invite(request_uri=f"sip:x@127.0.0.1:{port}", to_uri="sip:x@b",
                                      from_uri="sip:a@b", sdp=OFFER, transport="TCP", handler=rec)
        await until(rec.ended)
    assert rec.ended_with == [("transport_error", None)]
    assert session.state == "terminated"
    assert_empty(caller)


async def test_registry_empty_after_100_calls(pair) -> None:
    caller, callee_ua, callee = pair

    async def one(i: int) -> str:
        rec = LegRecorder()
        callee.mode = "answer"
        session = await dial(caller, callee_ua, rec)
        await until(rec.answered)
        if i % 2:
            await session.bye()
        else:
            for uas_session, _ in callee.sessions:
                if uas_session.call_id == session.call_id:
                    await uas_session.bye()
            await until(rec.ended)
        return rec.ended_with[0][0]

    causes: list[str] = []
    for start in range(0, 100, 20):
        causes += await asyncio.gather(*(one(i) for i in range(start, start + 20)))
    callee.mode = "reject"
    rejected = [LegRecorder() for _ in range(10)]
    for rec in rejected:
        await dial(caller, callee_ua, rec)
    await asyncio.gather(*(until(rec.ended) for rec in rejected))
    await asyncio.gather(*(until(r.ended) for _, r in callee.sessions))
    assert causes.count("local_bye") == 50 and causes.count("remote_bye") == 50
    assert all(rec.ended_with == [("rejected", 486)] for rec in rejected)
    assert_empty(caller, callee_ua)
    assert await _drain(caller, callee_ua)  # no BYE/CANCEL task left behind


async def _drain(*uas: UserAgent) -> bool:
    for ua in uas:
        if ua._tasks:
            await asyncio.wait(ua._tasks, timeout=WAIT)
    return all(not ua._tasks for ua in uas)



async def test_failing_incoming_callback_answers_500(pair) -> None:
    caller, callee_ua, _ = pair

    async def broken(incoming: IncomingInvite) -> None:
        raise RuntimeError("application bug")

    callee_ua.on_incoming_invite = broken
    rec = LegRecorder()
    await dial(caller, callee_ua, rec)
    await until(rec.ended)
    assert rec.ended_with == [("rejected", 500)]
    assert_empty(caller, callee_ua)
