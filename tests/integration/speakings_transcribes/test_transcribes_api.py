"""Transcribes over the REST API and the flow actions on a live call: real whisper on real RTP.

The phone speaks a human recording (LibriVox, Debian pocketsphinx-testdata) into the call for
``in``; our own TTS (``talk``, speakings) is transcribed as ``out``.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest

from st_support import Events, LiveCall, start_call
from tests_support.speech import word_recall
from voipbin.media.players import BufferPlayer

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
CALLER_TEXT = "unless to be rather cold hearted and rather selfish is to be ill disposed"
GREETING = "Hello. This is the VoIPBIN real-time voice interaction test. You can speak now."
SAY = "Your appointment is confirmed for next Tuesday."


def _caller_recording() -> BufferPlayer:
    with wave.open(str(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0890.wav")) as w:
        pcm, rate = w.readframes(w.getnframes()), w.getframerate()
    return BufferPlayer(pcm, rate)


def _stt_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if "SegmentedTranscriptionStream" in repr(t.get_coro())
            or "DirectionStream" in repr(t.get_coro())]


async def _out_text(events: Events, tid: str, expected: str) -> str:
    """The ``out`` transcripts from now until the last words of ``expected`` are heard, joined."""
    texts: list[str] = []
    last = expected.lower().rstrip(".").split()[-1]
    while last not in " ".join(texts).lower():
        texts.append((await events.next("transcript_created", tid, timeout=40, direction="out")).data["message"])
    return " ".join(texts)


async def _start(client: httpx.AsyncClient, token: str, call_id: str, **extra: Any) -> httpx.Response:
    body = {"reference_type": "call", "reference_id": call_id, "language": "en-US", **extra}
    return await client.post("/v1.0/transcribes", params={"token": token}, json=body)


async def test_phone_speech_is_transcribed_as_in(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                 live_call: LiveCall, events: Events, spec: Any) -> None:
    t = {"token": admin_token}
    r = await _start(client, admin_token, live_call.call["id"], direction="in")
    assert r.status_code == 200, r.text
    created = r.json()
    spec.validate("TranscribeManagerTranscribe", created)
    assert (created["status"], created["direction"], created["reference_id"]) == (
        "progressing", "in", live_call.call["id"])
    tid = created["id"]

    assert live_call.leg.phone is not None
    live_call.leg.phone.outbound.add(_caller_recording())  # the caller speaks
    transcript = await events.next("transcript_created", tid, timeout=40)
    assert transcript.topic == f"customer_id:{runtime.seed.customer_id}:transcribe:{tid}"
    spec.validate("TranscribeManagerTranscript", transcript.data)
    assert transcript.data["direction"] == "in" and transcript.data["transcribe_id"] == tid
    assert word_recall(CALLER_TEXT, transcript.data["message"]) >= 0.7, transcript.data
    kinds = events.types(tid)
    assert kinds[:3] == ["transcribe_created", "streaming_started", "transcribe_progressing"]
    speech = [k for k in kinds if k.startswith("transcribe_speech_")]
    assert speech[0] == "transcribe_speech_started" and speech[-1] == "transcribe_speech_ended", kinds
    assert "transcribe_speech_interim" in speech, kinds
    interim = next(e for e in events.seen if e.event_type == "transcribe_speech_interim")
    spec.validate("TranscribeManagerSpeechWebhookMessage", interim.data)
    assert interim.data["message"] and interim.data["direction"] == "in"
    started = next(e for e in events.seen if e.event_type == "streaming_started")
    assert started.topic == transcript.topic
    assert started.data == {"id": interim.data["streaming_id"], "customer_id": runtime.seed.customer_id,
                            "transcribe_id": tid, "language": created["language"], "direction": "in"}

    page = (await client.get("/v1.0/transcripts", params={**t, "transcribe_id": tid})).json()
    spec.validate_page("TranscribeManagerTranscript", page)
    assert [x["id"] for x in page["result"]] == [transcript.data["id"]]
    listed = (await client.get("/v1.0/transcribes", params={
        **t, "reference_type": "call", "reference_id": live_call.call["id"]})).json()
    spec.validate_page("TranscribeManagerTranscribe", listed)
    assert [x["id"] for x in listed["result"]] == [tid]

    r = await client.post(f"/v1.0/transcribes/{tid}/stop", params=t)
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    spec.validate("TranscribeManagerTranscribe", r.json())
    assert (await events.next("streaming_stopped", tid)).data == started.data  # before transcribe_done
    assert (await events.next("transcribe_done", tid)).data["status"] == "done"
    assert runtime.transcribes.running_sessions == 0 and _stt_tasks() == []
    assert (await client.post(f"/v1.0/transcribes/{tid}/stop", params=t)).json()["status"] == "done"


async def test_flow_transcribes_our_speech_as_out_and_hangup_ends_it(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any], spec: Any) -> None:
    """Seed 000: transcribe_start, talk, sleep; then a speaking; the hangup ends the transcribe."""
    t = {"token": admin_token}
    actions = [{"type": "transcribe_start", "option": {"language": "en-US", "direction": "both"}},
               {"type": "talk", "option": {"text": GREETING, "language": "en-US"}},
               {"type": "sleep", "option": {"duration": 600000}}]
    live = await start_call(client, admin_token, runtime, originator, events, actions)
    created = await events.next("transcribe_created")
    tid = created.resource_id
    assert created.data["activeflow_id"] == live.call["activeflow_id"]
    heard = await _out_text(events, tid, GREETING)  # one transcript per utterance (sentence pauses split them)
    assert word_recall(GREETING, heard) >= 0.6, heard

    r = await client.post("/v1.0/speakings", params=t, json={
        "reference_type": "call", "reference_id": live.call["id"], "language": "en-US", "direction": "out"})
    sid = r.json()["id"]
    await events.next("speaking_started", sid)
    assert (await client.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": SAY})).status_code == 200
    heard = await _out_text(events, tid, SAY)
    assert word_recall(SAY, heard) >= 0.7, heard
    assert not [e for e in events.seen if e.event_type == "transcript_created" and e.data["direction"] == "in"]

    live.leg.remote_bye()
    done = await events.next("transcribe_done", tid)
    assert done.data["status"] == "done"
    streams = {e.event_type: [] for e in events.seen}
    for e in events.seen:
        if e.resource_id == tid and e.event_type.startswith("streaming_"):
            streams[e.event_type].append((e.data["direction"], e.data["id"]))
    assert sorted(streams["streaming_started"]) == sorted(streams["streaming_stopped"])  # one pair per direction
    assert {d for d, _ in streams["streaming_started"]} == {"in", "out"}
    assert len({i for _, i in streams["streaming_started"]}) == 2
    assert "call_hangup" in events.types(live.call["id"])
    assert runtime.transcribes.running_sessions == 0 and _stt_tasks() == []
    got = (await client.get(f"/v1.0/transcribes/{tid}", params=t)).json()
    assert got["status"] == "done"
    spec.validate("TranscribeManagerTranscribe", got)
    page = (await client.get("/v1.0/transcripts", params={**t, "transcribe_id": tid})).json()
    assert {x["direction"] for x in page["result"]} == {"out"} and len(page["result"]) >= 2


async def test_errors(client: httpx.AsyncClient, admin_token: str, other_token: str, runtime: Any,
                      live_call: LiveCall, events: Events) -> None:
    t = {"token": admin_token}
    call_id = live_call.call["id"]
    for extra, field in [({"reference_type": "recording"}, "reference_type"),
                         ({"reference_type": "meeting"}, "reference_type"),
                         ({"reference_id": "nope"}, "reference_id"), ({"language": ""}, "language"),
                         ({"language": "en_US"}, "language"), ({"language": "zu-ZA"}, "language"),
                         ({"provider": "nope"}, "provider"), ({"provider": "gcp"}, "provider"),
                         ({"on_end_flow_id": "x"}, "on_end_flow_id")]:
        r = await _start(client, admin_token, call_id, **extra)
        assert r.status_code == 400, (extra, r.text)
        assert field in r.json()["error"]["message"], (extra, r.text)
    assert (await _start(client, admin_token, "7b0c1b8e-3f4e-4a51-9d0a-2a4b7b2b9f00")).status_code == 404
    assert (await _start(client, other_token, call_id)).status_code == 404
    assert (await _start(client, admin_token, call_id, reference_type="confbridge")).status_code == 404  # no such room

    r = await _start(client, admin_token, call_id, direction="sideways")  # unknown direction: both (upstream)
    assert r.status_code == 200 and r.json()["direction"] == "both", r.text
    tid = r.json()["id"]
    assert (await _start(client, admin_token, call_id)).status_code == 409
    for method, path in [("GET", ""), ("POST", "/stop"), ("DELETE", "")]:
        r = await client.request(method, f"/v1.0/transcribes/{tid}{path}", params={"token": other_token})
        assert r.status_code == 404, (method, path, r.text)
    assert (await client.get("/v1.0/transcripts", params={"token": other_token, "transcribe_id": tid})).status_code == 404
    r = await client.get("/v1.0/transcripts", params=t)
    assert r.status_code == 400 and "transcribe_id" in r.json()["error"]["message"]
    r = await client.get("/v1.0/transcribes", params={**t, "reference_type": "call"})
    assert r.status_code == 400 and "reference_id" in r.json()["error"]["message"]
    assert (await client.get("/v1.0/transcribes", params={"token": other_token})).json()["result"] == []

    r = await client.delete(f"/v1.0/transcribes/{tid}", params=t)
    assert r.status_code == 200 and r.json()["status"] == "done" and r.json()["tm_delete"] is not None
    await events.next("transcribe_deleted", tid)
    assert events.types(tid)[-2:] == ["transcribe_done", "transcribe_deleted"]
    assert (await client.get(f"/v1.0/transcribes/{tid}", params=t)).status_code == 404
    assert (await _start(client, admin_token, call_id)).status_code == 200  # the language is free again


async def test_not_progressing_call_is_400(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                           originator: Any, events: Events, phone: dict[str, Any]) -> None:
    body = {"source": {"type": "tel", "target": runtime.seed.number},
            "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
            "actions": [{"type": "sleep", "option": {"duration": 60000}}]}
    call = (await client.post("/v1.0/calls", params={"token": admin_token}, json=body)).json()["calls"][0]
    await originator.next_leg()
    r = await _start(client, admin_token, call["id"])
    assert r.status_code == 400 and "dialing" in r.json()["error"]["message"], r.text


@pytest.fixture(autouse=True)
def _recording_available() -> None:
    assert LIBRIVOX.is_dir(), "pocketsphinx-testdata is required (make test installs it)"
