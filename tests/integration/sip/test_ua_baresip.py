"""Our UAC calls a real baresip 1.0 (auto-answer) at its sip_listen address: it answers 200 with SDP,
we ACK, its RTP reaches the port our offer named; then we hang up, or it does (quitting with ``-t``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests_support.legs import LegRecorder
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.ua import UserAgent

pytestmark = pytest.mark.sip_peer

MODULES = ("g711.so", "aufile.so", "sndfile.so", "account.so", "menu.so")
RTP_VERSION_2 = 0x80
PCMU, PCMA = 0, 8


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offer(rtp_port: int) -> bytes:
    """Our SDP offer (RFC 4566/3264): PCMU, PCMA, telephone-event."""
    return (f"v=0\r\no=voipbin 1 1 IN IP4 127.0.0.1\r\ns=voipbin\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
            ).encode()


class Baresip:
    """A baresip process that auto-answers at 127.0.0.1:``port``; its output is collected."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_udp_port()
        self.conf = tmp_path / "baresip"
        self.conf.mkdir()
        wav = tmp_path / "tone.wav"
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(wav), "synth", "10",
                        "sine", "440"], check=True)
        lines = ["module_path /usr/lib/baresip/modules", f"sip_listen 127.0.0.1:{self.port}",
                 *[f"module {m}" for m in MODULES], f"snd_path {tmp_path}",
                 f"audio_source aufile,{wav}", "audio_alert aufile,/dev/null", "rtp_ports 30000-31000"]
        (self.conf / "config").write_text("\n".join(lines) + "\n")
        (self.conf / "accounts").write_text("<sip:200@127.0.0.1;transport=udp>;answermode=auto;regint=0\n")
        self.output = ""
        self._changed = asyncio.Event()
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    async def start(self, seconds: int) -> None:
        assert shutil.which("baresip"), "baresip is required (apt-get install baresip)"
        self.proc = await asyncio.create_subprocess_exec(
            "baresip", "-f", str(self.conf), "-t", str(seconds), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._reader = asyncio.ensure_future(self._read())
        await self.wait_for("baresip is ready")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(4096):  # status lines end in \r, not \n
            self.output += chunk.decode(errors="replace")
            self._changed.set()
        self._changed.set()

    async def wait_for(self, needle: str, timeout: float = 10.0) -> None:
        async def scan() -> None:
            while needle not in self.output:
                if self._reader is not None and self._reader.done():
                    raise AssertionError(f"baresip exited before {needle!r}:\n{self.output}")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(scan(), timeout)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)

    @property
    def uri(self) -> str:
        return f"sip:200@127.0.0.1:{self.port}"


@pytest.fixture
async def ua() -> AsyncIterator[UserAgent]:
    stack = SipStack(StackConfig(host="127.0.0.1", port=0))
    await stack.start()
    agent = UserAgent(stack)
    yield agent
    agent.close()
    await stack.stop()


@pytest.fixture
def rtp() -> AsyncIterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


async def call_baresip(ua: UserAgent, phone: Baresip, rtp: socket.socket, rec: LegRecorder):
    return await ua.invite(request_uri=phone.uri, to_uri="sip:200@127.0.0.1", from_uri="sip:100@voipbin.test",
                           from_display="voipbin test", sdp=offer(rtp.getsockname()[1]), handler=rec)


async def receive_rtp(sock: socket.socket, packets: int, timeout: float = 5.0) -> list[bytes]:
    loop = asyncio.get_running_loop()
    got: list[bytes] = []

    async def collect() -> None:
        while len(got) < packets:
            got.append(await loop.sock_recv(sock, 2048))

    await asyncio.wait_for(collect(), timeout)
    return got


async def test_call_baresip_media_flows_then_we_hang_up(ua: UserAgent, rtp: socket.socket,
                                                       tmp_path: Path) -> None:
    phone = Baresip(tmp_path)
    await phone.start(seconds=30)
    try:
        rec = LegRecorder()
        session = await call_baresip(ua, phone, rtp, rec)
        await asyncio.wait_for(rec.answered.wait(), 10)
        answer = rec.answered_sdp[0]
        assert answer is not None and b"m=audio " in answer and b"RTP/AVP 0" in answer
        assert session.state == "confirmed" and session.remote_sdp == answer
        await phone.wait_for("Call established")  # baresip got our ACK
        packets = await receive_rtp(rtp, 10)
        assert all(p[0] & 0xC0 == RTP_VERSION_2 and p[1] & 0x7F in (PCMU, PCMA) for p in packets)
        assert all(len(p) == 12 + 160 for p in packets)  # 20 ms of G.711 each

        await session.bye()
        assert rec.ended_with == [("local_bye", 200)]
        await phone.wait_for("session closed")  # baresip 1.0 logs the BYE it received this way
        assert ua.live_count == 0
    finally:
        await phone.stop()


async def test_baresip_hangs_up_we_see_remote_bye(ua: UserAgent, rtp: socket.socket,
                                                  tmp_path: Path) -> None:
    phone = Baresip(tmp_path)
    await phone.start(seconds=3)  # it quits after 3 s, sending BYE for the call in progress
    try:
        rec = LegRecorder()
        session = await call_baresip(ua, phone, rtp, rec)
        await asyncio.wait_for(rec.answered.wait(), 10)
        await receive_rtp(rtp, 1)
        await asyncio.wait_for(rec.ended.wait(), 10)
        assert rec.ended_with == [("remote_bye", None)]
        assert session.state == "terminated"
        await phone.wait_for("terminated")
        assert ua.live_count == 0
    finally:
        await phone.stop()
