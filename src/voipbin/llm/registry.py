"""From an AI's ``engine_model`` (``<provider>.<model>``) and ``engine_key`` to a :class:`ChatModel`.

Providers (the upstream "Engine Model" table, ``ai_struct_ai.rst``, less those we do not serve):

- OpenAI Chat Completions wire (:mod:`voipbin.llm.openai_compat`): ``openai``, ``grok`` (x.ai),
  ``groq``, ``deepseek``, ``mistral``, ``cerebras``, ``fireworks``, ``together``, ``openrouter``,
  ``perplexity``, ``sambanova``, ``nvidia`` (NIM), ``qwen`` (DashScope compatible mode), ``ollama``
  (no key), and ``openai-compatible`` / ``local`` (no key needed; the base URL must be given: vLLM,
  llama.cpp server, ...);
- ``anthropic`` (:mod:`voipbin.llm.anthropic`), ``gemini`` (:mod:`voipbin.llm.gemini`).

``aws`` (Bedrock), ``azure`` and ``dialogflow`` are upstream providers this server does not serve:
:class:`LlmConfigError` on ``engine_model``. This module reads no settings: the caller passes the
key (the AI's ``engine_key`` or a server-wide one) and any base URL overrides (a gateway, a test server).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from voipbin.llm.anthropic import AnthropicChatModel
from voipbin.llm.base import ChatModel, LlmConfigError
from voipbin.llm.gemini import GeminiChatModel
from voipbin.llm.openai_compat import OpenAiCompatChatModel
from voipbin.llm.streaming import DEFAULT_FIRST_TOKEN_TIMEOUT_S, DEFAULT_TIMEOUT_S

OPENAI_COMPATIBLE_BASE_URLS: dict[str, str | None] = {
    "openai": "https://api.openai.com/v1",
    "grok": "https://api.x.ai/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "cerebras": "https://api.cerebras.ai/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "together": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "perplexity": "https://api.perplexity.ai",
    "sambanova": "https://api.sambanova.ai/v1",
    "nvidia": "https://integrate.api.nvidia.com/v1",
    "qwen": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "openai-compatible": None,
    "local": None,
}
"""Provider -> default base URL of its Chat Completions API (None: the caller must give one)."""

BASE_URLS: dict[str, str | None] = {
    **OPENAI_COMPATIBLE_BASE_URLS,
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
}
PROVIDERS = tuple(BASE_URLS)
KEYLESS_PROVIDERS = frozenset({"ollama", "openai-compatible", "local"})
MAX_COMPLETION_TOKENS_PROVIDERS = frozenset({"openai"})  # its newer models reject max_tokens


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how to reach one model: what :func:`create_chat_model` builds a client from."""

    provider: str
    model: str
    base_url: str
    api_key: str | None


def parse_engine_model(engine_model: str) -> tuple[str, str]:
    """``"openai.gpt-5"`` -> ``("openai", "gpt-5")``: split at the first dot (model names may hold dots).

    The provider is lower-cased. Raises :class:`LlmConfigError` (``engine_model``) without a
    provider or a model.
    """
    provider, dot, model = (engine_model or "").strip().partition(".")
    if not dot or not provider or not model:
        raise LlmConfigError("engine_model", f"{engine_model!r} is not <provider>.<model> (e.g. openai.gpt-4o)")
    return provider.lower(), model


def resolve(engine_model: str, *, api_key: str | None, base_urls: Mapping[str, str] | None = None) -> Endpoint:
    """Check ``engine_model`` and the key without I/O; the :class:`Endpoint` to call.

    ``base_urls`` maps a provider to a base URL replacing its default. Raises
    :class:`LlmConfigError`: an unknown or unserved provider, or ``openai-compatible`` / ``local``
    without a base URL (``engine_model``); no key for a provider that needs one (``engine_key``).
    """
    provider, model = parse_engine_model(engine_model)
    if provider not in BASE_URLS:
        raise LlmConfigError("engine_model", f"provider {provider!r} is not supported here "
                                             f"(supported: {', '.join(PROVIDERS)})")
    base_url = (base_urls or {}).get(provider) or BASE_URLS[provider]
    if not base_url:
        raise LlmConfigError("engine_model", f"provider {provider!r} needs the base URL of its server "
                                             "(none is configured on this server)")
    if not api_key and provider not in KEYLESS_PROVIDERS:
        raise LlmConfigError("engine_key", f"provider {provider!r} needs an API key")
    return Endpoint(provider, model, base_url, api_key or None)


def create_chat_model(engine_model: str, *, api_key: str | None, base_urls: Mapping[str, str] | None = None,
                      first_token_timeout_s: float = DEFAULT_FIRST_TOKEN_TIMEOUT_S,
                      timeout_s: float = DEFAULT_TIMEOUT_S, http_client: httpx.AsyncClient | None = None) -> ChatModel:
    """The streaming :class:`ChatModel` of ``engine_model`` (errors as :func:`resolve`).

    ``first_token_timeout_s`` bounds the wait for the first event, ``timeout_s`` the whole reply
    (seconds). ``http_client`` is shared if given (the caller closes it); else the model owns one
    (close it with ``aclose()``).
    """
    endpoint = resolve(engine_model, api_key=api_key, base_urls=base_urls)
    common = {"base_url": endpoint.base_url, "api_key": endpoint.api_key, "http_client": http_client,
              "first_token_timeout_s": first_token_timeout_s, "timeout_s": timeout_s}
    if endpoint.provider == "anthropic":
        return AnthropicChatModel(endpoint.model, **common)
    if endpoint.provider == "gemini":
        return GeminiChatModel(endpoint.model, **common)
    max_tokens_field = "max_completion_tokens" if endpoint.provider in MAX_COMPLETION_TOKENS_PROVIDERS else "max_tokens"
    return OpenAiCompatChatModel(endpoint.model, provider=endpoint.provider, max_tokens_field=max_tokens_field,
                                 **common)
