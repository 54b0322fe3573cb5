"""Re-INVITEs we send (RFC 3261 §14.1) and session timers (RFC 4028), two UserAgents over loopback.

Either side re-INVITEs and gets the answer; simultaneous re-INVITEs (glare) are both answered 491
and both succeed on the §14.1 retry; the refresher re-INVITEs with the same SDP at half the session
interval (as UAC, or as UAS when the caller does not support timers); a 422 is retried with Min-SE.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sip_fakes import FakeClock
from ua_peers import ANSWER, OFFER, WAIT, dial, until

from tests_support.legs import LegRecorder
from voipbin.sip.invite_dialog import InviteSession

HOLD_OFFER = OFFER.replace(b"o=- 1 1", b"o=- 1 2") + b"a=sendonly\r\n"
HOLD_ANSWER = ANSWER.replace(b"o=- 1 1", b"o=- 1 2") + b"a=recvonly\r\n"


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """For state that has no event (an ACK absorbed by the peer's UA)."""
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


async def _answered(pair, callee_rec: LegRecorder | None = None
                    ) -> tuple[InviteSession, LegRecorder, InviteSession, LegRecorder]:
    caller, callee_ua, callee = pair
    if callee_rec is not None:
        async def answer(incoming) -> None:
            callee.sessions.append((incoming.answer(ANSWER, callee_rec), callee_rec))
            callee.session_ready.set()
        callee_ua.on_incoming_invite = answer
    rec = LegRecorder()
    session = await dial(caller, callee_ua, rec)
    await until(rec.answered)
    await until(callee.session_ready)
    uas_session, uas_rec = callee.sessions[0]
    await until(uas_rec.answered)
    return session, rec, uas_session, uas_rec


async def test_uac_reinvite_returns_answer_and_acks(pair) -> None:
    caller, callee_ua, _ = pair
    uas_rec = LegRecorder(reinvite_answer=HOLD_ANSWER)
    session, rec, uas_session, _ = await _answered(pair, uas_rec)
    answer = await session.reinvite(HOLD_OFFER)
    assert answer == HOLD_ANSWER
    assert await uas_rec.next_reinvite(WAIT) == HOLD_OFFER
    assert session.local_sdp == HOLD_OFFER and session.remote_sdp == HOLD_ANSWER
    assert uas_session.remote_sdp == HOLD_OFFER
    await eventually(lambda: not uas_session.awaiting_ack)  # our ACK stopped its 2xx
    assert session.state == uas_session.state == "confirmed"
    assert callee_ua.stats["2xx_retransmitted"] == 0
    await session.bye()
    await until(uas_rec.ended)
    assert uas_rec.ended_with == [("remote_bye", None)]


async def test_uas_side_reinvites_the_caller(pair) -> None:
    caller, callee_ua, _ = pair
    session, _, uas_session, uas_rec = await _answered(pair)
    rec = session.handler
    assert isinstance(rec, LegRecorder)
    rec.reinvite_answer = HOLD_ANSWER
    assert await uas_session.reinvite(HOLD_OFFER) == HOLD_ANSWER
    assert rec.reinvites == [HOLD_OFFER]
    await eventually(lambda: not session.awaiting_ack)
    await uas_session.bye()
    await until(rec.ended)


async def test_glare_both_get_491_and_both_retry(pair) -> None:
    caller, callee_ua, _ = pair
    caller.glare_retry_owner_s = (0.3, 0.4)  # §14.1 ranges scaled down; the owner waits longer
    callee_ua.glare_retry_other_s = (0.0, 0.1)
    uas_rec = LegRecorder(reinvite_answer=HOLD_ANSWER)
    session, rec, uas_session, _ = await _answered(pair, uas_rec)
    rec.reinvite_answer = ANSWER
    ours, theirs = await asyncio.wait_for(
        asyncio.gather(session.reinvite(HOLD_OFFER), uas_session.reinvite(OFFER)), WAIT)
    assert caller.stats["reinvite_glare"] >= 2 and callee_ua.stats["reinvite_glare"] >= 2  # sent and got 491
    assert ours == HOLD_ANSWER and theirs == ANSWER
    assert rec.reinvites == [OFFER] and await uas_rec.next_reinvite(WAIT) == HOLD_OFFER
    assert session.state == uas_session.state == "confirmed"


async def test_reinvite_outside_a_confirmed_dialog_raises(pair) -> None:
    caller, callee_ua, callee = pair
    session, _, uas_session, uas_rec = await _answered(pair)
    await session.bye()
    try:
        await session.reinvite(OFFER)
    except Exception as exc:  # SipError
        assert "confirmed" in str(exc)
    else:
        raise AssertionError("re-INVITE after BYE was sent")


async def test_uac_refreshes_session_at_half_the_interval(clocked_pair, clock: FakeClock) -> None:
    caller, callee_ua, _ = clocked_pair
    caller.session_expires_s, caller.min_se_s, callee_ua.min_se_s = 2, 1, 1
    uas_rec = LegRecorder()
    session, rec, uas_session, _ = await _answered(clocked_pair, uas_rec)
    assert session.session_timer is not None and session.session_timer.we_refresh
    assert uas_session.session_timer is not None and not uas_session.session_timer.we_refresh
    for _ in range(2):  # two refreshes, 1 s apart on the caller's clock: each one re-armed the timer
        await eventually(lambda: any(abs(due - 1.0) < 1e-9 for due in clock.pending()))
        clock.advance(0.99)
        await asyncio.sleep(0.01)
        assert uas_rec.reinvite_queue.empty()
        clock.advance(0.01)
        assert await uas_rec.next_reinvite(WAIT) == OFFER  # same SDP
    assert caller.stats["session_refreshes"] == 2
    assert session.state == uas_session.state == "confirmed"  # neither expired
    await session.bye()


async def test_uas_refreshes_when_the_caller_does_not_support_timers(pair) -> None:
    caller, callee_ua, callee = pair
    callee_ua.min_se_s = 1
    caller.session_expires_s = None  # this caller asks for nothing by itself...
    rec = LegRecorder()
    session = await dial(caller, callee_ua, rec)
    await until(rec.answered)
    assert session.session_timer is None
    await session.bye()
    await until(rec.ended)

    rec = LegRecorder()  # ...but a header given by hand, without Supported: timer
    port = callee_ua.stack.port
    session = await caller.invite(request_uri=f"sip:200@127.0.0.1:{port}", to_uri="sip:200@voipbin.test",
                                  from_uri="sip:100@voipbin.test", sdp=OFFER, handler=rec,
                                  headers={"Session-Expires": "2"})
    await until(rec.answered)
    uas_session, _ = callee.sessions[-1]
    assert uas_session.session_timer is not None and uas_session.session_timer.we_refresh
    assert await rec.next_reinvite(3) == ANSWER  # the callee's SDP again
    await session.bye()


async def test_422_retried_with_min_se(pair) -> None:
    caller, callee_ua, _ = pair
    caller.session_expires_s, caller.min_se_s, callee_ua.min_se_s = 2, 1, 120
    session, rec, uas_session, _ = await _answered(pair)
    assert caller.stats["session_interval_retries"] == 1
    assert session.session_timer is not None and session.session_timer.interval_s == 120
    assert uas_session.session_timer is not None and uas_session.session_timer.interval_s == 120
    assert session._invite is not None and session._invite.headers.get("Min-SE") == "120"
    await session.bye()
