"""Re-INVITEs we send and session timers against a scripted peer on a plain UDP socket: what a
friendly peer never does. A non-2xx keeps the session; 491 is retried after the §14.1 delay;
481 and no response end the dialog with BYE; a re-sent 2xx gets the same ACK; the session timer's
headers on the wire, the refresh we send, and the BYE when the peer does not refresh.

The user agent's timers (glare delay, session timer, 2xx retransmission, BYE wait) run on a fake
clock (``UserAgent(stack, clock=...)``) that only these tests move; the transaction layer and the
sockets stay real. No assertion reads the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import test_ua_raw_peer as raw
from sip_fakes import FakeClock
from test_ua_raw_peer import ANSWER, OFFER, WAIT, Peer, call, reply

from tests_support.legs import LegRecorder
from voipbin.sip.invite_dialog import InviteSession
from voipbin.sip.message import Request
from voipbin.sip.transport import Addr
from voipbin.sip.ua import UserAgent

peer = raw.peer  # fixtures
clocked_ua = raw.clocked_ua  # the UA's own timers on the fake `clock` (conftest)
HOLD_OFFER = OFFER.replace(b"o=- 1 1", b"o=- 1 2") + b"a=sendonly\r\n"
HOLD_ANSWER = ANSWER.replace(b"o=- 1 1", b"o=- 1 2") + b"a=recvonly\r\n"


@pytest.fixture
def ua(clocked_ua: UserAgent) -> UserAgent:
    return clocked_ua


async def eventually(predicate: Callable[[], bool]) -> None:
    """For a step of the user agent that has no event (a timer armed, an ACK absorbed)."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), WAIT)


async def armed(clock: FakeClock, delay: float) -> None:
    """Wait until the user agent has armed a timer due ``delay`` seconds from now on ``clock``."""
    await eventually(lambda: any(abs(due - delay) < 1e-9 for due in clock.pending()))


async def _final(peer: Peer):
    """The next final response, skipping requests (retransmissions of ours) and 1xx."""
    while True:
        message, _, _ = await peer.recv()
        if not isinstance(message, Request) and message.status >= 200:
            return message


async def _answered(ua: UserAgent, peer: Peer, extra: list[tuple[str, str]] | None = None,
                    ) -> tuple[InviteSession, LegRecorder, Request, Addr]:
    rec = LegRecorder()
    session = await call(ua, peer, rec)
    invite, _, addr = await peer.request("INVITE")
    peer.send(reply(invite, 200, to_tag="p1", contact_port=peer.port, sdp=ANSWER, extra=extra), addr)
    await peer.request("ACK")
    await asyncio.wait_for(rec.answered.wait(), WAIT)
    return session, rec, invite, addr


async def test_non_2xx_keeps_the_session(ua: UserAgent, peer: Peer) -> None:
    session, rec, invite, addr = await _answered(ua, peer)
    task = asyncio.ensure_future(session.reinvite(HOLD_OFFER))
    reinvite, _, _ = await peer.request("INVITE")
    assert reinvite.to.tag == "p1" and reinvite.from_.tag == invite.from_.tag
    assert reinvite.cseq.seq == invite.cseq.seq + 1 and reinvite.body == HOLD_OFFER
    assert str(reinvite.uri) == f"sip:peer@127.0.0.1:{peer.port}" and reinvite.contacts
    peer.send(reply(reinvite, 488), addr)
    ack, _, _ = await peer.request("ACK")  # the transaction's ACK for a non-2xx
    assert ack.top_via.branch == reinvite.top_via.branch
    assert await asyncio.wait_for(task, WAIT) is None
    assert session.state == "confirmed" and session.local_sdp == OFFER and session.remote_sdp == ANSWER
    assert not rec.ended.is_set()


