"""``ai_talk`` with real SIP and RTP: a caller from the trunk talks to the AI behind a number, and the
AI hands the caller over to a real softphone.

The caller is the carrier (our own UA on the trunk port, ``inbound_support.place_call``) calling the
seed number, whose flow is ``answer`` + ``ai_talk``: real INVITE/200/ACK and G.711 RTP on 127.0.0.1,
the platform's whisper (STT), piper (TTS) and VAD. Its questions are human recordings (LibriVox,
Debian pocketsphinx-testdata); every 20 ms frame it sent and heard is logged on the test's loop
clock (``Voice``, ``FrameLog``). A baresip phone cannot be that caller here: an extension dialling
a number goes out through the trunk, and the trunk is this test's UA. The LLM is a local server
speaking OpenAI's streaming wire (tests_support/llm_servers.py), first token after 150 ms, its
answer picked from the caller's transcribed question.

One conversation: two questions answered in turn (whisper on what the caller heard holds each
answer; the second request to the model carries the first exchange); a third question gets a long
answer that the caller talks over: the AI's voice stops within 100 ms of the caller's first voiced
frame (both measured at the caller); what the caller said over it asks for a person: the model calls
``connect_call`` to an extension, a baresip phone (auto-answer, playing a 1 kHz tone) rings, and the
caller hears its tone; the aicall is terminated. The aimessages hold the turns, the cut answer as
it was played.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

from inbound_support import (
    Voice, baresip_extension, dominant_hz, number_with_flow, place_call, tone_wav,
)
from tests_support.events import Events
from tests_support.frame_log import VOICED_RMS, FrameLog
from tests_support.llm_servers import API_KEY, LlmServer, Reply, openai_app, serve
from tests_support.speech import hear, word_recall
from voipbin.config import Settings
from voipbin.media.players import BufferPlayer, read_wav
from voipbin.sip.ua import UserAgent

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
# (recording, its words: LIBRIVOX/transcription)
YOUNG_MAN = ("sense_and_sensibility_01_austen_64kb-0880.wav", "he was not an ill disposed young man")
MARRIED = ("sense_and_sensibility_01_austen_64kb-0920.wav",
           "had he married a more amiable woman he might have been made still more respectable than he was")
AMIABLE = ("sense_and_sensibility_01_austen_64kb-0930.wav", "he might even have been made amiable himself")
SELFISH = ("sense_and_sensibility_01_austen_64kb-0890.wav",
           "unless to be rather cold hearted and rather selfish is to be ill disposed")

FIRST = "Our office opens at nine in the morning."
SECOND = "Doctor Smith can see you on Tuesday afternoon."
LONG = ("Let me tell you about all of our opening hours in detail. On weekdays we open at nine and close at six. "
        "On Saturdays we open at ten and close at four. On Sundays and public holidays we are closed all day. ")
HANDOVER = "Connecting you to the front desk."
PARDON = "Sorry, could you say that again?"
DESK = "desk"  # the extension connect_call names
DESK_HZ = 1000
#: the AI's voice must stop at the caller within this long of the caller's first voiced frame
BARGE_IN_MS = 100


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:] if w]


def _answer(body: dict[str, Any]) -> Reply:
    """The scripted model: its answer follows the caller's last question (as whisper wrote it)."""
    said = set(body["messages"][-1]["content"].lower().replace(",", " ").replace(".", " ").split())
    if said & {"selfish", "hearted", "unless"}:
        return Reply(tokens=_tokens(HANDOVER), first_token_delay_s=0.15, tool_calls=[
            ("connect_call", {"destinations": [{"type": "extension", "target": DESK}]})])
    if said & {"married", "woman", "respectable"}:
        return Reply(tokens=_tokens(SECOND), first_token_delay_s=0.15)
    if said & {"amiable", "himself", "might"}:
        return Reply(tokens=_tokens(LONG), first_token_delay_s=0.15, token_interval_s=0.01)
    if said & {"young", "disposed"}:
        return Reply(tokens=_tokens(FIRST), first_token_delay_s=0.15)
    return Reply(tokens=_tokens(PARDON), first_token_delay_s=0.15)


@pytest_asyncio.fixture
async def llm() -> AsyncIterator[tuple[LlmServer, str]]:
    server = LlmServer(replies=_answer)
    async with serve(openai_app(server)) as url:
        yield server, url


@pytest.fixture
def settings(sqlite_url: str, trunk_port: int, llm: tuple[LlmServer, str]) -> Settings:
    return Settings(database_url=sqlite_url, webhook_allow_private=True, sip_port=0,  # type: ignore[call-arg]
                    webhook_worker=False, rtp_timeout_seconds=60, call_ring_timeout_seconds=20,
                    trunk_uri=f"sip:127.0.0.1:{trunk_port}", trunk_allowed_hosts=f"127.0.0.1:{trunk_port}",
                    trunk_username="trunkuser", trunk_password="trunkpass", llm_base_urls=f"openai={llm[1]}/v1",
                    _env_file=None)


