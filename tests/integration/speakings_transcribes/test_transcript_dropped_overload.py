"""No silent loss on a live call: an utterance the recognizer is too far behind to start within
``stt_final_max_wait_ms`` comes out as ``transcript_dropped`` (reason ``overloaded``), and the
transcribe goes on: the next utterance, once the recognizer has caught up, is transcribed.

Real whisper and VAD workers, real RTP; the overload is made by holding the only final whisper
worker busy (a job of 6 s) while the caller speaks."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest

from st_support import Events, LiveCall
from voipbin.media.players import BufferPlayer
from voipbin.speech.workers import worker_pid

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


@pytest.fixture(autouse=True)
def _short_final_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOIPBIN_STT_FINAL_MAX_WAIT_MS", "500")  # read when the runtime's registry is built


def _recording(name: str) -> BufferPlayer:
    with wave.open(str(LIBRIVOX / f"sense_and_sensibility_01_austen_64kb-{name}.wav")) as w:
        return BufferPlayer(w.readframes(w.getnframes()), w.getframerate())


async def test_an_utterance_shed_under_overload_is_reported_and_the_next_is_transcribed(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, live_call: LiveCall, events: Events) -> None:
    r = await client.post("/v1.0/transcribes", params={"token": admin_token}, json={
        "reference_type": "call", "reference_id": live_call.call["id"], "language": "en-US", "direction": "in"})
    assert r.status_code == 200, r.text
    tid = r.json()["id"]
    finals = runtime.stt.get("whisper").worker_pools()[0]  # the final transcriptions' workers (one)
    await finals.run(worker_pid)  # up, model loaded
    busy = asyncio.ensure_future(finals.run(time.sleep, 6.0))  # ... and now busy for 6 s

    assert live_call.leg.phone is not None
    live_call.leg.phone.outbound.add(_recording("0880"))  # "he was not an ill disposed young man" (3 s)
    dropped = await events.next("transcript_dropped", tid, timeout=30)
    assert dropped.topic == f"customer_id:{runtime.seed.customer_id}:transcribe:{tid}"
    assert {k: dropped.data[k] for k in ("transcribe_id", "direction", "reason")} == {
        "transcribe_id": tid, "direction": "in", "reason": "overloaded"}
    assert dropped.data["tm_transcript"] and dropped.data["id"] and dropped.data["customer_id"]
    assert "transcript_created" not in events.types(tid)

    await busy  # caught up
    live_call.leg.phone.outbound.add(_recording("0930"))  # "he might even have been made amiable himself"
    transcript = await events.next("transcript_created", tid, timeout=30)
    assert "amiable" in transcript.data["message"].lower()
