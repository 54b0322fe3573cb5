"""The three wire formats under test: fake servers (started once per module) and models built by the registry."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from tests_support.llm_servers import API_KEY, LlmServer, Reply, anthropic_app, gemini_app, openai_app, serve

from voipbin.llm import ChatMessage, ChatModel, LlmError, StreamEvent, ToolSpec, create_chat_model


@dataclass(frozen=True)
class Provider:
    name: str
    engine_model: str
    app: Callable[[Callable[[], LlmServer]], Starlette]
    path: str  # base URL suffix on the fake server
    retry_wait_s: float  # the shortest retry-after the provider can express (Anthropic: whole seconds)


PROVIDERS = [
    Provider("openai", "openai.gpt-5", openai_app, "/v1", 0.3),
    Provider("anthropic", "anthropic.claude-sonnet-4-5", anthropic_app, "", 1.0),
    Provider("gemini", "gemini.gemini-2.5-flash", gemini_app, "", 0.3),
]


@dataclass
class Fakes:
    """One running fake per provider; each test gives it a fresh :class:`LlmServer` (script and record)."""

    urls: dict[str, str] = field(default_factory=dict)
    current: dict[str, LlmServer] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def running(self, provider: Provider, replies: Sequence[Reply] = (Reply(),), *, api_key: str = API_KEY,
                      **kwargs: Any) -> AsyncIterator[tuple[LlmServer, ChatModel]]:
        """(the provider's fresh script, a model pointed at it), the model closed after."""
        server = self.current[provider.name] = LlmServer(list(replies))
        name = provider.engine_model.partition(".")[0]
        model = create_chat_model(provider.engine_model, api_key=api_key,
                                  base_urls={name: self.urls[provider.name] + provider.path}, **kwargs)
        try:
            yield server, model
        finally:
            await model.aclose()


@contextlib.asynccontextmanager
async def started() -> AsyncIterator[Fakes]:
    fakes = Fakes()
    async with contextlib.AsyncExitStack() as stack:
        for provider in PROVIDERS:
            fakes.current[provider.name] = LlmServer()
            app = provider.app(lambda name=provider.name: fakes.current[name])
            fakes.urls[provider.name] = await stack.enter_async_context(serve(app))
        yield fakes


HELLO = [ChatMessage("system", "You are a helpful phone agent."), ChatMessage("user", "Hi there")]


async def collect(model: ChatModel, messages: Sequence[ChatMessage] = HELLO, *, tools: Sequence[ToolSpec] = (),
                  into: list[StreamEvent] | None = None, **kwargs: Any) -> list[StreamEvent]:
    """All events of one reply (also appended to ``into``, kept when the stream raises)."""
    events = [] if into is None else into
    async with contextlib.aclosing(model.stream(messages, tools=tools, **kwargs)) as stream:
        async for event in stream:
            events.append(event)
    return events


async def failure(model: ChatModel, into: list[StreamEvent] | None = None) -> LlmError:
    """The :class:`LlmError` one reply ends with."""
    try:
        await collect(model, into=into)
    except LlmError as exc:
        return exc
    raise AssertionError("the stream did not fail")
