"""Each provider's client against a local server speaking its real streaming wire format.

The servers cut their SSE bytes inside JSON, lines and UTF-8 characters across TCP writes; the
clients must still give one event per token, complete tool calls, usage, and the right errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import httpx
import pytest
from tests_support.llm_servers import Reply

from voipbin.llm import (
    ChatMessage,
    Finished,
    FinishReason,
    LlmErrorKind,
    TextDelta,
    ToolCall,
    Usage,
    create_chat_model,
)

from .providers import HELLO, PROVIDERS, Fakes, Provider, collect, failure

pytestmark = [pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.parametrize("provider", PROVIDERS, ids=[p.name for p in PROVIDERS])]

TOKENS = ("Hel", "lo ☕", " wörld", ", ça", " va", "?")
ARGUMENTS = {"destinations": [{"type": "extension", "target": "2001"}], "note": "naïve ☎ caller"}


async def test_text_streams_token_by_token_with_usage(provider: Provider, fakes: Fakes) -> None:
    reply = Reply(tokens=TOKENS, first_token_delay_s=0.15, token_interval_s=0.02, usage=(57, 6))
    async with fakes.running(provider, [reply]) as (server, model):
        async with contextlib.aclosing(model.stream(HELLO)) as stream:
            first = await anext(stream)
            assert first == TextDelta("Hel") and server.tokens_sent < len(TOKENS)  # not buffered to the end
            rest = [event async for event in stream]
    assert [first, *rest] == [*(TextDelta(t) for t in TOKENS), Usage(57, 6), Finished(FinishReason.STOP)]
    assert server.rejected == [] and server.completed == 1


async def test_tool_calls_complete_with_their_arguments(provider: Provider, fakes: Fakes) -> None:
    calls = [("connect_call", ARGUMENTS), ("stop_service", {})]
    async with fakes.running(provider, [Reply(tokens=("One moment.",), tool_calls=calls)]) as (server, model):
        events = await collect(model)
    tool_calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.name, c.arguments) for c in tool_calls] == calls
    assert all(c.id for c in tool_calls) and len({c.id for c in tool_calls}) == 2
    assert events[0] == TextDelta("One moment.") and events[-1] == Finished(FinishReason.TOOL_CALLS)
    assert isinstance(events[-2], Usage)


async def test_a_tool_call_slower_than_the_first_token_timeout_is_not_cut(provider: Provider, fakes: Fakes) -> None:
    """The first-token deadline is met by the call's first delta, not its (later) complete event."""
    slow_arguments = Reply(tokens=(), tool_calls=[("connect_call", ARGUMENTS)], token_interval_s=0.1)
    async with fakes.running(provider, [slow_arguments], first_token_timeout_s=0.3) as (server, model):
        events = await collect(model)
    assert [(e.name, e.arguments) for e in events if isinstance(e, ToolCall)] == [("connect_call", ARGUMENTS)]
    assert events[-1] == Finished(FinishReason.TOOL_CALLS)


async def test_wrong_key_is_auth(provider: Provider, fakes: Fakes) -> None:
    async with fakes.running(provider, api_key="wrong") as (server, model):
        error = await failure(model)
    assert error.kind is LlmErrorKind.AUTH and error.provider == provider.name
    assert len(server.requests) == 1


async def test_server_error_is_not_retried(provider: Provider, fakes: Fakes) -> None:
    async with fakes.running(provider, [Reply(status=500, message="boom inside")]) as (server, model):
        error = await failure(model)
    assert error.kind is LlmErrorKind.SERVER and error.status == 500 and "boom inside" in str(error)
    assert len(server.requests) == 1


async def test_rate_limit_waits_retry_after_then_succeeds(provider: Provider, fakes: Fakes) -> None:
    replies = [Reply(status=429, retry_after=provider.retry_wait_s), Reply(tokens=("ok",))]
    async with fakes.running(provider, replies) as (server, model):
        events = await collect(model)
    assert events[0] == TextDelta("ok") and events[-1] == Finished(FinishReason.STOP)
    assert len(server.requests) == 2 and server.requests[0] == server.requests[1]
    assert server.arrivals[1] - server.arrivals[0] >= provider.retry_wait_s * 0.9  # the wait it asked for


async def test_rate_limit_forever_gives_up_after_bounded_retries(provider: Provider, fakes: Fakes) -> None:
    async with fakes.running(provider, [Reply(status=429, retry_after=0)]) as (server, model):
        error = await failure(model)
    assert error.kind is LlmErrorKind.RATE_LIMITED and error.status == 429 and error.retry_after_s == 0
    assert len(server.requests) == 3  # the first try and two retries


async def test_rate_limit_longer_than_the_first_token_budget_is_not_waited(provider: Provider,
                                                                           fakes: Fakes) -> None:
    async with fakes.running(provider, [Reply(status=429, retry_after=30)]) as (server, model):
        error = await failure(model)
    assert error.kind is LlmErrorKind.RATE_LIMITED and error.retry_after_s == 30
    assert len(server.requests) == 1


