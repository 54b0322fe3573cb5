"""The virtual PSTN against callers it must refuse or survive: strangers, floods, bad offers, CANCEL.

A real SIP user agent of ours on loopback dials it (no platform in between).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from tests_support.legs import LegRecorder
from voipbin.media.sdp import create_offer
from voipbin.sandbox.pstn import VirtualPstn
from voipbin.sandbox.speech import Utterance
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.invite_dialog import InviteSession
from voipbin.sip.ua import UserAgent

pytestmark = pytest.mark.sip_peer

SPEECH = [Utterance("tone", (np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440) * 8000).astype(np.int16), "")]


async def _pstn(tmp_path: Path, **kwargs: object) -> VirtualPstn:
    pstn = VirtualPstn(recordings_dir=tmp_path, ring_s=0.2, pause_s=0.2, utterances=SPEECH, **kwargs)  # type: ignore[arg-type]
    await pstn.start()
    return pstn


async def _client() -> UserAgent:
    stack = SipStack(StackConfig(host="127.0.0.1", port=0, transports=("UDP",)))
    await stack.start()
    return UserAgent(stack)


async def _dial(ua: UserAgent, pstn: VirtualPstn, number: str,
                sdp: bytes | None = None) -> tuple[InviteSession, LegRecorder]:
    caller = LegRecorder()
    uri = f"sip:{number}@{pstn.trunk_uri.removeprefix('sip:')}"
    session = await ua.invite(request_uri=uri, to_uri=uri, from_uri="sip:+15550100000@voipbin.test",
                              sdp=sdp if sdp is not None else create_offer("127.0.0.1", 40000).serialize(),
                              handler=caller)
    return session, caller


async def test_a_stranger_is_refused(tmp_path: Path) -> None:
    pstn = await _pstn(tmp_path, callers=frozenset({"127.0.0.2"}))
    ua = await _client()
    try:
        _, caller = await _dial(ua, pstn, "+15559876543")
        assert await caller.until_ended(5) == ("rejected", 403)
        assert pstn.phones == [] and not list(tmp_path.glob("*.wav"))
    finally:
        ua.close()
        await ua.stack.stop()
        await pstn.stop()


async def test_a_flood_gets_busy_beyond_max_calls_and_nothing_leaks(tmp_path: Path) -> None:
    pstn = await _pstn(tmp_path, max_calls=3)
    ua = await _client()
    try:
        dialled = [await _dial(ua, pstn, f"+1555000{i:04d}") for i in range(40)]
        finals = await asyncio.gather(*(c.until_answered(5) if i < 3 else c.until_ended(5)
                                        for i, (_, c) in enumerate(dialled)))
        assert finals[3:] == [("rejected", 486)] * 37
        assert [c.answered.is_set() for _, c in dialled[:3]] == [True] * 3
        assert sum(not p.ended.is_set() for p in pstn.phones) == 3
        for session, _ in dialled[:3]:
            await session.bye()
        await asyncio.wait_for(asyncio.gather(*(p.ended.wait() for p in pstn.phones)), 5)
        _, again = await _dial(ua, pstn, "+15559876543")  # free lines again
        await asyncio.wait_for(again.answered.wait(), 5)
    finally:
        ua.close()
        await ua.stack.stop()
        await pstn.stop()
    assert all(p.ended.is_set() for p in pstn.phones)  # stop hung up the last one


async def test_an_offer_without_a_common_codec_is_488(tmp_path: Path) -> None:
    pstn = await _pstn(tmp_path)
    ua = await _client()
    try:
        offer = create_offer("127.0.0.1", 40002, codecs=["PCMU"]).serialize()
        offer = offer.replace(b"RTP/AVP 0", b"RTP/AVP 96").replace(b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:96 opus/48000/2")
        _, caller = await _dial(ua, pstn, "+15559876543", offer)
        assert await caller.until_ended(5) == ("rejected", 488)
        assert not list(tmp_path.glob("*.wav"))
    finally:
        ua.close()
        await ua.stack.stop()
        await pstn.stop()


async def test_cancel_while_ringing_records_nothing(tmp_path: Path) -> None:
    pstn = await _pstn(tmp_path)
    pstn.ring_s = 5.0
    ua = await _client()
    try:
        session, caller = await _dial(ua, pstn, "+15559876543")
        await asyncio.wait_for(caller.ringing.wait(), 5)
        await session.cancel()
        assert await caller.until_ended(5) == ("rejected", 487)
        await asyncio.wait_for(pstn.phones[0].ended.wait(), 5)
        assert not pstn.phones[0].answered.is_set() and not list(tmp_path.glob("*.wav"))
    finally:
        ua.close()
        await ua.stack.stop()
        await pstn.stop()
