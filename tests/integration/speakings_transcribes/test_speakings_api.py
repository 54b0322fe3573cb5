"""Speakings over the REST API on a live call (seed 004): real piper TTS, real RTP to a scripted phone.

What the phone hears is checked with whisper; flush is timed on the arrival of the phone's frames.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest

from st_support import Events, LiveCall
from tests_support.frame_log import VOICED_RMS
from tests_support.speech import hear, word_recall

FIRST = "The weather will be sunny with a light breeze."
SECOND = "Your appointment is confirmed for next Tuesday."
LONG = ("Thank you for calling the support line. Your order has been shipped and will arrive on Monday. "
        "If you would like to change the delivery address, please stay on the line. An agent will answer "
        "shortly. Meanwhile, you can visit our website to track the parcel at any time of the day.")


async def _create(client: httpx.AsyncClient, token: str, call_id: str, **extra: Any) -> httpx.Response:
    body = {"reference_type": "call", "reference_id": call_id, "language": "en-US", "direction": "out", **extra}
    return await client.post("/v1.0/speakings", params={"token": token}, json=body)


async def _active(client: httpx.AsyncClient, token: str, events: Events, call_id: str, spec: Any,
                  **extra: Any) -> dict[str, Any]:
    r = await _create(client, token, call_id, **extra)
    assert r.status_code == 201, r.text
    created = r.json()
    spec.validate("TtsManagerSpeaking", created)
    assert created["status"] == "initiating"
    started = await events.next("speaking_started", created["id"])
    assert started.data["status"] == "active"
    return created


async def test_say_is_heard_in_order_then_stop_and_delete(client: httpx.AsyncClient, admin_token: str,
                                                          runtime: Any, live_call: LiveCall, events: Events,
                                                          spec: Any) -> None:
    t = {"token": admin_token}
    created = await _active(client, admin_token, events, live_call.call["id"], spec)
    assert created["reference_id"] == live_call.call["id"] and created["provider"] == "piper"
    assert created["pod_id"] == "pod-test-1" and created["direction"] == "out"
    sid = created["id"]
    got = (await client.get(f"/v1.0/speakings/{sid}", params=t)).json()
    spec.validate("TtsManagerSpeaking", got)
    assert got["status"] == "active"

    start = len(live_call.ear.frames)
    for text in (FIRST, SECOND):  # each /say queues; played in order
        r = await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": text})
        assert r.status_code == 200, r.text
        spec.validate("TtsManagerSpeaking", r.json())
    heard = await hear(runtime, await live_call.ear.utterance(start, silence_s=1.0))
    assert word_recall(FIRST, heard) >= 0.7 and word_recall(SECOND, heard) >= 0.7, heard
    assert heard.lower().find("weather") < heard.lower().find("tuesday"), heard

    listed = (await client.get("/v1.0/speakings", params=t)).json()
    spec.validate_page("TtsManagerSpeaking", listed)
    assert [s["id"] for s in listed["result"]] == [sid]

    r = await client.post(f"/v1.0/speakings/{sid}/stop", params=t)
    assert r.status_code == 200 and r.json()["status"] == "stopped"
    assert (await events.next("speaking_stopped", sid)).data["status"] == "stopped"
    r = await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": "Too late."})
    assert r.status_code == 400 and "not active" in r.json()["error"]["message"]

    # a stopped speaking frees the call for a new one
    again = await _create(client, admin_token, live_call.call["id"])
    assert again.status_code == 201, again.text

    r = await client.delete(f"/v1.0/speakings/{sid}", params=t)
    assert r.status_code == 200 and r.json()["tm_delete"] is not None
    spec.validate("TtsManagerSpeaking", r.json())
    await events.next("speaking_deleted", sid)
    assert (await client.get(f"/v1.0/speakings/{sid}", params=t)).status_code == 404
    assert events.types(sid) == ["speaking_created", "speaking_started", "speaking_stopped", "speaking_deleted"]


async def test_flush_silences_the_phone_within_100_ms(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                      live_call: LiveCall, events: Events, spec: Any) -> None:
    t = {"token": admin_token}
    sid = (await _active(client, admin_token, events, live_call.call["id"], spec))["id"]
    start = len(live_call.ear.frames)
    assert (await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": LONG})).status_code == 200
    assert (await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": SECOND})).status_code == 200
    await live_call.ear.until(lambda e: e.voiced_since(start) >= 50)  # a second of speech, mid-sentence
    loop = asyncio.get_running_loop()
    flushed_at = loop.time()
    r = await client.post(f"/v1.0/speakings/{sid}/flush", params=t)
    assert r.status_code == 200 and r.json()["status"] == "active"
    await live_call.ear.until(lambda e: e.frames[-1][0] - flushed_at > 1.5)
    last_voiced = max(at for at, rms in live_call.ear.frames if rms > VOICED_RMS)
    assert last_voiced - flushed_at <= 0.100, f"speech {1000 * (last_voiced - flushed_at):.0f} ms after flush"
    assert runtime.speakings.pipeline_of(sid).players[0].buffered_s == 0  # queued text (SECOND) dropped too

    # still active: the next /say is heard
    start = len(live_call.ear.frames)
    assert (await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": FIRST})).status_code == 200
    heard = await hear(runtime, await live_call.ear.utterance(start))
    assert word_recall(FIRST, heard) >= 0.7 and word_recall(SECOND, heard) < 0.5, heard


async def test_errors(client: httpx.AsyncClient, admin_token: str, other_token: str, runtime: Any,
                      live_call: LiveCall, events: Events, spec: Any) -> None:
    t = {"token": admin_token}
    call_id = live_call.call["id"]
    for extra, field in [({"provider": "nope"}, "provider"), ({"provider": "elevenlabs"}, "provider"),
                         ({"reference_type": "meeting"}, "reference_type"), ({"reference_id": "x"}, "reference_id"),
                         ({"direction": "sideways"}, "direction"), ({"language": "en_US"}, "language"),
                         ({"language": "zu-ZA"}, "language")]:
        r = await _create(client, admin_token, call_id, **extra)
        assert r.status_code == 400, (extra, r.text)
        assert field in r.json()["error"]["message"], (extra, r.text)
    assert (await _create(client, admin_token, "7b0c1b8e-3f4e-4a51-9d0a-2a4b7b2b9f00")).status_code == 404
    assert (await _create(client, other_token, call_id)).status_code == 404  # another customer's call
    assert (await _create(client, admin_token, call_id, reference_type="confbridge")).status_code == 404  # no room

    sid = (await _active(client, admin_token, events, call_id, spec))["id"]
    r = await _create(client, admin_token, call_id)
    assert r.status_code == 409, r.text
    for text in ("", "   ", "x" * 5001):
        r = await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": text})
        assert r.status_code == 400 and "text" in r.json()["error"]["message"], r.text
    assert (await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={})).status_code == 400
    assert (await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": "x" * 5000})).status_code == 200
    for path in ("", "/say", "/flush", "/stop"):
        method = "GET" if not path else "POST"
        r = await client.request(method, f"/v1.0/speakings/{sid}{path}", params={"token": other_token},
                                 json={"text": "hi"})
        assert r.status_code == 404, (path, r.text)
    assert (await client.delete(f"/v1.0/speakings/{sid}", params={"token": other_token})).status_code == 404
    assert (await client.get("/v1.0/speakings/00000000-0000-0000-0000-000000000001", params=t)).status_code == 404
    assert (await client.get("/v1.0/speakings", params={"token": other_token})).json()["result"] == []


async def test_not_progressing_call_is_400(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                           originator: Any, events: Events, phone: dict[str, Any]) -> None:
    body = {"source": {"type": "tel", "target": runtime.seed.number},
            "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
            "actions": [{"type": "sleep", "option": {"duration": 60000}}]}
    call = (await client.post("/v1.0/calls", params={"token": admin_token}, json=body)).json()["calls"][0]
    leg = await originator.next_leg()
    leg.ring()
    await events.next("call_ringing", call["id"])
    r = await _create(client, admin_token, call["id"])
    assert r.status_code == 400 and "ringing" in r.json()["error"]["message"], r.text
    leg.reject(486)
    await events.next("call_hangup", call["id"])
    r = await _create(client, admin_token, call["id"])
    assert r.status_code == 400 and "hangup" in r.json()["error"]["message"], r.text


async def test_hangup_stops_the_speaking(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                         live_call: LiveCall, events: Events, spec: Any) -> None:
    sid = (await _active(client, admin_token, events, live_call.call["id"], spec))["id"]
    pipeline = runtime.speakings.pipeline_of(sid)
    await client.post(f"/v1.0/speakings/{sid}/say", params={"token": admin_token}, json={"text": LONG})
    await live_call.ear.until(lambda e: e.voiced_since(0) >= 10)
    live_call.leg.remote_bye()
    stopped = await events.next("speaking_stopped", sid)
    assert stopped.data["status"] == "stopped"
    assert "call_hangup" in events.types(live_call.call["id"])  # listeners run once the hangup is stored
    got = (await client.get(f"/v1.0/speakings/{sid}", params={"token": admin_token})).json()
    assert got["status"] == "stopped"
    assert runtime.speakings.pipeline_of(sid) is None and pipeline._worker is None
    media = live_call.leg.media
    assert media is not None and all(p not in media.outbound.sources for p in pipeline.players)


@pytest.mark.parametrize("direction", ["in", "both"])
async def test_injected_speech_never_reaches_the_in_transcription(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, live_call: LiveCall, events: Events,
        spec: Any, direction: str) -> None:
    """DESIGN.md "Terms": ``in`` is injected on the endpoint's incoming side (what a bridged party
    would hear), not heard by the endpoint; ``both`` is heard too (transcribed as ``out``). Neither
    is ever an ``in`` transcript (seed 002's agent must not hear itself)."""
    t = {"token": admin_token}
    media = live_call.leg.media
    assert media is not None
    incoming_side: list[float] = []  # rms per 20 ms frame of what a bridged party would hear
    media.add_inbound_consumer(lambda f: incoming_side.append(float(np.sqrt(np.mean(
        np.frombuffer(f, "<i2").astype(float) ** 2)))), injected=True)
    r = await client.post("/v1.0/transcribes", params=t, json={
        "reference_type": "call", "reference_id": live_call.call["id"], "language": "en-US", "direction": "both"})
    assert r.status_code == 200, r.text
    tid = r.json()["id"]
    sid = (await _active(client, admin_token, events, live_call.call["id"], spec, direction=direction))["id"]
    assert (await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": SECOND})).status_code == 200

    def played_out(_: Any) -> bool:  # voiced, then 1 s of silence on the incoming side
        voiced = [i for i, rms in enumerate(incoming_side) if rms > 300]
        return len(voiced) > 25 and len(incoming_side) - voiced[-1] > 50
    await live_call.ear.until(played_out, timeout=40)
    if direction == "both":
        transcript = await events.next("transcript_created", tid, timeout=40, direction="out")
        assert word_recall(SECOND, transcript.data["message"]) >= 0.7, transcript.data
    assert (await client.post(f"/v1.0/transcribes/{tid}/stop", params=t)).status_code == 200
    await events.next("transcribe_done", tid)  # every transcript is out by now
    ins = [e.data["message"] for e in events.seen if e.event_type == "transcript_created"
           and e.resource_id == tid and e.data["direction"] == "in"]
    assert ins == []
    phone_voiced = live_call.ear.voiced_since(0)
    if direction == "in":
        assert phone_voiced == 0
    else:
        assert phone_voiced > 50
