"""Google Gemini API streaming (``streamGenerateContent``).

Wire format: Gemini API reference, "Generating content" (``POST
{base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse``, key in ``x-goog-api-key``). The
request has ``contents`` of roles ``user``/``model`` whose ``parts`` are ``text``,
``functionCall {name, args}`` (model) or ``functionResponse {name, response}`` (user),
``systemInstruction {parts}``, ``tools: [{functionDeclarations: [{name, description, parameters}]}]``
and ``generationConfig {temperature, maxOutputTokens}``. The answer is SSE ``data:`` lines, each a
``GenerateContentResponse``: ``candidates[0].content.parts[]`` (``text`` pieces, whole
``functionCall`` parts; ``thought`` parts are skipped), ``candidates[0].finishReason``,
``usageMetadata`` (``promptTokenCount``, ``candidatesTokenCount``, ``thoughtsTokenCount``;
cumulative), ``promptFeedback.blockReason``. Errors are ``{"error": {code, message, status,
details}}`` (google.rpc.Status): ``ErrorInfo.reason`` ``API_KEY_INVALID`` is an auth error although
its HTTP status is 400, ``RetryInfo.retryDelay`` (``"13s"``) is the wait of a 429.
"""

from __future__ import annotations

import json
import uuid
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
from voipbin.llm.streaming import SseChatModel, error_message, kind_for_status, parse_json_object, retry_after_s

OPENING_USER_TEXT = "(the call is connected)"
"""The user turn put before a conversation that starts with the model (the AI greeted first)."""

FINISH_REASONS = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    **dict.fromkeys(("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"),
                    FinishReason.CONTENT_FILTER),
}
AUTH_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})


def request_contents(messages: Sequence[ChatMessage]) -> tuple[str, list[dict[str, Any]]]:
    """(system instruction text, ``contents``): same-role turns merged, tool results named after their call."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    names = {c.id: c.name for m in messages for c in m.calls}
    contents: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "model" if message.role == "assistant" else "user"
        parts: list[dict[str, Any]] = []
        if message.role == "tool":
            parts.append({"functionResponse": {"name": names.get(message.tool_call_id, message.tool_call_id),
                                               "response": _response_object(message.content)}})
        elif message.content:
            parts.append({"text": message.content})
        parts += [{"functionCall": {"name": c.name, "args": c.arguments}} for c in message.calls]
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"] += parts
        else:
            contents.append({"role": role, "parts": parts})
    if contents and contents[0]["role"] == "model":
        contents.insert(0, {"role": "user", "parts": [{"text": OPENING_USER_TEXT}]})
    return system, contents


def function_declaration(tool: ToolSpec) -> dict[str, Any]:
    """A :class:`ToolSpec` as a ``functionDeclarations`` entry (Gemini rejects an object schema without properties)."""
    declaration: dict[str, Any] = {"name": tool.name, "description": tool.description}
    if tool.parameters.get("properties"):
        declaration["parameters"] = dict(tool.parameters)
    return declaration


def _response_object(content: str) -> dict[str, Any]:
    """A tool result as ``functionResponse.response`` (a JSON object result as is, else ``{"result": ...}``)."""
    try:
        value = json.loads(content)
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"result": content}


class GeminiChatModel(SseChatModel):
    """Gemini ``streamGenerateContent`` against ``base_url`` (``https://generativelanguage.googleapis.com``)."""

    provider = "gemini"

    def _request(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], temperature: float | None,
                 max_tokens: int | None) -> tuple[str, dict[str, str], dict[str, Any]]:
        system, contents = request_contents(messages)
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if tools:
            body["tools"] = [{"functionDeclarations": [function_declaration(t) for t in tools]}]
        config = {k: v for k, v in (("temperature", temperature), ("maxOutputTokens", max_tokens)) if v is not None}
        if config:
            body["generationConfig"] = config
        url = f"{self.base_url}/v1beta/models/{self.model}:streamGenerateContent?alt=sse"
        return url, {"x-goog-api-key": self.api_key or ""}, body

    def _error(self, status: int, headers: Mapping[str, str], body: bytes) -> LlmError:
        return self._status_error(_error_object(body), status=status, headers=headers, body=body)

    def _status_error(self, error: Mapping[str, Any], *, status: int | None, headers: Mapping[str, str] | None = None,
                      body: bytes = b"") -> LlmError:
        """The error of a ``google.rpc.Status`` object (from an error body or a chunk)."""
        code = status or int(error.get("code") or 500)
        details = [d for d in error.get("details") or () if isinstance(d, dict)]
        reasons = {d.get("reason") for d in details}
        kind = LlmErrorKind.AUTH if reasons & AUTH_REASONS else kind_for_status(code)
        wait = retry_after_s(headers or {})
        for detail in details:
            delay = str(detail.get("retryDelay") or "")
            if wait is None and delay.endswith("s"):
                try:
                    wait = float(delay[:-1])
                except ValueError:
                    pass
        where = f"HTTP {code}" if status else f"error mid-stream ({code})"
        if error.get("status"):
            where += f" {error['status']}"
        return LlmError(kind, self.provider, f"{where}: {error.get('message') or error_message(body)}",
                        status=status, retry_after_s=wait)

    async def _decode(self, events: AsyncIterator[ServerSentEvent]) -> AsyncIterator[StreamEvent]:
        finish: FinishReason | None = None
        usage: Usage | None = None
        called = False
        async for sse in events:
            if not sse.data:
                continue
            chunk = parse_json_object(self.provider, "stream chunk", sse.data)
            if isinstance(chunk.get("error"), dict):
                raise self._status_error(chunk["error"], status=None)
            if metadata := chunk.get("usageMetadata"):
                completion = sum(int(metadata.get(k) or 0) for k in ("candidatesTokenCount", "thoughtsTokenCount"))
                usage = Usage(int(metadata.get("promptTokenCount") or 0), completion)
            if (chunk.get("promptFeedback") or {}).get("blockReason"):
                finish = FinishReason.CONTENT_FILTER
            candidate = (chunk.get("candidates") or [{}])[0]
            for part in (candidate.get("content") or {}).get("parts") or ():
                if part.get("thought"):
                    continue
                if part.get("text"):
                    yield TextDelta(part["text"])
                if call := part.get("functionCall"):
                    called = True
                    yield ToolCall(call.get("id") or f"call_{uuid.uuid4().hex[:24]}", call.get("name", ""),
                                   dict(call.get("args") or {}))
            if reason := candidate.get("finishReason"):
                finish = FINISH_REASONS.get(reason, FinishReason.OTHER)
        if finish is None:
            raise LlmError(LlmErrorKind.UNAVAILABLE, self.provider, "stream ended before a finishReason")
        if usage is not None:
            yield usage
        yield Finished(FinishReason.TOOL_CALLS if called and finish is FinishReason.STOP else finish)


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}
