"""The agent loop of seed 002, independent of how events arrive (webhook or WebSocket).

On ``call_progressing``: start a transcribe (direction both) and a speaking session (direction out), wait until the
speaking is active, greet. On ``transcript_created`` with direction ``in``: flush what is playing
(barge-in), ask the responder, ``/say`` the answer. On ``transcribe_speech_started`` while the agent
speaks: flush at once. On ``call_hangup``: stop both sessions.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from agent.llm import Responder

log = logging.getLogger("agent")
GREETING = "Hello, thank you for calling. How can I help you today?"


@dataclass
class Session:
    call_id: str
    transcribe_id: str = ""
    speaking_id: str = ""
    active: asyncio.Event = field(default_factory=asyncio.Event)
    history: list[dict[str, str]] = field(default_factory=list)
    replies: int = 0


class VoipbinClient:
    """The few REST calls the agent makes (``token`` is a JWT or, with ``accesskey=True``, an accesskey)."""

    def __init__(self, base_url: str, token: str, *, accesskey: bool = False) -> None:
        self.params = {"accesskey" if accesskey else "token": token}
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/v1.0", timeout=15)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        r = await self.http.post(path, params=self.params, json=body)
        r.raise_for_status()
        return r.json() if r.content else {}

    async def get(self, path: str) -> dict[str, Any]:
        r = await self.http.get(path, params=self.params)
        r.raise_for_status()
        return r.json()


class VoiceAgent:
    def __init__(self, client: VoipbinClient, responder: Responder, *, language: str = "en-US") -> None:
        self.client = client
        self.responder = responder
        self.language = language
        self.sessions: dict[str, Session] = {}
        self.finished: asyncio.Queue[Session] = asyncio.Queue()

    def _by_transcribe(self, transcribe_id: str) -> Session | None:
        return next((s for s in self.sessions.values() if s.transcribe_id == transcribe_id), None)

    def _by_speaking(self, speaking_id: str) -> Session | None:
        return next((s for s in self.sessions.values() if s.speaking_id == speaking_id), None)

    async def handle(self, event_type: str, data: dict[str, Any]) -> None:
        """One event, as both transports deliver it: its type and the resource."""
        if event_type == "call_progressing":
            await self._start(data["id"])
        elif event_type == "speaking_started":
            session = self._by_speaking(data["id"])
            if session is not None:
                session.active.set()
        elif event_type == "transcribe_speech_started":
            session = self._by_transcribe(data.get("transcribe_id", data.get("id", "")))
            if session is not None and data.get("direction", "in") == "in" and session.replies:
                await self.client.post(f"/speakings/{session.speaking_id}/flush")
        elif event_type == "transcript_created" and data.get("direction") == "in":
            session = self._by_transcribe(data["transcribe_id"])
            if session is not None:
                await self._answer(session, data["message"])
        elif event_type == "call_hangup":
            await self._cleanup(data["id"])

    async def _start(self, call_id: str) -> None:
        if call_id in self.sessions:
            return  # events may be delivered more than once
        session = self.sessions[call_id] = Session(call_id)
        transcribe = await self.client.post("/transcribes", {
            "reference_type": "call", "reference_id": call_id, "language": self.language, "direction": "both"})
        session.transcribe_id = transcribe["id"]
        # "out": the called party hears the agent (seed 000). With "both" the agent's voice would also be
        # mixed into the caller's side and come back as a direction-"in" transcript: it would answer itself.
        speaking = await self.client.post("/speakings", {
            "reference_type": "call", "reference_id": call_id, "language": self.language, "direction": "out"})
        session.speaking_id = speaking["id"]
        if speaking.get("status") == "active":
            session.active.set()
        await asyncio.wait_for(session.active.wait(), 30)
        await self.client.post(f"/speakings/{session.speaking_id}/say", {"text": GREETING})
        log.info("greeted call %s", call_id)

    async def _answer(self, session: Session, caller_text: str) -> None:
        await self.client.post(f"/speakings/{session.speaking_id}/flush")
        answer = await self.responder.reply(caller_text, session.history)
        session.history += [{"role": "user", "content": caller_text}, {"role": "assistant", "content": answer}]
        session.replies += 1
        await self.client.post(f"/speakings/{session.speaking_id}/say", {"text": answer})
        log.info("caller said %r, agent answered %r", caller_text, answer)

    async def _cleanup(self, call_id: str) -> None:
        session = self.sessions.pop(call_id, None)
        if session is None:
            return
        for path in (f"/transcribes/{session.transcribe_id}/stop", f"/speakings/{session.speaking_id}/stop"):
            try:
                await self.client.post(path)
            except httpx.HTTPStatusError as exc:  # already stopped with the call: fine
                log.info("%s: %s", path, exc.response.status_code)
        self.finished.put_nowait(session)