async def test_error_event_mid_stream_after_tokens(provider: Provider, fakes: Fakes) -> None:
    events: list = []
    async with fakes.running(provider, [Reply(tokens=TOKENS, error_after_tokens=2)]) as (server, model):
        error = await failure(model, into=events)
    assert events == [TextDelta("Hel"), TextDelta("lo ☕")]
    assert error.kind is LlmErrorKind.SERVER and error.status is None
    assert len(server.requests) == 1  # nothing is retried once tokens went out


async def test_a_stream_cut_before_its_end_is_unavailable(provider: Provider, fakes: Fakes) -> None:
    events: list = []
    async with fakes.running(provider, [Reply(tokens=TOKENS, drop_after_tokens=3)]) as (server, model):
        error = await failure(model, into=events)
    assert events == [TextDelta(t) for t in TOKENS[:3]]
    assert error.kind is LlmErrorKind.UNAVAILABLE and "stream ended before" in str(error)


async def test_a_reply_longer_than_the_overall_timeout_is_cut(provider: Provider, fakes: Fakes) -> None:
    events: list = []
    slow = Reply(tokens=("word ",) * 100, token_interval_s=0.05)
    async with fakes.running(provider, [slow], timeout_s=0.4) as (server, model):
        error = await failure(model, into=events)
        await asyncio.wait_for(server.disconnected.wait(), 2)
    assert error.kind is LlmErrorKind.TIMEOUT and "not finished within 0.4 s" in str(error)
    assert 0 < len(events) < 100


async def test_no_first_token_in_time_is_a_timeout_and_drops_the_connection(provider: Provider,
                                                                             fakes: Fakes) -> None:
    late = Reply(first_token_delay_s=5.0)
    async with fakes.running(provider, [late], first_token_timeout_s=0.3) as (server, model):
        error = await failure(model)
        await asyncio.wait_for(server.disconnected.wait(), 2)
    assert error.kind is LlmErrorKind.TIMEOUT and "first token within 0.3 s" in str(error)
    assert server.tokens_sent == 0


async def test_closing_the_stream_closes_the_connection(provider: Provider, fakes: Fakes) -> None:
    async with fakes.running(provider, [Reply(tokens=("word ",) * 100, token_interval_s=0.05)]) as (server, model):
        async with contextlib.aclosing(model.stream(HELLO)) as stream:
            assert await anext(stream) == TextDelta("word ")
        await asyncio.wait_for(server.disconnected.wait(), 2)  # the caller barged in
        assert server.tokens_sent < 100
        # the model is still usable: the next turn opens a new connection
        server.replies = [Reply(tokens=("again",))]
        assert (await collect(model))[0] == TextDelta("again")


async def test_cancelling_the_consumer_closes_the_connection(provider: Provider, fakes: Fakes) -> None:
    first = asyncio.Event()

    async def consume(model) -> None:
        async for _ in model.stream(HELLO):
            first.set()

    async with fakes.running(provider, [Reply(tokens=("word ",) * 100, token_interval_s=0.05)]) as (server, model):
        task = asyncio.create_task(consume(model))
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.disconnected.wait(), 2)
    assert server.tokens_sent < 100


async def test_replies_read_to_their_end_keep_the_connection_for_the_next_turn(provider: Provider,
                                                                              fakes: Fakes) -> None:
    """Each turn on one connection: no TCP (with a real provider, TLS) handshake before the next reply."""
    local_ports: list[int] = []

    async def note_connection(response: httpx.Response) -> None:
        local_ports.append(response.extensions["network_stream"].get_extra_info("client_addr")[1])

    async with httpx.AsyncClient(timeout=None, event_hooks={"response": [note_connection]}) as client:
        async with fakes.running(provider, [Reply(tokens=("Hel", "lo"))], http_client=client) as (server, model):
            for _ in range(3):
                assert isinstance((await collect(model))[-1], Finished)
    assert len(local_ports) == 3 and len(set(local_ports)) == 1, local_ports


async def test_no_server_is_unavailable(provider: Provider) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = provider.engine_model.partition(".")[0]
    path = provider.path
    model = create_chat_model(provider.engine_model, api_key="k", base_urls={name: f"http://127.0.0.1:{port}{path}"})
    error = await failure(model)
    await model.aclose()
    assert error.kind is LlmErrorKind.UNAVAILABLE


async def test_a_history_with_dict_tool_calls_is_accepted(provider: Provider, fakes: Fakes) -> None:
    """A history as the AI talk loop keeps it (tool calls as dicts) is accepted by the provider."""
    history = [
        ChatMessage("system", "Be brief."),
        ChatMessage("assistant", "Hello, how can I help?"),  # the AI greeted first
        ChatMessage("user", "Put me through to sales."),
        ChatMessage("assistant", "", tool_calls=[{"id": "call_1", "name": "connect_call", "arguments": ARGUMENTS}]),
        ChatMessage("tool", '{"status": "ringing"}', tool_call_id="call_1"),
        ChatMessage("user", "Thanks"),
    ]
    async with fakes.running(provider, [Reply(tokens=("Bye",))]) as (server, model):
        events = await collect(model, history)
    assert server.rejected == [] and events[0] == TextDelta("Bye")
