"""What each client sends: the conversation, tools and options in the provider's own request shape."""

from __future__ import annotations

import pytest
from tests_support.llm_servers import API_KEY, Reply

from voipbin.llm import ChatMessage, ToolSpec

from .providers import PROVIDERS, Fakes, collect

pytestmark = pytest.mark.asyncio(loop_scope="module")

OPENAI, ANTHROPIC, GEMINI = PROVIDERS

CONNECT = ToolSpec("connect_call", "Connect the caller.", {
    "type": "object", "properties": {"destination": {"type": "string"}}, "required": ["destination"]})
STOP = ToolSpec("stop_service", "End the AI conversation.", {"type": "object", "properties": {}})
CONVERSATION = [
    ChatMessage("system", "You are the front desk."),
    ChatMessage("user", "Sales please."),
    ChatMessage("assistant", "Connecting you.", tool_calls=[{"id": "call_7", "name": "connect_call",
                                                              "arguments": {"destination": "2001"}}]),
    ChatMessage("tool", "connected", tool_call_id="call_7"),
    ChatMessage("user", "Thanks!"),
]


async def test_openai_chat_completions_request(fakes: Fakes) -> None:
    async with fakes.running(OPENAI, [Reply()]) as (server, model):
        await collect(model, CONVERSATION, tools=[CONNECT, STOP], temperature=0.2, max_tokens=300)
    body, headers = server.requests[0], server.headers[0]
    assert server.rejected == []
    assert headers["authorization"] == f"Bearer {API_KEY}" and headers["accept"] == "text/event-stream"
    assert body["model"] == "gpt-5" and body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.2 and body["max_completion_tokens"] == 300 and "max_tokens" not in body
    assert body["messages"] == [
        {"role": "system", "content": "You are the front desk."},
        {"role": "user", "content": "Sales please."},
        {"role": "assistant", "content": "Connecting you.", "tool_calls": [
            {"id": "call_7", "type": "function",
             "function": {"name": "connect_call", "arguments": '{"destination": "2001"}'}}]},
        {"role": "tool", "tool_call_id": "call_7", "content": "connected"},
        {"role": "user", "content": "Thanks!"},
    ]
    assert body["tools"][0] == {"type": "function", "function": {
        "name": "connect_call", "description": "Connect the caller.", "parameters": dict(CONNECT.parameters)}}


async def test_anthropic_messages_request(fakes: Fakes) -> None:
    async with fakes.running(ANTHROPIC, [Reply()]) as (server, model):
        await collect(model, CONVERSATION, tools=[CONNECT, STOP])
    body, headers = server.requests[0], server.headers[0]
    assert server.rejected == []
    assert headers["x-api-key"] == API_KEY and headers["anthropic-version"] == "2023-06-01"
    assert body["system"] == "You are the front desk." and body["max_tokens"] == 1024 and "temperature" not in body
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Sales please."}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Connecting you."},
            {"type": "tool_use", "id": "call_7", "name": "connect_call", "input": {"destination": "2001"}}]},
        {"role": "user", "content": [  # the tool result and the next user words form one user turn
            {"type": "tool_result", "tool_use_id": "call_7", "content": "connected"},
            {"type": "text", "text": "Thanks!"}]},
    ]
    assert body["tools"][1] == {"name": "stop_service", "description": "End the AI conversation.",
                                "input_schema": {"type": "object", "properties": {}}}


async def test_gemini_generate_content_request(fakes: Fakes) -> None:
    async with fakes.running(GEMINI, [Reply()]) as (server, model):
        await collect(model, CONVERSATION, tools=[CONNECT, STOP], temperature=0.5, max_tokens=200)
    body, headers = server.requests[0], server.headers[0]
    assert server.rejected == []
    assert headers["x-goog-api-key"] == API_KEY
    assert body["systemInstruction"] == {"parts": [{"text": "You are the front desk."}]}
    assert body["generationConfig"] == {"temperature": 0.5, "maxOutputTokens": 200}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Sales please."}]},
        {"role": "model", "parts": [{"text": "Connecting you."},
                                    {"functionCall": {"name": "connect_call", "args": {"destination": "2001"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "connect_call", "response": {"result": "connected"}}},
                                   {"text": "Thanks!"}]},
    ]
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "connect_call", "description": "Connect the caller.", "parameters": dict(CONNECT.parameters)},
        {"name": "stop_service", "description": "End the AI conversation."},  # no empty OBJECT schema
    ]}]


async def test_a_conversation_the_ai_opened_starts_with_a_user_turn_where_required(fakes: Fakes) -> None:
    greeted = [ChatMessage("system", "Be brief."), ChatMessage("assistant", "Hello!"), ChatMessage("user", "Hi")]
    for provider in PROVIDERS:
        async with fakes.running(provider, [Reply()]) as (server, model):
            await collect(model, greeted)
        assert server.rejected == [], provider.name
    assert server.requests[0]["contents"][0] == {"role": "user", "parts": [{"text": "(the call is connected)"}]}
