"""Interop with a real RTP stack: baresip answers a call and exchanges G.711 audio with an RtpSession.

The SIP here is one hand-written INVITE/ACK/BYE over UDP, just enough to get baresip's
media running (the SIP layer proper lives in ``voipbin.sip``). baresip sends a 440 Hz WAV
(aufile) and records what it hears (sndfile); we send a 1 kHz tone and check both sides.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest

from voipbin.media.players import BufferPlayer
from voipbin.media.recorder import FrameCollector
from voipbin.media.sdp import SessionDescription, create_offer, process_answer
from voipbin.media.session import RtpSession

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]
assert shutil.which("baresip"), "baresip is required (Debian package baresip-core; make test installs it)"

HOST = "127.0.0.1"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def tone(freq_hz: float, seconds: float, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 8000 / len(samples))


class SipSocket(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.messages: asyncio.Queue[str] = asyncio.Queue()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.messages.put_nowait(data.decode(errors="replace"))


def header(message: str, name: str) -> str:
    for line in message.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


def request(method: str, uri: str, sip_port: int, call_id: str, cseq: int, to: str, body: str = "") -> bytes:
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {HOST}:{sip_port};rport;branch=z9hG4bK{uuid.uuid4().hex[:16]}",
        "Max-Forwards: 70",
        f"From: <sip:media-test@{HOST}:{sip_port}>;tag=mt1",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:media-test@{HOST}:{sip_port}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


@pytest.fixture
def baresip(tmp_path: Path):
    port = free_udp_port()
    with wave.open(str(tmp_path / "source.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(tone(440, 20).tobytes())
    (tmp_path / "config").write_text(
        f"module_path /usr/lib/baresip/modules\n"
        f"sip_listen {HOST}:{port}\n"
        "module g711.so\nmodule aufile.so\nmodule sndfile.so\nmodule account.so\nmodule menu.so\n"
        f"snd_path {tmp_path}\n"
        f"audio_source aufile,{tmp_path / 'source.wav'}\n"
        "audio_alert aufile,/dev/null\n"
        "rtp_ports 31000-31998\n"
    )
    (tmp_path / "accounts").write_text(f"<sip:peer@{HOST};transport=udp>;answermode=auto;regint=0\n")
    process = subprocess.Popen(
        ["baresip", "-f", str(tmp_path), "-t", "30"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield port, tmp_path
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_audio_both_ways_with_baresip(baresip) -> None:
    peer_port, workdir = baresip
    loop = asyncio.get_running_loop()
    transport, sip = await loop.create_datagram_endpoint(SipSocket, local_addr=(HOST, 0))
    sip_port = transport.get_extra_info("sockname")[1]
    session = await RtpSession.open(HOST)
    heard = FrameCollector()
    session.add_inbound_consumer(heard)
    offer = create_offer(HOST, session.local_port, codecs=["PCMU"])
    call_id = uuid.uuid4().hex
    uri = f"sip:peer@{HOST}:{peer_port}"
    await asyncio.sleep(0.5)  # baresip start-up
    answer_message = None
    for _ in range(10):  # retransmit until baresip is listening
        transport.sendto(request("INVITE", uri, sip_port, call_id, 1, f"<{uri}>", str(offer)), (HOST, peer_port))
        try:
            while True:
                message = await asyncio.wait_for(sip.messages.get(), 1.0)
                if message.startswith("SIP/2.0 200"):
                    answer_message = message
                    break
                assert message.startswith("SIP/2.0 1"), message.split("\r\n")[0]
        except asyncio.TimeoutError:
            continue
        break
    assert answer_message is not None, "baresip did not answer"
    to = header(answer_message, "To")
    transport.sendto(request("ACK", uri, sip_port, call_id, 1, to), (HOST, peer_port))
    media = process_answer(offer, SessionDescription.parse(answer_message.split("\r\n\r\n", 1)[1]))
    assert media.codec_name == "PCMU"
    session.apply(media)
    session.outbound.add(BufferPlayer(tone(1000, 3.0)))
    await asyncio.sleep(3.5)
    transport.sendto(request("BYE", uri, sip_port, call_id, 2, to), (HOST, peer_port))
    await asyncio.sleep(0.5)
    session.close()
    transport.close()

    # what we heard from baresip: its 440 Hz source
    samples = heard.samples()
    loud = samples[np.abs(samples) > 500]
    assert len(loud) > 8000, f"heard only {len(loud)} loud samples from baresip"
    start = int(np.argmax(np.abs(samples) > 2000))
    assert dominant_hz(samples[start : start + 8000]) == pytest.approx(440, abs=3)
    assert session.stats.packets_invalid == 0
    assert session.remote_address is not None and session.remote_address[1] == media.remote_port  # symmetric
    # what baresip heard from us: our 1 kHz tone (sndfile writes dump-*-dec.wav)
    decoded = sorted(workdir.glob("dump-*-dec.wav"))
    assert decoded, "baresip wrote no recording"
    with wave.open(str(decoded[-1])) as wav:
        rate = wav.getframerate()
        got = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    if rate != 8000:
        got = got[:: rate // 8000]
    start = int(np.argmax(np.abs(got) > 2000))
    assert dominant_hz(got[start : start + 8000]) == pytest.approx(1000, abs=3)
