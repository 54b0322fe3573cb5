"""The provider-neutral chat model: messages, tool specs, stream events, errors, the protocol.

A :class:`ChatModel` streams one assistant reply to a conversation as typed events:
:class:`TextDelta` pieces as the model writes them, each :class:`ToolCall` once its arguments are
complete, one :class:`Usage` when the provider reports token counts, and :class:`Finished` last.
Every failure is an :class:`LlmError` whose ``kind`` says what the caller can do about it; a wrong
configuration (unknown provider, missing key) is an :class:`LlmConfigError` raised before any I/O.
The wire formats live in ``openai_compat``, ``anthropic`` and ``gemini``; ``streaming`` holds what
they share (HTTP, SSE, timeouts, retries, cancellation).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]
"""``system`` instructions, the caller's ``user`` turns, the model's ``assistant`` turns, ``tool`` results."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function the model asks to run (also a stream event, emitted once its arguments are complete).

    ``id`` pairs the call with its result (:attr:`ChatMessage.tool_call_id`); providers that give
    none (Gemini, some local servers) get a generated ``call_<hex>``. ``arguments`` is the decoded
    JSON object the model wrote.
    """

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation.

    ``tool_calls`` (assistant messages) are the calls the model made in that turn, as
    :class:`ToolCall` or as ``{"id", "name", "arguments"}`` mappings (normalised to ``ToolCall``);
    ``tool_call_id`` (tool messages) names the call whose result ``content`` is.
    """

    role: Role
    content: str = ""
    tool_calls: Sequence[ToolCall | Mapping[str, Any]] = ()
    tool_call_id: str = ""

    def __post_init__(self) -> None:
        calls = tuple(c if isinstance(c, ToolCall) else ToolCall(str(c["id"]), str(c["name"]),
                                                                  dict(c.get("arguments") or {}))
                      for c in self.tool_calls)
        object.__setattr__(self, "tool_calls", calls)

    @property
    def calls(self) -> tuple[ToolCall, ...]:
        """``tool_calls`` as :class:`ToolCall` (they are normalised at construction)."""
        return self.tool_calls  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: ``parameters`` is the JSON Schema of its arguments object."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class TextDelta:
    """The next piece of the reply's text (a token or a few; UTF-8 already decoded)."""

    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the provider billed for this reply: the prompt (with cached input) and the completion."""

    prompt_tokens: int
    completion_tokens: int


class FinishReason(StrEnum):
    """Why the reply ended, in one vocabulary for every provider."""

    STOP = "stop"  # the model finished (or hit a stop sequence)
    LENGTH = "length"  # max_tokens reached
    TOOL_CALLS = "tool_calls"  # the model waits for the results of its tool calls
    CONTENT_FILTER = "content_filter"  # the provider's safety filter stopped or refused it
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Finished:
    """The last event of every successful stream."""

    reason: FinishReason


StreamEvent = TextDelta | ToolCall | Usage | Finished


class LlmErrorKind(StrEnum):
    """What went wrong, by what the caller can do about it."""

    AUTH = "auth"  # key missing, wrong or not allowed (401/403)
    RATE_LIMITED = "rate_limited"  # 429 still there after the bounded retries
    TIMEOUT = "timeout"  # no first event within first_token_timeout_s, or the stream outlived timeout_s
    BAD_REQUEST = "bad_request"  # the provider rejected the request (other 4xx: unknown model, bad schema)
    SERVER = "server"  # 5xx, an error event mid-stream, a malformed stream
    UNAVAILABLE = "unavailable"  # no connection, or the connection dropped mid-stream


class LlmError(Exception):
    """A provider call failed.

    Attributes:
        kind: the :class:`LlmErrorKind`.
        provider: the provider name (``"openai"``, ``"anthropic"``, ...).
        status: the HTTP status the provider answered, when there was one.
        retry_after_s: seconds the provider asked to wait (``retry-after``, Gemini ``RetryInfo``), if any.
    """

    def __init__(self, kind: LlmErrorKind, provider: str, message: str, *, status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.kind = kind
        self.provider = provider
        self.status = status
        self.retry_after_s = retry_after_s


class LlmConfigError(ValueError):
    """The engine configuration is invalid (unknown provider, missing key or base URL).

    The message starts with the upstream field to fix (``engine_model: ...``, ``engine_key: ...``);
    :attr:`field` holds that name. Raised before any I/O; the API maps it to 400.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ChatModel(Protocol):
    """A streaming chat model of one provider and model.

    ``stream`` yields :data:`StreamEvent` for one reply to ``messages``. It raises
    :class:`LlmError` (``TIMEOUT`` when the model's output did not begin within
    ``first_token_timeout_s`` seconds, or the reply outlived the model's overall timeout).
    Cancelling the consuming task, or closing the iterator (``aclose()``, ``contextlib.aclosing``),
    closes the HTTP stream at once. ``aclose`` releases the model's connections.
    """

    provider: str
    model: str
    first_token_timeout_s: float

    def stream(self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = (),
               temperature: float | None = None, max_tokens: int | None = None) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...
