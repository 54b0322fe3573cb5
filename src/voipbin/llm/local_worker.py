"""The offline model's side that runs in its worker process (:mod:`voipbin.llm.local` is the other).

Plain module-level functions, run by a :class:`~voipbin.speech.workers.WorkerPool` process worker
(picklable by reference): :func:`load` is the worker's initializer (llama.cpp and the model are
loaded only here, never in the server's process), then each reply is :func:`start`, :func:`take`
until an :class:`End`, and :func:`stop` when its consumer goes away early.

A reply is generated on a thread of the worker (llama.cpp releases the GIL while it computes) into a
queue; :func:`take` hands over what is there, so the tokens flow while the parent reads the last
batch. One reply at a time (a llama context is not thread-safe): :func:`start` stops the one before,
if its consumer left without :func:`stop`. A stopped reply ends at its next token.
"""

from __future__ import annotations

import atexit
import itertools
import queue
import threading
from dataclasses import dataclass
from typing import Any

from voipbin.llm.base import Finished, FinishReason, LlmErrorKind, TextDelta, Usage


@dataclass(frozen=True, slots=True)
class Failed:
    """The reply failed in the worker (an exception's type and message, as data: it crosses the pipe)."""

    kind: LlmErrorKind
    message: str


@dataclass(frozen=True, slots=True)
class End:
    """No more events for this reply (after :class:`~voipbin.llm.base.Finished` or :class:`Failed`)."""


Item = TextDelta | Usage | Finished | Failed | End

_model: Any = None
_ids = itertools.count(1)


@dataclass
class _Reply:
    id: int
    items: queue.SimpleQueue[Item]
    stop: threading.Event
    thread: threading.Thread | None = None


_current: _Reply | None = None


def load(model_path: str, context_tokens: int, threads: int) -> None:
    """Worker initializer: load the GGUF model once and write one token, so the first reply is not the
    slow one (llama.cpp's first decode costs ~3 s of CPU on the dev machine, later ones milliseconds);
    free it at exit (llama.cpp's destructor needs modules the interpreter's teardown removes)."""
    global _model
    from llama_cpp import Llama

    _model = Llama(model_path=model_path, n_ctx=context_tokens, n_threads=threads, verbose=False)
    atexit.register(_close)
    _model.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=1)


def _close() -> None:
    global _model
    if _model is not None:
        _model.close()
        _model = None


def start(chat: list[dict[str, str]], max_tokens: int, temperature: float) -> int:
    """Begin a reply to ``chat`` (``[{"role", "content"}]``); its id for :func:`take` and :func:`stop`."""
    global _current
    if _current is not None:
        _halt(_current)
    reply = _current = _Reply(next(_ids), queue.SimpleQueue(), threading.Event())
    reply.thread = threading.Thread(
        target=_generate, args=(reply, chat, max_tokens, temperature), name=f"llm-reply-{reply.id}", daemon=True
    )
    reply.thread.start()
    return reply.id


def take(reply_id: int, wait_s: float) -> list[Item]:
    """The reply's events so far: waits up to ``wait_s`` seconds for the first one, then takes what
    else is there ([] on no news). An unknown or replaced reply is an :class:`End`."""
    reply = _current
    if reply is None or reply.id != reply_id:
        return [End()]
    try:
        items = [reply.items.get(timeout=wait_s)]
    except queue.Empty:
        return []
    while not isinstance(items[-1], End):
        try:
            items.append(reply.items.get_nowait())
        except queue.Empty:
            break
    return items


def stop(reply_id: int) -> None:
    """Stop the reply (at its next token); nothing if it is over or replaced already."""
    if _current is not None and _current.id == reply_id:
        _halt(_current)


def _halt(reply: _Reply) -> None:
    reply.stop.set()
    if reply.thread is not None:
        reply.thread.join()


def _generate(reply: _Reply, chat: list[dict[str, str]], max_tokens: int, temperature: float) -> None:
    put = reply.items.put
    try:
        if _model is None:
            raise RuntimeError("the model is not loaded")
        completion = 0
        for chunk in _model.create_chat_completion(
            messages=chat, stream=True, max_tokens=max_tokens, temperature=temperature
        ):
            if reply.stop.is_set():
                return
            choice = chunk["choices"][0]
            text = choice.get("delta", {}).get("content")
            if text:
                completion += 1
                put(TextDelta(text))
            if choice.get("finish_reason"):
                prompt = len(_model.tokenize("\n".join(m["content"] for m in chat).encode()))
                put(Usage(prompt, completion))
                put(Finished(FinishReason.LENGTH if choice["finish_reason"] == "length" else FinishReason.STOP))
    except Exception as exc:  # handed to the consumer as data
        put(Failed(LlmErrorKind.SERVER, f"{type(exc).__name__}: {exc}"))
    finally:
        put(End())
