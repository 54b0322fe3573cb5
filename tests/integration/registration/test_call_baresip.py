"""The seed 003 "first call" for real: baresip registers, POST /calls rings it over SIP, it answers,
hears the ``talk`` sentence (transcribed back from its recording) and the call ends both ways."""

from __future__ import annotations

import asyncio
import subprocess
import wave
from pathlib import Path
from typing import Any

import httpx
import jiwer
import numpy as np
import pytest

from voipbin.demo.baresip import BaresipPhone
from voipbin.events.bus import event_queue
from voipbin.media.pcm import resample
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.stt.whisper import WhisperRecognizer

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]

GREETING = "Hello. This is your first test call. Thank you, goodbye."


def _silence(path: Path, seconds: int = 60) -> Path:
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "trim", "0", str(seconds)],
                   check=True)
    return path


def _read_wav(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.readframes(w.getnframes()), w.getframerate()


async def _events_until(queue: asyncio.Queue[Any], call_id: str, last: str, timeout: float = 40) -> list[Any]:
    seen: list[Any] = []

    async def collect() -> list[Any]:
        while True:
            event = await queue.get()
            if event.resource_id == call_id:
                seen.append(event)
                if event.event_type == last:
                    return seen
    return await asyncio.wait_for(collect(), timeout)


@pytest.fixture
async def registered_phone(client: httpx.AsyncClient, admin_token: str, runtime: Any, tmp_path: Path):  # type: ignore[no-untyped-def]
    r = await client.post("/v1.0/extensions", params={"token": admin_token}, json={
        "name": "quickstart-phone", "detail": "Quickstart softphone extension",
        "extension": "quickstart1", "password": "your-secure-password-here"})
    ext = r.json()
    phone = BaresipPhone(tmp_path, user="quickstart1", domain=f"{ext['customer_id']}.registrar.voipbin.test",
                         password="your-secure-password-here", proxy=("127.0.0.1", runtime.sip.port),
                         audio_file=_silence(tmp_path / "silence.wav"))
    await phone.start()
    await phone.wait_event("REGISTER_OK")
    yield phone
    await phone.stop()


async def test_first_call_is_heard_and_ends_with_bye(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                     registered_phone: BaresipPhone) -> None:
    phone = registered_phone
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}:call")
    r = await client.post("/v1.0/calls", params={"token": admin_token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
        "actions": [{"type": "talk", "option": {"text": GREETING, "language": "en-US"}}]})
    assert r.status_code == 200, r.text
    call_id = r.json()["calls"][0]["id"]
    await phone.wait_event("CALL_ESTABLISHED")
    events = await _events_until(queue, call_id, "call_hangup")
    types = [e.event_type for e in events if e.event_type != "call_updated"]
    assert types == ["call_created", "call_ringing", "call_progressing", "call_hangup"], types
    assert (events[-1].data["hangup_by"], events[-1].data["hangup_reason"]) == ("local", "normal")
    await phone.wait_event("CALL_CLOSED")
    await sub.unsubscribe()

    recordings = phone.recordings("dec")
    assert recordings, phone.log
    pcm, rate = _read_wav(recordings[-1])
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    assert np.sqrt(np.mean(samples**2)) > 100, "the phone heard silence"
    heard = await WhisperRecognizer(SpeechSettings()).transcribe(resample(pcm, rate, 16000), language="en-US")
    wer = jiwer.wer(GREETING.lower().replace(".", "").replace(",", ""),
                    heard.lower().replace(".", "").replace(",", ""))
    assert wer <= 0.25, heard


async def test_phone_hangs_up_first(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                    registered_phone: BaresipPhone) -> None:
    phone = registered_phone
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}:call")
    r = await client.post("/v1.0/calls", params={"token": admin_token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
        "actions": [{"type": "sleep", "option": {"duration": 60000}}]})
    call_id = r.json()["calls"][0]["id"]
    await phone.wait_event("CALL_ESTABLISHED")
    await phone.hangup()
    events = await _events_until(queue, call_id, "call_hangup")
    assert (events[-1].data["hangup_by"], events[-1].data["hangup_reason"]) == ("remote", "normal")
    await sub.unsubscribe()


async def test_api_hangup_sends_bye_to_the_phone(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                 registered_phone: BaresipPhone) -> None:
    phone = registered_phone
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}:call")
    r = await client.post("/v1.0/calls", params={"token": admin_token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
        "actions": [{"type": "sleep", "option": {"duration": 60000}}]})
    call_id = r.json()["calls"][0]["id"]
    await phone.wait_event("CALL_ESTABLISHED")
    await _events_until(queue, call_id, "call_progressing")  # our side has the 200 too
    r = await client.post(f"/v1.0/calls/{call_id}/hangup", params={"token": admin_token})
    assert r.status_code == 200 and r.json()["status"] in ("terminating", "hangup")
    await phone.wait_event("CALL_CLOSED")
    await runtime.calls.wait_ended(call_id, 10)
    final = (await client.get(f"/v1.0/calls/{call_id}", params={"token": admin_token})).json()
    assert (final["status"], final["hangup_by"], final["hangup_reason"]) == ("hangup", "local", "normal")
    await sub.unsubscribe()
