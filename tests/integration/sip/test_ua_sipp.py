"""Our UAC against sipp (Debian sip-tester 3.6) UAS scenarios: 486 Busy Here, and ringing without an
answer until we CANCEL (487)."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests_support.legs import LegRecorder
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.ua import UserAgent

pytestmark = pytest.mark.sip_peer

SCENARIOS = Path(__file__).parent / "scenarios"
OFFER = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def ua() -> AsyncIterator[UserAgent]:
    stack = SipStack(StackConfig(host="127.0.0.1", port=0))
    await stack.start()
    agent = UserAgent(stack)
    yield agent
    agent.close()
    await stack.stop()


async def start_sipp_uas(scenario: str, port: int, cwd: Path) -> asyncio.subprocess.Process:
    assert shutil.which("sipp"), "sipp is required (apt-get install sip-tester)"
    return await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port), "-t", "u1",
        "-m", "1", "-nostdin", "-timeout", "20", cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 25)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(errors="replace")


async def dial(ua: UserAgent, port: int, rec: LegRecorder):
    # sipp may still be binding: the INVITE's Timer A retransmissions cover that.
    return await ua.invite(request_uri=f"sip:sipp@127.0.0.1:{port}", to_uri=f"sip:sipp@127.0.0.1:{port}",
                           from_uri="sip:100@voipbin.test", sdp=OFFER, handler=rec)


async def test_sipp_busy_486_ends_rejected(ua: UserAgent, tmp_path: Path) -> None:
    port = free_udp_port()
    proc = await start_sipp_uas("uas_busy.xml", port, tmp_path)
    rec = LegRecorder()
    await dial(ua, port, rec)
    await asyncio.wait_for(rec.ended.wait(), 15)
    assert rec.ended_with == [("rejected", 486)] and not rec.answered.is_set()  # sipp never answers here
    assert rec.progress == []  # 100 Trying is not progress
    rc, out = await finish(proc)
    assert rc == 0, out[-3000:]  # sipp got our ACK for the 486
    assert ua.live_count == 0


async def test_sipp_ringing_then_cancel_487(ua: UserAgent, tmp_path: Path) -> None:
    port = free_udp_port()
    proc = await start_sipp_uas("uas_ring_cancel.xml", port, tmp_path)
    rec = LegRecorder()
    session = await dial(ua, port, rec)
    await asyncio.wait_for(rec.ringing.wait(), 15)
    assert rec.progress_codes == [180] and session.state == "early"
    await session.cancel()
    await asyncio.wait_for(rec.ended.wait(), 15)
    assert rec.ended_with == [("rejected", 487)] and not rec.answered.is_set()
    rc, out = await finish(proc)
    assert rc == 0, out[-3000:]  # sipp saw CANCEL and the ACK for its 487
    assert ua.live_count == 0
