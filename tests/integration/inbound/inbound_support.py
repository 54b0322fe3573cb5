"""Helpers shared by the inbound tests: numbers and flows, baresip softphones registered as
extensions, what they said and heard (tones, speech files, their recordings), and the carrier: our
own UA on the trunk port placing inbound calls."""

from __future__ import annotations

import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests_support.frame_log import FrameLog
from tests_support.legs import RtpCaller
from voipbin.demo.baresip import BaresipPhone
from voipbin.media.session import RtpSession
from voipbin.media.sources import AudioSource
from voipbin.sip.ua import UserAgent

#: sample rate of the phones' audio files (baresip's aufile source needs the codec's rate: G.711)
PHONE_RATE_HZ = 8000


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def number_with_flow(client: httpx.AsyncClient, token: str, runtime: Any,
                           actions: list[dict[str, Any]]) -> dict[str, Any]:
    """Store a flow and make it the seed number's ``call_flow_id``; returns the flow."""
    r = await client.post("/v1.0/flows", params={"token": token},
                          json={"name": "ivr", "detail": "inbound test", "actions": actions})
    assert r.status_code == 200, r.text
    flow = r.json()
    numbers = (await client.get("/v1.0/numbers", params={"token": token})).json()["result"]
    number = next(n for n in numbers if n["number"] == runtime.seed.number)
    r = await client.put(f"/v1.0/numbers/{number['id']}", params={"token": token},
                         json={"call_flow_id": flow["id"]})
    assert r.status_code == 200, r.text
    return flow


# ---------------------------------------------------------------------- softphones


async def baresip_extension(client: httpx.AsyncClient, token: str, runtime: Any, workdir: Path, name: str,
                            ext: str, audio_file: Path, *, auto_answer: bool) -> BaresipPhone:
    """Create extension ``ext`` named ``name`` (password ``<name>-secret-pw``) and start a baresip
    phone in ``workdir`` (created) saying ``audio_file``; returns it once ``REGISTER_OK``."""
    r = await client.post("/v1.0/extensions", params={"token": token}, json={
        "name": name, "detail": f"{name}'s phone", "extension": ext, "password": f"{name}-secret-pw"})
    assert r.status_code == 200, r.text
    workdir.mkdir(exist_ok=True)
    phone = BaresipPhone(workdir, user=ext, domain=f"{runtime.seed.customer_id}.registrar.voipbin.test",
                         password=f"{name}-secret-pw", proxy=("127.0.0.1", runtime.sip.port),
                         audio_file=audio_file, auto_answer=auto_answer)
    await phone.start()
    await phone.wait_event("REGISTER_OK")
    return phone


def tone_wav(path: Path, hz: int, seconds: int = 60) -> Path:
    """A sine of ``hz`` at half scale, 8 kHz mono PCM16, written to ``path``."""
    subprocess.run(["sox", "-n", "-r", str(PHONE_RATE_HZ), "-c", "1", "-b", "16", str(path), "synth", str(seconds),
                    "sine", str(hz), "vol", "0.5"], check=True)
    return path


def silence_wav(path: Path, seconds: int) -> Path:
    """``seconds`` of digital silence, 8 kHz mono PCM16."""
    subprocess.run(["sox", "-n", "-r", str(PHONE_RATE_HZ), "-c", "1", "-b", "16", str(path), "trim", "0",
                    str(seconds)], check=True)
    return path


def speech_wav(path: Path, source: Path, *, lead_s: float = 0.0, tail_s: float = 90.0) -> Path:
    """``source`` (any WAV) as 8 kHz mono PCM16, after ``lead_s`` and before ``tail_s`` of silence
    (the tail keeps baresip's aufile source alive: at its end the phone hangs up)."""
    subprocess.run(["sox", str(source), "-r", str(PHONE_RATE_HZ), "-c", "1", "-b", "16", str(path),
                    "pad", str(lead_s), str(tail_s)], check=True)
    return path


def heard(path: Path) -> tuple[bytes, int]:
    """(PCM16 little-endian, sample rate) of a phone's recording, also while baresip still writes it
    (the header's sizes are written at close: the data runs to the end of the file)."""
    raw = path.read_bytes()
    fmt = raw.index(b"fmt ")
    rate = struct.unpack_from("<I", raw, fmt + 12)[0]
    pcm = raw[raw.index(b"data") + 8:]
    return pcm[:len(pcm) // 2 * 2], int(rate)


def dominant_hz(pcm: bytes, rate: int) -> tuple[float, float]:
    """(dominant frequency in Hz, RMS) of PCM16 audio; (0, 0) for less than half a second."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if len(x) < rate // 2:
        return 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x)), float(np.sqrt(np.mean(x**2)))


# ---------------------------------------------------------------------- the carrier (our own UA on the trunk port)

CALLER = "+15551230000"


async def place_call(trunk: UserAgent, runtime: Any, number: str, source: AudioSource | None = None) -> RtpCaller:
    """The carrier calls ``number`` at the platform; ``source`` is what the caller says (optional).
    The call records what the UA reported and what the carrier heard (``heard``, ``digits``)."""
    rtp = await RtpSession.open("127.0.0.1")
    call = RtpCaller(rtp)
    if source is not None:
        rtp.outbound.add(source)
    uri = f"sip:{number}@127.0.0.1:{runtime.sip.port}"
    call.session = await trunk.invite(request_uri=uri, to_uri=uri, from_uri=f"sip:{CALLER}@127.0.0.1",
                                      from_display="Carrier Caller", sdp=call.offer.serialize(), handler=call)
    return call


# ---------------------------------------------------------------------- a party's audio, frame by frame, timed


class Voice(AudioSource):
    """What a caller says, one utterance at a time (:meth:`say`), with every frame it sent on each
    20 ms tick logged in ``sent`` (silence included), on the same loop clock as a :class:`FrameLog`
    of what it heard."""

    def __init__(self) -> None:
        self.sent = FrameLog()
        self._now: AudioSource | None = None

    def say(self, source: AudioSource) -> int:
        """Start saying ``source`` (cutting what was being said) at the next tick; the index in
        ``sent`` of its first frame."""
        self._now = source
        return len(self.sent.frames)

    def read_frame(self) -> bytes | None:
        frame = self._now.read_frame() if self._now is not None else None
        self.sent(frame if frame is not None else bytes(320))
        return frame
