"""The agent's "brain": text in, reply out. Pluggable; a deterministic rule-based default.

``make_responder()`` returns :class:`OpenAICompatibleResponder` when ``AGENT_LLM_URL`` is set
(any server speaking OpenAI's ``POST /v1/chat/completions``: OpenAI, vLLM, llama.cpp, Ollama),
otherwise :class:`RuleBasedResponder`.
"""

from __future__ import annotations

import os
import re
from typing import Protocol

import httpx


class Responder(Protocol):
    async def reply(self, caller_text: str, history: list[dict[str, str]]) -> str:
        """The agent's answer to ``caller_text``; ``history`` holds earlier turns (role/content)."""
        ...


class RuleBasedResponder:
    """Keyword rules, so the example and its tests run offline and give the same answer every time."""

    RULES: list[tuple[re.Pattern[str], str]] = [
        (re.compile(r"\b(balance|account)\b"), "Your account balance is forty two dollars."),
        (re.compile(r"\b(bye|goodbye|hang up)\b"), "Thank you for calling. Goodbye."),
        (re.compile(r"\b(hours|open)\b"), "We are open from nine to five, Monday to Friday."),
    ]

    async def reply(self, caller_text: str, history: list[dict[str, str]]) -> str:
        text = caller_text.lower()
        for pattern, answer in self.RULES:
            if pattern.search(text):
                return answer
        words = " ".join(caller_text.split()[:12]).rstrip(".?!")
        return f"I heard you say: {words}. How else can I help?"


class OpenAICompatibleResponder:
    """Chat completions over HTTP (``AGENT_LLM_URL``, ``AGENT_LLM_MODEL``, ``AGENT_LLM_API_KEY``)."""

    SYSTEM = "You are a concise, friendly phone agent. Answer in one or two short spoken sentences."

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout_s: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)
        self._model = model

    async def reply(self, caller_text: str, history: list[dict[str, str]]) -> str:
        messages = [{"role": "system", "content": self.SYSTEM}, *history,
                    {"role": "user", "content": caller_text}]
        r = await self._client.post("/v1/chat/completions", json={"model": self._model, "messages": messages})
        r.raise_for_status()
        return str(r.json()["choices"][0]["message"]["content"]).strip()


def make_responder() -> Responder:
    url = os.environ.get("AGENT_LLM_URL", "")
    if url:
        return OpenAICompatibleResponder(url, os.environ.get("AGENT_LLM_MODEL", "gpt-4o-mini"),
                                         os.environ.get("AGENT_LLM_API_KEY", ""))
    return RuleBasedResponder()
