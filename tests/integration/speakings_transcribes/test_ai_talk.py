"""``ai_talk`` on a live call: real RTP (scripted legs, no SIP), real whisper and piper, and an LLM
that is a local server speaking OpenAI's streaming wire format (tests_support/llm_servers.py).

The phone speaks a human recording; the AI's answer is heard by the phone (whisper on what it
received) and stored as aimessages; a caller who talks over the AI stops it within a few frames and
only what was played stays in the conversation; a provider error is an apology, not a dead call;
``connect_call`` bridges the caller to an extension and the AI leaves; with smart turn, a pause in the
middle of a sentence does not split the caller's turn.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
from sqlalchemy import select

from st_support import Events, LiveCall, start_call
from tests_support.frame_log import VOICED_RMS
from tests_support.llm_servers import API_KEY, LlmServer, Reply, openai_app, per_turn, serve
from tests_support.speech import hear, word_recall
from voipbin.config import Settings
from voipbin.media.players import BufferPlayer, read_wav

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
QUESTION = "sense_and_sensibility_01_austen_64kb-0880.wav"  # "he was not an ill disposed young man"
ANSWER = "Our office opens at nine in the morning."
LONG_ANSWER = ("Let me tell you about all of our opening hours in detail. On weekdays we open at nine and close at six. "
               "On Saturdays we open at ten and close at four. On Sundays and public holidays we are closed all day. ")


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:] if w]


@pytest_asyncio.fixture
async def llm() -> AsyncIterator[tuple[LlmServer, str]]:
    server = LlmServer(replies=[Reply(tokens=_tokens(ANSWER), first_token_delay_s=0.15)])
    async with serve(openai_app(lambda: server)) as url:
        yield server, url


@pytest.fixture
def settings(sqlite_url: str, llm: tuple[LlmServer, str]) -> Settings:
    return Settings(database_url=sqlite_url, webhook_allow_private=True, sip_port=0,  # type: ignore[call-arg]
                    call_ring_timeout_seconds=30, rtp_timeout_seconds=60, webhook_worker=False,
                    pod_id="pod-test-1", llm_base_urls=f"openai={llm[1]}/v1", _env_file=None)


async def _ai(client: httpx.AsyncClient, token: str, **extra: Any) -> dict[str, Any]:
    """An AI for these calls. The caller reads literature, pausing between phrases: ``stop_secs`` 0.5, as
    upstream advises against mid-sentence cuts (the default 0.2 s ends a turn at most commas)."""
    body = {"name": "receptionist", "detail": "", "engine_model": "openai.gpt-5-mini", "engine_key": API_KEY,
            "init_prompt": "You are the receptionist of a dental clinic. Answer in one short sentence.",
            "tts_type": "", "tts_voice_id": "", "stt_type": "", "parameter": {}, "vad_config": {"stop_secs": 0.5},
            **extra}
    r = await client.post("/v1.0/ais", params={"token": token}, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _caller(name: str = QUESTION) -> BufferPlayer:
    with wave.open(str(LIBRIVOX / name)) as w:
        return BufferPlayer(w.readframes(w.getnframes()), w.getframerate())


def _lead_in_s(player: BufferPlayer) -> float:
    """Seconds of silence before the first voiced 20 ms frame of ``player`` (read from a copy)."""
    frames = np.frombuffer(player._pcm, dtype="<i2").reshape(-1, 160).astype(np.float64)
    voiced = np.sqrt((frames ** 2).mean(axis=1)) > VOICED_RMS
    return float(np.argmax(voiced)) * 0.02


async def _talking(client: httpx.AsyncClient, token: str, runtime: Any, originator: Any, events: Events,
                   ai: dict[str, Any], then: list[dict[str, Any]] | None = None) -> tuple[LiveCall, str]:
    live = await start_call(client, token, runtime, originator, events, actions=[
        {"type": "ai_talk", "option": {"assistance_type": "ai", "assistance_id": ai["id"]}},
        *(then if then is not None else [{"type": "hangup"}])])
    created = await events.next("aicall_status_progressing", where=lambda e: e.data["reference_id"] == live.call["id"])
    return live, created.resource_id


async def _message(events: Events, aicall_id: str, role: str) -> dict[str, Any]:
    event = await events.next("aimessage_created", timeout=60,
                              where=lambda e: e.data["aicall_id"] == aicall_id and e.data["role"] == role)
    return dict(event.data)


async def test_the_ai_answers_the_caller_and_the_turn_is_recorded(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any], llm: tuple[LlmServer, str], spec: Any) -> None:
    t = {"token": admin_token}
    server, _ = llm
    ai = await _ai(client, admin_token)
    live, aicall_id = await _talking(client, admin_token, runtime, originator, events, ai)
    assert live.leg.phone is not None
    live.leg.phone.outbound.add(_caller())  # the caller asks
    said = await _message(events, aicall_id, "user")
    spec.validate("AIManagerMessage", said)
    assert said["direction"] == "incoming" and word_recall("he was not an ill disposed young man", said["content"]) >= 0.6
    mark = len(live.ear.frames)
    answer = await _message(events, aicall_id, "assistant")
    assert answer["content"] == ANSWER and answer["direction"] == "outgoing"
    heard = await hear(runtime, await live.ear.utterance(mark))
    assert word_recall(ANSWER, heard) >= 0.6, heard

    request = server.requests[-1]  # what the model was asked: the AI's prompt, then the caller's words
    assert request["messages"][0] == {"role": "system", "content": ai["init_prompt"]}
    assert request["messages"][-1]["content"] == said["content"] and request["stream"] is True
    aicall = (await client.get(f"/v1.0/aicalls/{aicall_id}", params=t)).json()
    spec.validate("AIManagerAIcall", aicall)
    assert aicall["status"] == "progressing" and aicall["reference_id"] == live.call["id"]
    turns = aicall["metadata"]["turns"]
    assert turns and {"final_ms", "llm_first_ms", "tts_first_ms", "audio_first_ms"} <= set(turns[-1]["latency_ms"])
    assert aicall["metadata"]["usage"]["prompt_tokens"] > 0
    page = (await client.get("/v1.0/aimessages", params={**t, "aicall_id": aicall_id})).json()
    assert {m["role"] for m in page["result"]} == {"user", "assistant"}

    r = await client.post(f"/v1.0/aicalls/{aicall_id}/terminate", params=t)
    assert r.status_code == 200, r.text
    await events.next("aicall_status_terminated", aicall_id)
    await events.next("call_hangup", live.call["id"])  # the flow went on: its next action hangs up


async def test_barge_in_stops_the_ai_and_keeps_only_what_was_played(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any], llm: tuple[LlmServer, str]) -> None:
    server, _ = llm
    server.replies = per_turn(Reply(tokens=_tokens(LONG_ANSWER), token_interval_s=0.01), Reply(tokens=_tokens(ANSWER)))
    ai = await _ai(client, admin_token)
    live, aicall_id = await _talking(client, admin_token, runtime, originator, events, ai)
    assert live.leg.phone is not None
    live.leg.phone.outbound.add(_caller())
    await _message(events, aicall_id, "user")
    mark = len(live.ear.frames)
    await live.ear.until(lambda e: e.voiced_since(mark) >= 75)  # 1.5 s of the long answer heard
    over = _caller("sense_and_sensibility_01_austen_64kb-0930.wav")
    barge_at = asyncio.get_running_loop().time() + _lead_in_s(over)  # when its first word goes out
    live.leg.phone.outbound.add(over)  # the caller talks over the AI
    await live.ear.until(lambda e: e.trailing_silence() >= 10)
    voiced = [at for at, rms in live.ear.frames[mark:] if rms > 300]
    stopped_ms = (max(voiced) - barge_at) * 1000
    assert stopped_ms < 150, stopped_ms  # RTP and the jitter buffer included; the gate itself is 60 ms
    played = await _message(events, aicall_id, "assistant")
    assert LONG_ANSWER.startswith(played["content"]) and 3 <= len(played["content"].split()) < len(LONG_ANSWER.split())
    await _message(events, aicall_id, "user")  # what the caller said over it is the next turn
    assert (await _message(events, aicall_id, "assistant"))["content"] == ANSWER
    second = server.requests[-1]["messages"]
    assert {"role": "assistant", "content": played["content"]} in second  # the history holds what was played


async def test_a_provider_error_is_an_apology_not_a_dead_call(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any], llm: tuple[LlmServer, str]) -> None:
    server, _ = llm
    server.replies = [Reply(status=500, message="upstream exploded")]
    ai = await _ai(client, admin_token)
    live, aicall_id = await _talking(client, admin_token, runtime, originator, events, ai)
    live.leg.phone.outbound.add(_caller())  # type: ignore[union-attr]
    note = await _message(events, aicall_id, "notification")
    assert "server" in note["content"]
    mark = len(live.ear.frames)
    heard = await hear(runtime, await live.ear.utterance(mark))
    assert word_recall("sorry I am having trouble answering right now", heard) >= 0.5, heard
    got = (await client.get(f"/v1.0/calls/{live.call['id']}", params={"token": admin_token})).json()
    assert got["status"] == "progressing"


async def test_connect_call_bridges_the_caller_and_the_ai_leaves(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any], llm: tuple[LlmServer, str]) -> None:
    server, _ = llm
    server.replies = [Reply(tokens=_tokens("Connecting you now."), tool_calls=[
        ("connect_call", {"destinations": [{"type": "extension", "target": "quickstart-phone"}]})])]
    ai = await _ai(client, admin_token, tool_names=["connect_call"])
    live, aicall_id = await _talking(client, admin_token, runtime, originator, events, ai)
    live.leg.phone.outbound.add(_caller())  # type: ignore[union-attr]
    agent_leg = await originator.next_leg(timeout=60)  # the AI dialled the extension
    await agent_leg.answer()
    await events.next("aicall_status_terminated", aicall_id, timeout=30)
    tool = [m for m in (await client.get("/v1.0/aimessages", params={"token": admin_token, "aicall_id": aicall_id})
                        ).json()["result"] if m["role"] == "tool"]
    assert tool and "connecting" in tool[0]["content"]
    assert server.requests[0]["tools"][0]["function"]["name"] == "connect_call"
    from voipbin.store.models import Call

    async with runtime.sessions() as db:  # the dialled call is this process's (recovery ends it if the pod dies)
        chained = [c for c in (await db.execute(select(Call))).scalars() if c.id != live.call["id"]]
    assert [c.pod_id for c in chained] == ["pod-test-1"] and chained[0].data["master_call_id"] == live.call["id"]


async def test_smart_turn_waits_out_a_pause_mid_sentence(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any], llm: tuple[LlmServer, str]) -> None:
    """The caller stops for 0.7 s in the middle of a sentence: well past the VAD's 0.2 s stop, so the VAD
    cuts the utterance in two, but smart turn judges the first part incomplete and the AI answers once,
    to the whole sentence."""
    server, _ = llm
    samples, rate = read_wav(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0920.wav")
    pcm, n = np.asarray(samples, dtype=np.int16), rate // 50
    frames = pcm[:len(pcm) // n * n].reshape(-1, n).astype(np.float64)
    end = int(np.nonzero(np.sqrt((frames ** 2).mean(axis=1)) > VOICED_RMS)[0][-1] + 1) * n
    cut = int(end * 0.55)  # "had he married a more amiable woman he might have" | "been made still more ..."
    halting = BufferPlayer(np.concatenate([pcm[:cut], np.zeros(int(rate * 0.7), np.int16), pcm[cut:]]), rate)
    ai = await _ai(client, admin_token, smart_turn_enabled=True)  # which forces stop_secs 0.2
    live, aicall_id = await _talking(client, admin_token, runtime, originator, events, ai)
    assert live.leg.phone is not None
    live.leg.phone.outbound.add(halting)
    said = await _message(events, aicall_id, "user")  # one turn: both halves (the VAD alone ends it at the pause)
    assert word_recall("had he married a more amiable woman he might have", said["content"]) >= 0.6, said["content"]
    assert word_recall("been made still more respectable than he was", said["content"]) >= 0.25, said["content"]
    assert (await _message(events, aicall_id, "assistant"))["content"] == ANSWER
    aicall = (await client.get(f"/v1.0/aicalls/{aicall_id}", params={"token": admin_token})).json()
    assert aicall["ai_smart_turn_enabled"] is True
    assert [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "user"] == [said["content"]]
