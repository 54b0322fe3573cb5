"""Anthropic Messages API streaming.

Wire format: Anthropic API reference, "Messages" and "Streaming Messages"
(``POST {base_url}/v1/messages``, ``stream: true``, headers ``x-api-key`` and
``anthropic-version: 2023-06-01``). The request has the system prompt as top-level ``system``,
``max_tokens`` (required: :data:`DEFAULT_MAX_TOKENS` when the caller gives none), ``messages`` of
roles user/assistant whose ``content`` is blocks (``text``, ``tool_use {id, name, input}`` from the
assistant, ``tool_result {tool_use_id, content}`` in the next user message) and ``tools`` as
``{name, description, input_schema}``. The answer is SSE with named events:

- ``message_start`` (``message.usage.input_tokens``), ``ping``;
- ``content_block_start`` (``text``, or ``tool_use`` with ``id`` and ``name``),
  ``content_block_delta`` (``text_delta.text`` or ``input_json_delta.partial_json``), ``content_block_stop``;
- ``message_delta`` (``delta.stop_reason``, ``usage.output_tokens``), ``message_stop``;
- ``error`` (``{"type": "error", "error": {"type", "message"}}``), also the body of a non-2xx answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
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

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
OPENING_USER_TEXT = "(the call is connected)"
"""The user turn put before a conversation that starts with the assistant (the AI greeted first)."""

STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
ERROR_KINDS = {
    "authentication_error": LlmErrorKind.AUTH,
    "permission_error": LlmErrorKind.AUTH,
    "rate_limit_error": LlmErrorKind.RATE_LIMITED,
    "invalid_request_error": LlmErrorKind.BAD_REQUEST,
    "not_found_error": LlmErrorKind.BAD_REQUEST,
    "request_too_large": LlmErrorKind.BAD_REQUEST,
    "timeout_error": LlmErrorKind.TIMEOUT,
}


def request_messages(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """(``system``, ``messages``) of a conversation: system messages joined, same-role turns merged."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            blocks.append({"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content})
        elif message.content:
            blocks.append({"type": "text", "text": message.content})
        blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in message.calls]
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": OPENING_USER_TEXT}]})
    return system, turns


class AnthropicChatModel(SseChatModel):
    """Messages API streaming against ``base_url`` (``https://api.anthropic.com``)."""

    provider = "anthropic"

    def _request(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], temperature: float | None,
                 max_tokens: int | None) -> tuple[str, dict[str, str], dict[str, Any]]:
        system, turns = request_messages(messages)
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens or DEFAULT_MAX_TOKENS,
                                "messages": turns, "stream": True}
        if system:
            body["system"] = system
        if tools:
            body["tools"] = [{"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                             for t in tools]
        if temperature is not None:
            body["temperature"] = temperature
        headers = {"x-api-key": self.api_key or "", "anthropic-version": API_VERSION}
        return f"{self.base_url}/v1/messages", headers, body

    def _error(self, status: int, headers: Mapping[str, str], body: bytes) -> LlmError:
        error = super()._error(status, headers, body)
        if status < 500:  # 5xx (529 overloaded_error included) stays SERVER
            error.kind = _error_kind(body, error.kind)
        return error

    async def _decode(self, events: AsyncIterator[ServerSentEvent]) -> AsyncIterator[StreamEvent | Progress]:
        tools: dict[int, tuple[str, str, list[str]]] = {}  # block index -> (id, name, JSON pieces)
        prompt_tokens = completion_tokens = 0
        stop_reason: str | None = None
        async for sse in events:
            data = parse_json_object(self.provider, f"{sse.event} event", sse.data) if sse.data else {}
            kind = data.get("type") or sse.event
            if kind == "message_start":
                usage = (data.get("message") or {}).get("usage") or {}
                prompt_tokens = _prompt_tokens(usage)
                completion_tokens = int(usage.get("output_tokens") or 0)
            elif kind == "content_block_start":
                block = data.get("content_block") or {}
                if block.get("type") == "tool_use":
                    start = [json.dumps(block["input"])] if block.get("input") else []
                    tools[data["index"]] = (block.get("id", ""), block.get("name", ""), start)
                    yield PROGRESS
                elif block.get("type") == "text" and block.get("text"):
                    yield TextDelta(block["text"])
            elif kind == "content_block_delta":
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta" and delta.get("text"):
                    yield TextDelta(delta["text"])
                elif delta.get("type") == "input_json_delta" and data.get("index") in tools:
                    tools[data["index"]][2].append(delta.get("partial_json") or "")
            elif kind == "content_block_stop" and data.get("index") in tools:
                call_id, name, pieces = tools.pop(data["index"])
                yield ToolCall(call_id, name, parse_json_object(self.provider, f"input of tool_use {name!r}",
                                                                "".join(pieces)))
            elif kind == "message_delta":
                stop_reason = (data.get("delta") or {}).get("stop_reason") or stop_reason
                usage = data.get("usage") or {}
                completion_tokens = int(usage.get("output_tokens") or completion_tokens)
                prompt_tokens = _prompt_tokens(usage) or prompt_tokens
            elif kind == "message_stop":
                yield Usage(prompt_tokens, completion_tokens)
                yield Finished(STOP_REASONS.get(stop_reason or "end_turn", FinishReason.OTHER))
                return
            elif kind == "error":
                error = data.get("error") or {}
                raise LlmError(ERROR_KINDS.get(error.get("type", ""), LlmErrorKind.SERVER), self.provider,
                               f"error event: {error.get('type', '')}: {error.get('message', '')}")
        raise LlmError(LlmErrorKind.UNAVAILABLE, self.provider, "stream ended before message_stop")


def _prompt_tokens(usage: Mapping[str, Any]) -> int:
    """Input tokens, cached ones included (``cache_creation_input_tokens``, ``cache_read_input_tokens``)."""
    return sum(int(usage.get(k) or 0)
               for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))


def _error_kind(body: bytes, default: LlmErrorKind) -> LlmErrorKind:
    try:
        error = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        return default
    return ERROR_KINDS.get(error.get("type", "") if isinstance(error, dict) else "", default)

