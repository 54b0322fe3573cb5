"""The examples' AI voice agent holds a conversation with a real softphone, over each transport.

The platform runs in-process with a real HTTP server; baresip is called and, after the agent's
greeting, asks (in synthesized speech) for its balance; the agent must answer with the rule's reply,
heard as a ``direction: out`` transcript; hanging up makes the agent stop both sessions.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests_support.net import free_port
from voipbin.demo.baresip import BaresipPhone
from voipbin.events.bus import event_queue

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from agent.core import GREETING, VoiceAgent, VoipbinClient  # noqa: E402
from agent.llm import RuleBasedResponder  # noqa: E402

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]

QUESTION = "Hello. What is my account balance?"


@pytest.fixture
async def server(runtime: Any) -> AsyncIterator[str]:
    from voipbin.api.app import create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_config=None,
                                        lifespan="off"))
    task = asyncio.get_running_loop().create_task(srv.serve())
    while not srv.started:
        assert not task.done(), task
        await asyncio.sleep(0.02)  # uvicorn has no start event
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    await task


async def _caller_question(path: Path) -> Path:
    """QUESTION spoken by piper, as the 8 kHz WAV the softphone plays (then silence)."""
    from voipbin.media.pcm import resample
    from voipbin.speech.tts.piper import PiperSynthesizer

    tts = PiperSynthesizer()
    pcm = b"".join([c async for c in tts.synthesize(QUESTION, language="en-US")])
    raw = path.with_suffix(".raw")
    raw.write_bytes(resample(pcm, tts.sample_rate, 8000))
    subprocess.run(["sox", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", str(raw),
                    str(path), "pad", "0", "30"], check=True)
    return path


async def _next(queue: asyncio.Queue[Any], predicate: Any, timeout: float = 40) -> Any:
    async def find() -> Any:
        while True:
            event = await queue.get()
            if predicate(event):
                return event
    return await asyncio.wait_for(find(), timeout)


@pytest.mark.parametrize("transport", ["websocket", "webhook"])
async def test_agent_converses_with_a_softphone(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                server: str, tmp_path: Path, transport: str) -> None:
    ext = (await client.post("/v1.0/extensions", params={"token": admin_token}, json={
        "name": "caller", "detail": "the customer on the phone", "extension": "caller1", "password": "pw-123456"}
    )).json()
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(tmp_path / "silence.wav"), "trim", "0",
                    "60"], check=True)
    phone = BaresipPhone(tmp_path / "phone", user="caller1", domain=f"{ext['customer_id']}.registrar.voipbin.test",
                         password="pw-123456", proxy=("127.0.0.1", runtime.sip.port),
                         audio_file=tmp_path / "silence.wav")
    question = await _caller_question(tmp_path / "question.wav")
    agent = VoiceAgent(VoipbinClient(server, admin_token), RuleBasedResponder())
    events, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}")
    tasks: list[asyncio.Task[None]] = []
    await phone.start()
    try:
        await phone.wait_event("REGISTER_OK")
        if transport == "websocket":
            from websocket_agent import run

            connected = asyncio.Event()
            tasks.append(asyncio.get_running_loop().create_task(run(agent, server, admin_token, connected=connected)))
            await asyncio.wait_for(connected.wait(), 10)
        else:
            from webhook_agent import serve

            port = free_port()
            tasks.append(asyncio.get_running_loop().create_task(
                serve(agent, "127.0.0.1", port, f"http://127.0.0.1:{port}/webhook")))
            await _next(events, lambda e: e.event_type == "customer_updated", 10)

        r = await client.post("/v1.0/calls", params={"token": admin_token}, json={
            "source": {"type": "tel", "target": runtime.seed.number},
            "destinations": [{"type": "extension", "target_name": "caller"}],
            "actions": [{"type": "sleep", "option": {"duration": 120000}}]})
        call_id = r.json()["calls"][0]["id"]
        greeting = await _next(events, lambda e: e.event_type == "transcript_created"  # cold speech workers
                               and e.data["direction"] == "out" and "help" in e.data["message"].lower(), 90)
        assert "thank you for calling" in greeting.data["message"].lower(), (greeting.data, GREETING)

        await phone.command("ausrc", f"aufile,{question}")  # the caller asks
        asked = await _next(events, lambda e: e.event_type == "transcript_created" and e.data["direction"] == "in")
        assert "balance" in asked.data["message"].lower(), asked.data
        answer = await _next(events, lambda e: e.event_type == "transcript_created" and e.data["direction"] == "out"
                             and "balance" in e.data["message"].lower())
        assert any(word in answer.data["message"].lower() for word in ("forty", "42")), answer.data

        await client.delete(f"/v1.0/calls/{call_id}", params={"token": admin_token})
        session = await asyncio.wait_for(agent.finished.get(), 20)
        assert session.call_id == call_id and session.replies >= 1
        transcribe = (await client.get(f"/v1.0/transcribes/{session.transcribe_id}",
                                       params={"token": admin_token})).json()
        speaking = (await client.get(f"/v1.0/speakings/{session.speaking_id}", params={"token": admin_token})).json()
        assert transcribe["status"] == "done" and speaking["status"] == "stopped"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await sub.unsubscribe()
        await phone.stop()
