"""Worker pools that run speech inference off the event loop's process.

The Python parts of inference (faster-whisper's feature extraction and decoding loop,
piper's phonemization, Silero VAD through its C extension) hold the GIL: run on a thread,
they delay the event loop by tens of milliseconds. A `WorkerPool` runs them in worker
*processes* instead (``spawn`` start method: safe with the threads the parent already
runs). Each worker is its own single-process executor, so that

* a model loads once per worker (the ``initializer`` runs once in each process);
* a caller may pin work to a worker (per-stream VAD state lives in one worker);
* the least busy worker takes the next job.

A worker that dies (killed, crashed in native code) fails the jobs it held with a
`SpeechProviderError` and is replaced at once: the next job gets a fresh process, so no
caller ever waits on a dead one. ``mode="thread"`` keeps the same API on threads (for
debugging, or platforms where processes are unwelcome).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal, TypeVar

from voipbin.speech.errors import SpeechProviderError

T = TypeVar("T")
WorkerMode = Literal["process", "thread"]
WORKER_MODES = ("process", "thread")


def _init_worker(nice: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    if nice:
        try:
            os.nice(nice)
        except OSError:  # not permitted: run at the default priority
            pass
    if initializer is not None:
        initializer(*initargs)


def worker_pid() -> int:
    """The pid of the process a job runs in (tests use it to prove inference is elsewhere)."""
    return os.getpid()


def crash_worker() -> None:  # pragma: no cover - runs (and dies) in a worker process
    """Kill the worker process running this job, as a native crash would (tests)."""
    os._exit(70)


class WorkerPool:
    """`size` workers, each a process (or thread) that ran ``initializer(*initargs)`` once.

    Args:
        name: the provider name reported in errors (``"whisper"``, ``"piper"``, ``"vad"``).
        size: number of workers (at least 1).
        mode: ``"process"`` (default) or ``"thread"``.
        initializer: loads the model(s) into the worker's globals; must be importable
            (a module-level function) in process mode.
        nice: added to the workers' scheduling niceness (process mode; e.g. interim
            transcription yields the CPU to the final one).
    """

    def __init__(
        self,
        name: str,
        *,
        size: int = 1,
        mode: WorkerMode = "process",
        initializer: Callable[..., None] | None = None,
        initargs: tuple = (),
        nice: int = 0,
    ) -> None:
        if mode not in WORKER_MODES:
            raise ValueError(f"worker mode must be one of {WORKER_MODES}, not {mode!r}")
        self.name = name
        self.mode = mode
        self.size = max(1, size)
        self._initializer = initializer
        self._initargs = initargs
        self._nice = nice
        self._lock = threading.Lock()
        self._executors: list[Executor | None] = [None] * self.size
        self._busy = [0] * self.size
        self._closed = False

    # --- jobs -------------------------------------------------------------------------
    def least_busy(self) -> int:
        """Index of the worker with the fewest jobs in flight."""
        return min(range(self.size), key=self._busy.__getitem__)

    async def run(
        self, fn: Callable[..., T], *args: Any, worker: int | None = None, retry: bool = True
    ) -> T:
        """Run ``fn(*args)`` on a worker (the least busy one unless `worker` is given).

        A worker found dead is replaced; with `retry` (for jobs that may run twice) the job
        then runs once more on the new worker.

        Raises:
            SpeechProviderError: the worker died running the job (twice, with `retry`), or
                the pool is shut down.
        """
        index = self.least_busy() if worker is None else worker % self.size
        self._busy[index] += 1
        try:
            for attempt in range(2 if retry else 1):
                executor = self._executor(index)
                try:
                    return await asyncio.wrap_future(executor.submit(fn, *args))
                except BrokenProcessPool as exc:
                    self._replace(index, executor)
                    error = exc
            raise SpeechProviderError(
                self.name, f"{self.name} worker process died running the job; it was restarted"
            ) from error
        finally:
            self._busy[index] -= 1

    async def run_all(self, fn: Callable[..., T], *args: Any) -> list[T]:
        """Run ``fn(*args)`` once on every worker (warm-up)."""
        return list(await asyncio.gather(*(self.run(fn, *args, worker=i) for i in range(self.size))))

    # --- lifecycle --------------------------------------------------------------------
    def _executor(self, index: int) -> Executor:
        with self._lock:
            if self._closed:
                raise SpeechProviderError(self.name, f"{self.name} workers are shut down")
            executor = self._executors[index]
            if executor is None:
                executor = self._executors[index] = self._new_executor(index)
            return executor

    def _new_executor(self, index: int) -> Executor:
        initargs = (self._nice, self._initializer, self._initargs)
        if self.mode == "thread":
            return ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"{self.name}-{index}",
                initializer=_init_worker,
                initargs=(0, self._initializer, self._initargs),
            )
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=initargs,
        )

    def _replace(self, index: int, broken: Executor) -> None:
        with self._lock:
            if self._executors[index] is broken:
                self._executors[index] = None
        broken.shutdown(wait=False, cancel_futures=True)

    def pids(self) -> list[int]:
        """Pids of the worker processes started so far (process mode)."""
        pids: list[int] = []
        for executor in self._executors:
            if isinstance(executor, ProcessPoolExecutor):
                pids.extend(executor._processes or {})  # noqa: SLF001 - no public accessor
        return pids

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop every worker; jobs not started are cancelled. Later `run` calls fail."""
        with self._lock:
            self._closed = True
            executors, self._executors = self._executors, [None] * self.size
        for executor in executors:
            if executor is not None:
                executor.shutdown(wait=wait, cancel_futures=True)

    async def aclose(self) -> None:
        """`shutdown` without blocking the event loop while the workers exit."""
        await asyncio.get_running_loop().run_in_executor(None, self.shutdown)


_SHARED: dict[tuple, WorkerPool] = {}


def shared_pool(key: tuple, factory: Callable[[], WorkerPool]) -> WorkerPool:
    """The process's pool for `key` (an engine and its configuration), made on first use.

    Engines built twice with the same configuration (a registry's and a one-off one)
    share workers, so a model is loaded once per worker, not once per engine object.
    """
    pool = _SHARED.get(key)
    if pool is None:
        pool = _SHARED[key] = factory()
    return pool


async def close_shared_pool(key: tuple) -> None:
    """Shut the pool for `key` down; the next `shared_pool(key, ...)` starts a new one."""
    pool = _SHARED.pop(key, None)
    if pool is not None:
        await pool.aclose()
