"""The fake servers themselves, as a bench or a server process uses them (from another thread)."""

from __future__ import annotations

import contextlib

from tests_support.llm_servers import API_KEY, LlmServer, Reply, openai_app, serve_in_thread

from voipbin.llm import Finished, TextDelta, create_chat_model

from .providers import HELLO


async def test_a_server_in_its_own_thread_answers_by_a_function_of_the_request() -> None:
    def echo(body: dict) -> Reply:
        return Reply(tokens=("You said:", " " + body["messages"][-1]["content"]), first_token_delay_s=0.15)

    server = LlmServer(echo)
    with serve_in_thread(openai_app(server)) as url:
        model = create_chat_model("local.smollm2", api_key=API_KEY, base_urls={"local": url + "/v1"})
        async with contextlib.aclosing(model.stream(HELLO)) as stream:
            events = [event async for event in stream]
        await model.aclose()
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("You said:"), TextDelta(" Hi there")]
    assert isinstance(events[-1], Finished) and server.completed == 1 and server.rejected == []