def _question(recording: tuple[str, str], *, from_first_word: bool = False) -> BufferPlayer:
    """The recording as the caller's voice; ``from_first_word``: without its lead-in silence."""
    samples, rate = read_wav(LIBRIVOX / recording[0])
    if from_first_word:
        frames = samples[:len(samples) // (rate // 50) * (rate // 50)].reshape(-1, rate // 50).astype(np.float64)
        samples = samples[int(np.argmax(np.sqrt((frames**2).mean(axis=1)) > VOICED_RMS)) * (rate // 50):]
    return BufferPlayer(samples, rate)


async def _message(events: Events, aicall_id: str, role: str) -> dict[str, Any]:
    event = await events.next("aimessage_created", timeout=60,
                              where=lambda e: e.data["aicall_id"] == aicall_id and e.data["role"] == role)
    return dict(event.data)


async def test_a_caller_talks_with_the_ai_interrupts_it_and_is_handed_to_a_softphone(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, events: Events, tmp_path: Path,
        trunk: UserAgent, llm: tuple[LlmServer, str]) -> None:
    t = {"token": admin_token}
    server, _ = llm
    r = await client.post("/v1.0/ais", params=t, json={
        "name": "receptionist", "detail": "", "engine_model": "openai.gpt-5-mini", "engine_key": API_KEY,
        "init_prompt": "You are the receptionist of a dental clinic. Answer in one short sentence.",
        "tts_type": "", "tts_voice_id": "", "stt_type": "", "parameter": {}, "tool_names": ["connect_call"],
        "vad_config": {"stop_secs": 0.5}})  # read literature pauses between phrases (upstream's advice for it)
    assert r.status_code == 200, r.text
    ai = r.json()
    await number_with_flow(client, admin_token, runtime, [
        {"type": "answer"}, {"type": "ai_talk", "option": {"assistance_type": "ai", "assistance_id": ai["id"]}}])
    desk = await baresip_extension(client, admin_token, runtime, tmp_path / DESK, DESK, "3010",
                                   tone_wav(tmp_path / "desk.wav", DESK_HZ), auto_answer=True)
    voice, ear = Voice(), FrameLog()
    call = await place_call(trunk, runtime, runtime.seed.number, voice)
    call.rtp.add_inbound_consumer(ear)
    try:
        await asyncio.wait_for(call.answered.wait(), 10)
        inbound = await events.next("call_created", where=lambda e: e.data["direction"] == "incoming")
        progressing = await events.next("aicall_status_progressing",
                                        where=lambda e: e.data["reference_id"] == inbound.resource_id)
        aicall_id = progressing.resource_id

        # two questions, two answers that follow them
        for question, answer in ((YOUNG_MAN, FIRST), (MARRIED, SECOND)):
            voice.say(_question(question))
            said = await _message(events, aicall_id, "user")
            assert word_recall(question[1], said["content"]) >= 0.6, said
            mark = len(ear.frames)
            replied = await _message(events, aicall_id, "assistant")  # once it has been played out
            assert replied["content"] == answer
            heard = await hear(runtime, await ear.utterance(mark))
            assert word_recall(answer, heard) >= 0.6, (answer, heard)
        second = server.requests[-1]["messages"]
        assert second[0]["role"] == "system" and [m["role"] for m in second[1:]] == ["user", "assistant", "user"]
        assert second[2]["content"] == FIRST and word_recall(MARRIED[1], second[3]["content"]) >= 0.6

        # a third question, a long answer, and the caller talks over it
        voice.say(_question(AMIABLE))
        await _message(events, aicall_id, "user")
        mark = len(ear.frames)
        # 1.5 s of the long answer heard, and the AI speaking now (its last three frames voiced)
        await ear.until(lambda g: g.voiced_since(mark) >= 75 and g.voiced_since(len(g.frames) - 3) == 3, timeout=30)
        start = voice.say(_question(SELFISH, from_first_word=True))
        await voice.sent.until(lambda g: g.voiced_since(start) > 0)
        spoke_at = voice.sent.voiced_times(start)[0]  # the caller's first voiced frame went out
        await ear.until(lambda g: g.frames[-1][0] > spoke_at + 1.0)
        assert ear.voiced_since(next(i for i, (at, _) in enumerate(ear.frames) if at > spoke_at - 0.06)) >= 3
        last_heard = max(ear.voiced_times(mark))  # the AI was speaking when the caller began; its last sound
        stopped_ms = (last_heard - spoke_at) * 1000
        assert stopped_ms <= BARGE_IN_MS, stopped_ms
        played = await _message(events, aicall_id, "assistant")
        assert LONG.startswith(played["content"]) and 3 <= len(played["content"].split()) < len(LONG.split()), played

        # that question asks for a person: the AI connects the caller to the desk's softphone and leaves
        asked = await _message(events, aicall_id, "user")
        assert word_recall(SELFISH[1], asked["content"]) >= 0.6, asked
        await events.next("aicall_status_terminated", aicall_id, timeout=30)
        assert {"role": "assistant", "content": played["content"]} in server.requests[-1]["messages"]
        await desk.wait_event("CALL_ESTABLISHED", timeout=30)
        hz, level = dominant_hz((await call.next_audio(1.5))[8000:], 8000)  # after 0.5 s
        assert level > 300 and abs(hz - DESK_HZ) < 20, (hz, level)

        roles = [m["role"] for m in (await client.get("/v1.0/aimessages", params={**t, "aicall_id": aicall_id, "page_size": 100})
                                     ).json()["result"]]
        assert roles.count("user") == 4 and roles.count("assistant") >= 4 and "tool" in roles, roles
        aicall = (await client.get(f"/v1.0/aicalls/{aicall_id}", params=t)).json()
        assert aicall["status"] == "terminated" and len(aicall["metadata"]["turns"]) >= 3
    finally:
        call.rtp.close()
        await desk.stop()
