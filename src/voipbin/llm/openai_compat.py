"""OpenAI Chat Completions streaming, and every server that speaks it (Grok, Groq, vLLM, Ollama, llama.cpp ...).

Wire format: OpenAI API reference, "Chat Completions" (``POST {base_url}/chat/completions``) with
``stream: true``. The request carries ``Authorization: Bearer <key>`` (when there is a key),
``messages`` (``tool_calls`` on assistant messages, ``tool_call_id`` on tool results), ``tools`` as
``{"type": "function", "function": {name, description, parameters}}`` and
``stream_options: {"include_usage": true}``. The answer is SSE ``data:`` lines, each a
``chat.completion.chunk`` JSON, ending with ``data: [DONE]``:

- ``choices[0].delta.content``: text pieces;
- ``choices[0].delta.tool_calls[]``: ``{index, id?, function: {name?, arguments?}}``; the first delta
  of an ``index`` carries ``id`` and ``name``, later ones pieces of the JSON ``arguments`` string;
- ``choices[0].finish_reason``: ``stop`` / ``length`` / ``tool_calls`` / ``content_filter``;
- ``usage`` (``prompt_tokens``, ``completion_tokens``) in a last chunk with empty ``choices``
  (Groq's older servers put it in ``x_groq.usage``);
- ``{"error": {"message", "type", "code"}}``: an error, as the body of a non-2xx answer or mid-stream.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from httpx_sse import ServerSentEvent

from voipbin.llm.base import (
    ChatMessage,
    Finished,
    FinishReason,
    LlmError,
    LlmErrorKind,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from voipbin.llm.streaming import PROGRESS, Progress, SseChatModel, parse_json_object

DONE = "[DONE]"
FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "content_filter": FinishReason.CONTENT_FILTER,
}


@dataclass
class _PartialToolCall:
    """A tool call whose deltas are still arriving."""

    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def add(self, delta: dict[str, Any]) -> None:
        function = delta.get("function") or {}
        self.id = self.id or delta.get("id") or ""
        self.name = self.name or function.get("name") or ""
        pieces = function.get("arguments")
        if isinstance(pieces, dict):  # some local servers send the object whole
            pieces = json.dumps(pieces)
        if pieces:
            self.arguments.append(pieces)

    def complete(self, provider: str) -> ToolCall:
        arguments = parse_json_object(provider, f"arguments of tool call {self.name!r}", "".join(self.arguments))
        return ToolCall(self.id or f"call_{uuid.uuid4().hex[:24]}", self.name, arguments)


def message_json(message: ChatMessage) -> dict[str, Any]:
    """A :class:`ChatMessage` as a Chat Completions message."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.calls:
        return {"role": "assistant", "content": message.content or None, "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in message.calls]}
    return {"role": message.role, "content": message.content}


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    """A :class:`ToolSpec` as a Chat Completions ``tools`` entry."""
    return {"type": "function",
            "function": {"name": tool.name, "description": tool.description, "parameters": dict(tool.parameters)}}


class OpenAiCompatChatModel(SseChatModel):
    """Chat Completions streaming against ``base_url`` (e.g. ``https://api.openai.com/v1``).

    ``provider`` names the service in errors and logs. ``max_tokens_field`` is ``max_tokens``
    (most servers) or ``max_completion_tokens`` (OpenAI's newer models reject ``max_tokens``).
    ``include_usage=False`` leaves out ``stream_options`` for servers that reject it.
    """

    def __init__(self, model: str, *, provider: str = "openai", max_tokens_field: str = "max_tokens",
                 include_usage: bool = True, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.provider = provider
        self.max_tokens_field = max_tokens_field
        self.include_usage = include_usage

    def _request(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], temperature: float | None,
                 max_tokens: int | None) -> tuple[str, dict[str, str], dict[str, Any]]:
        body: dict[str, Any] = {"model": self.model, "messages": [message_json(m) for m in messages], "stream": True}
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = [tool_json(t) for t in tools]
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body[self.max_tokens_field] = max_tokens
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return f"{self.base_url}/chat/completions", headers, body

    def _chunk_error(self, error: Any) -> LlmError:
        detail = error if isinstance(error, dict) else {"message": str(error)}
        code = str(detail.get("type") or detail.get("code") or "")
        kind = LlmErrorKind.RATE_LIMITED if "rate_limit" in code else LlmErrorKind.SERVER
        return LlmError(kind, self.provider, f"error mid-stream: {detail.get('message') or detail}")

    async def _decode(self, events: AsyncIterator[ServerSentEvent]) -> AsyncIterator[StreamEvent | Progress]:
        calls: dict[int | str, _PartialToolCall] = {}
        last_key: int | str = 0
        finish: str | None = None
        usage: Usage | None = None
        done = False
        async for sse in events:
            if sse.data == DONE:
                done = True
                break
            if not sse.data:
                continue
            chunk = parse_json_object(self.provider, "stream chunk", sse.data)
            if "error" in chunk:
                raise self._chunk_error(chunk["error"])
            reported = chunk.get("usage") or (chunk.get("x_groq") or {}).get("usage")
            if reported:
                usage = Usage(int(reported.get("prompt_tokens") or 0), int(reported.get("completion_tokens") or 0))
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                if text := delta.get("content"):
                    yield TextDelta(text)
                for call_delta in delta.get("tool_calls") or ():
                    key = call_delta.get("index")
                    if key is None:  # servers that send whole calls without an index
                        key = call_delta.get("id") or last_key
                    last_key = key
                    if key not in calls:
                        calls[key] = _PartialToolCall()
                        yield PROGRESS
                    calls[key].add(call_delta)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
                    for call in calls.values():
                        yield call.complete(self.provider)
                    calls.clear()
        if not done and finish is None:
            raise LlmError(LlmErrorKind.UNAVAILABLE, self.provider, "stream ended before finish_reason and [DONE]")
        for call in calls.values():
            yield call.complete(self.provider)
        if usage is not None:
            yield usage
        yield Finished(FINISH_REASONS.get(finish or "stop", FinishReason.OTHER))