async def test_491_retried_after_random_delay_then_2xx_acked_and_reacked(ua: UserAgent, peer: Peer,
                                                                        clock: FakeClock) -> None:
    ua.glare_retry_owner_s, ua.glare_retry_other_s = (0.2, 0.2), (0.5, 0.5)
    session, rec, invite, addr = await _answered(ua, peer)
    task = asyncio.ensure_future(session.reinvite(HOLD_OFFER))
    first, _, _ = await peer.request("INVITE")
    peer.send(reply(first, 491), addr)
    await peer.request("ACK")
    await armed(clock, 0.2)  # we own the Call-ID: the owner's §14.1 range, not the other side's
    clock.advance(0.19)
    assert peer.pending() == []  # nothing before the delay is over
    clock.advance(0.01)
    second, _, _ = await peer.request("INVITE")
    assert second.cseq.seq == first.cseq.seq + 1 and second.body == HOLD_OFFER
    ok = reply(second, 200, contact_port=peer.port, sdp=HOLD_ANSWER)
    peer.send(ok, addr)
    ack, ack_bytes, _ = await peer.request("ACK")
    assert str(ack.cseq) == f"{second.cseq.seq} ACK" and ack.top_via.branch != second.top_via.branch
    assert await asyncio.wait_for(task, WAIT) == HOLD_ANSWER
    peer.send(ok, addr)  # a 2xx retransmission: the same ACK again (§13.2.2.4)
    _, again, _ = await peer.request("ACK")
    assert again == ack_bytes
    assert session.remote_sdp == HOLD_ANSWER and session.local_sdp == HOLD_OFFER


@pytest.mark.parametrize("status", [481, 408])
async def test_481_or_408_ends_the_dialog_with_bye(ua: UserAgent, peer: Peer, status: int) -> None:
    session, rec, invite, addr = await _answered(ua, peer)
    task = asyncio.ensure_future(session.reinvite(HOLD_OFFER))
    reinvite, _, _ = await peer.request("INVITE")
    peer.send(reply(reinvite, status), addr)
    bye, _, _ = await peer.request("BYE", skip=("ACK",))
    assert bye.to.tag == "p1"
    peer.send(reply(bye, 200), addr)
    assert await asyncio.wait_for(task, WAIT) is None
    await asyncio.wait_for(rec.ended.wait(), WAIT)
    assert rec.ended_with == [("dialog_lost", status)]
    assert ua.live_count == 0


async def test_no_response_ends_the_dialog(ua: UserAgent, peer: Peer) -> None:
    session, rec, invite, addr = await _answered(ua, peer)
    task = asyncio.ensure_future(session.reinvite(HOLD_OFFER))
    await asyncio.wait_for(task, WAIT)  # Timer B: 64*T1 = 1.28 s here
    bye, _, _ = await peer.request("BYE")
    await asyncio.wait_for(rec.ended.wait(), WAIT)
    assert rec.ended_with == [("dialog_lost", None)]


async def test_glare_remote_reinvite_gets_491_while_ours_is_pending(ua: UserAgent, peer: Peer) -> None:
    session, rec, invite, addr = await _answered(ua, peer)
    task = asyncio.ensure_future(session.reinvite(HOLD_OFFER))
    ours, _, _ = await peer.request("INVITE")
    theirs = Request(ours.headers.copy(), OFFER, method="INVITE", uri=ours.uri)  # the peer's own
    theirs.headers.set("From", str(ours.to))
    theirs.headers.set("To", str(ours.from_))
    theirs.headers.set("CSeq", "7 INVITE")
    theirs.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bKpeer1")
    theirs.headers.set("Contact", f"<sip:peer@127.0.0.1:{peer.port}>")
    peer.send(theirs, addr)
    message = await _final(peer)
    assert message.status == 491 and message.cseq.seq == 7
    peer.send(reply(ours, 200, contact_port=peer.port, sdp=HOLD_ANSWER), addr)
    assert await asyncio.wait_for(task, WAIT) == HOLD_ANSWER


