"""LLM provider clients: one streaming chat interface over OpenAI-compatible, Anthropic and Gemini APIs.

This package knows nothing of calls, flows or storage. :func:`create_chat_model` turns an AI's
``engine_model`` (``<provider>.<model>``) and key into a :class:`ChatModel` whose ``stream()``
yields :class:`TextDelta`, :class:`ToolCall`, :class:`Usage` and :class:`Finished` events and
raises :class:`LlmError`; configuration mistakes raise :class:`LlmConfigError` (a ``ValueError``).
"""

from voipbin.llm.base import (
    ChatMessage,
    ChatModel,
    Finished,
    FinishReason,
    LlmConfigError,
    LlmError,
    LlmErrorKind,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
)
from voipbin.llm.registry import PROVIDERS, Endpoint, create_chat_model, parse_engine_model, resolve

__all__ = [
    "PROVIDERS",
    "ChatMessage",
    "ChatModel",
    "Endpoint",
    "Finished",
    "FinishReason",
    "LlmConfigError",
    "LlmError",
    "LlmErrorKind",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "create_chat_model",
    "parse_engine_model",
    "resolve",
]
