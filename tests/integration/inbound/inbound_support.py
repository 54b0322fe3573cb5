"""Helpers shared by the inbound tests: numbers and flows, baresip softphones registered as
extensions, and what they said and heard (tones, speech files, whisper on their recordings)."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import subprocess
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from voipbin.demo.baresip import BaresipPhone
from voipbin.media.pcm import resample

#: sample rate of the phones' audio files (baresip's aufile source needs the codec's rate: G.711)
PHONE_RATE_HZ = 8000
#: whisper's input rate
STT_RATE_HZ = 16000


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


# ---------------------------------------------------------------------- speech


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (punctuation dropped, hyphens split)."""
    return re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " ")).split()


def word_recall(expected: str, said: str) -> float:
    """Share of the words of ``expected`` found in ``said``."""
    want, got = words(expected), set(words(said))
    return sum(1 for w in want if w in got) / max(1, len(want))


async def hear(runtime: Any, pcm: bytes, rate: int) -> str:
    """Whisper's transcription (the runtime's default recognizer, en-US) of PCM16 at ``rate``."""
    recognizer = await asyncio.to_thread(runtime.stt.get, None)
    return str(await recognizer.transcribe(resample(pcm, rate, STT_RATE_HZ), language="en-US"))
