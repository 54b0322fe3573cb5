"""engine_model / engine_key -> a chat model; the pure helpers of the wire code."""

from __future__ import annotations

import email.utils

import pytest

from voipbin.llm import ChatMessage, LlmConfigError, LlmErrorKind, ToolCall, create_chat_model, parse_engine_model
from voipbin.llm.anthropic import AnthropicChatModel
from voipbin.llm.gemini import GeminiChatModel
from voipbin.llm.openai_compat import OpenAiCompatChatModel
from voipbin.llm.registry import resolve
from voipbin.llm.streaming import kind_for_status, retry_after_s


def test_parse_engine_model_splits_at_the_first_dot() -> None:
    assert parse_engine_model("openai.gpt-5") == ("openai", "gpt-5")
    assert parse_engine_model("cerebras.llama3.1-8b") == ("cerebras", "llama3.1-8b")
    assert parse_engine_model("OpenRouter.meta-llama/llama-3-70b") == ("openrouter", "meta-llama/llama-3-70b")


@pytest.mark.parametrize("bad", ["", "gpt-4o", ".gpt-4o", "openai.", "openai"])
def test_malformed_engine_model_names_the_field(bad: str) -> None:
    with pytest.raises(LlmConfigError) as info:
        parse_engine_model(bad)
    assert info.value.field == "engine_model" and str(info.value).startswith("engine_model: ")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("engine_model", ["foo.bar", "aws.claude-3-sonnet", "dialogflow.cx"])
def test_unknown_or_unserved_provider_names_engine_model(engine_model: str) -> None:
    with pytest.raises(LlmConfigError, match=r"^engine_model: provider '\w+' is not supported") as info:
        create_chat_model(engine_model, api_key="k")
    assert info.value.field == "engine_model"


@pytest.mark.parametrize("engine_model", ["openai.gpt-5", "grok.grok-3", "gemini.gemini-2.5-flash",
                                          "anthropic.claude-sonnet-4-5", "groq.llama-3.3-70b-versatile"])
def test_missing_key_names_engine_key(engine_model: str) -> None:
    for key in (None, ""):
        with pytest.raises(LlmConfigError, match=r"^engine_key: provider '[\w-]+' needs an API key"):
            create_chat_model(engine_model, api_key=key)


async def test_each_provider_gets_its_wire_and_default_endpoint() -> None:
    cases = {
        "openai.gpt-5": (OpenAiCompatChatModel, "https://api.openai.com/v1"),
        "grok.grok-3": (OpenAiCompatChatModel, "https://api.x.ai/v1"),
        "anthropic.claude-sonnet-4-5": (AnthropicChatModel, "https://api.anthropic.com"),
        "gemini.gemini-2.5-flash": (GeminiChatModel, "https://generativelanguage.googleapis.com"),
    }
    for engine_model, (cls, base_url) in cases.items():
        model = create_chat_model(engine_model, api_key="k", first_token_timeout_s=4.0)
        assert isinstance(model, cls) and model.base_url == base_url and model.first_token_timeout_s == 4.0
        assert model.model == engine_model.partition(".")[2]
        await model.aclose()
    grok = create_chat_model("grok.grok-3", api_key="k")
    assert grok.provider == "grok" and grok.max_tokens_field == "max_tokens"
    await grok.aclose()


def test_local_servers_need_a_base_url_but_no_key() -> None:
    with pytest.raises(LlmConfigError, match="^engine_model: provider 'local' needs the base URL"):
        resolve("local.smollm2", api_key=None)
    endpoint = resolve("local.smollm2", api_key=None, base_urls={"local": "http://127.0.0.1:8080/v1"})
    assert (endpoint.provider, endpoint.model, endpoint.base_url, endpoint.api_key) == (
        "local", "smollm2", "http://127.0.0.1:8080/v1", None)
    assert resolve("ollama.llama3", api_key=None).base_url == "http://127.0.0.1:11434/v1"
    assert resolve("openai-compatible.qwen2.5", api_key="k", base_urls={"openai-compatible": "http://h/v1"}).model \
        == "qwen2.5"
    assert resolve("openai.gpt-5", api_key="k", base_urls={"openai": "http://gw/v1"}).base_url == "http://gw/v1"


def test_retry_after_in_seconds_milliseconds_or_http_date() -> None:
    assert retry_after_s({"retry-after": "7"}) == 7.0
    assert retry_after_s({"retry-after": "1", "retry-after-ms": "250"}) == 0.25
    now = 1_790_000_000.0
    date = email.utils.formatdate(now + 20, usegmt=True)
    assert retry_after_s({"retry-after": date}, now=now) == 20.0
    assert retry_after_s({"retry-after": email.utils.formatdate(now - 5, usegmt=True)}, now=now) == 0.0
    assert retry_after_s({"retry-after": "soon"}) is None and retry_after_s({}) is None


def test_http_status_kinds() -> None:
    assert [kind_for_status(s) for s in (401, 403, 408, 429, 400, 404, 500, 503, 529)] == [
        LlmErrorKind.AUTH, LlmErrorKind.AUTH, LlmErrorKind.TIMEOUT, LlmErrorKind.RATE_LIMITED,
        LlmErrorKind.BAD_REQUEST, LlmErrorKind.BAD_REQUEST, LlmErrorKind.SERVER, LlmErrorKind.SERVER,
        LlmErrorKind.SERVER]


def test_tool_calls_given_as_dicts_become_tool_calls() -> None:
    calls = [{"id": "c1", "name": "send_digits", "arguments": {"digits": "1"}}]
    message = ChatMessage("assistant", "", tool_calls=calls)
    assert message.calls == (ToolCall("c1", "send_digits", {"digits": "1"}),)
    assert f"{LlmErrorKind.RATE_LIMITED}" == "rate_limited" and LlmErrorKind.TIMEOUT == "timeout"