async def test_session_timer_headers_and_our_refresh(ua: UserAgent, peer: Peer, clock: FakeClock) -> None:
    ua.session_expires_s, ua.min_se_s = 2, 1
    rec = LegRecorder()
    session = await call(ua, peer, rec)
    invite, _, addr = await peer.request("INVITE")
    assert invite.headers.get("Session-Expires") == "2;refresher=uac"
    assert "timer" in invite.headers.get("Supported", "") and invite.headers.get("Min-SE") == "1"
    peer.send(reply(invite, 200, to_tag="p1", contact_port=peer.port, sdp=ANSWER,
                    extra=[("Session-Expires", "2;refresher=uac"), ("Require", "timer")]), addr)
    await peer.request("ACK")
    await armed(clock, 1.0)  # the refresh: at half the interval
    clock.advance(0.99)
    assert peer.pending() == []
    clock.advance(0.01)
    refresh, _, _ = await peer.request("INVITE")
    assert refresh.body == OFFER and refresh.headers.get("Session-Expires") == "2;refresher=uac"
    peer.send(reply(refresh, 200, contact_port=peer.port, sdp=ANSWER,
                    extra=[("Session-Expires", "2;refresher=uac")]), addr)
    await peer.request("ACK")
    assert session.state == "confirmed" and ua.stats["session_refreshes"] == 1


async def test_peer_refresher_silent_session_ends_with_bye(ua: UserAgent, peer: Peer, clock: FakeClock) -> None:
    ua.session_expires_s, ua.min_se_s = 3, 1
    session, rec, invite, addr = await _answered(ua, peer, extra=[("Session-Expires", "3;refresher=uas")])
    assert session.session_timer is not None and not session.session_timer.we_refresh
    assert clock.pending() == [2.0]  # 3 - min(32, 3/3) = 2 s after the answer; no refresh of ours
    clock.advance(1.99)
    assert peer.pending() == [] and not rec.ended.is_set()
    clock.advance(0.01)
    bye, _, _ = await peer.request("BYE")
    peer.send(reply(bye, 200), addr)
    await asyncio.wait_for(rec.ended.wait(), WAIT)
    assert rec.ended_with == [("session_expired", None)]


async def test_peer_refresh_keeps_the_session(ua: UserAgent, peer: Peer, clock: FakeClock) -> None:
    ua.session_expires_s, ua.min_se_s = 3, 1
    session, rec, invite, addr = await _answered(ua, peer, extra=[("Session-Expires", "3;refresher=uas")])
    clock.advance(1.5)  # the peer refreshes at half the interval (its schedule, not an event of ours)
    refresh = Request(invite.headers.copy(), OFFER, method="INVITE", uri=invite.uri)
    refresh.headers.set("From", "<sip:200@voipbin.test>;tag=p1")
    refresh.headers.set("To", str(invite.from_))
    refresh.headers.set("CSeq", "2 INVITE")
    refresh.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bKrefresh1")
    refresh.headers.set("Contact", f"<sip:peer@127.0.0.1:{peer.port}>")
    refresh.headers.set("Session-Expires", "3;refresher=uac")
    peer.send(refresh, addr)
    ok = await _final(peer)
    assert ok.status == 200 and ok.headers.get("Session-Expires") == "3;refresher=uac"
    assert "timer" in ok.headers.get("Require", "")
    ack = Request(refresh.headers.copy(), b"", method="ACK", uri=refresh.uri)
    ack.headers.set("CSeq", "2 ACK")
    ack.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bKrefresh1ack")
    peer.send(ack, addr)
    await eventually(lambda: not session.awaiting_ack)  # the ACK stopped our 2xx
    clock.advance(0.5)  # the old deadline (2 s after the answer) passes quietly
    assert peer.pending() == [] and not rec.ended.is_set()
    clock.advance(1.49)
    assert peer.pending() == [] and not rec.ended.is_set()
    clock.advance(0.01)
    bye, _, _ = await peer.request("BYE")  # the new one: 2 s after the refresh
    peer.send(reply(bye, 200), addr)
    assert rec.ended_with == [("session_expired", None)]
