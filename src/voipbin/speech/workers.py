"""Worker pools that run speech inference off the event loop's process.

The Python parts of inference (faster-whisper's feature extraction and decoding loop,
piper's phonemization, Silero VAD through its C extension) hold the GIL: run on a thread,
they delay the event loop by tens of milliseconds. A `WorkerPool` runs them in worker
*processes* instead (``spawn`` start method: safe with the threads the parent already
runs). Each worker is one process, so that

* a model loads once per worker (the ``initializer`` runs once in each process);
* a caller may pin work to a worker (per-stream VAD state lives in one worker);
* the least busy worker takes the next job.

The parent side of a worker is a socket driven by the event loop itself (length-prefixed
pickles): no helper threads in the loop's process (a `ProcessPoolExecutor`'s manager and
feeder threads contend for the GIL, and a helper preempted while holding it stalls the
loop for a whole scheduler slice). Jobs wait their turn in the parent, one in flight per
worker, so a cancelled job that has not started never runs.

A worker that dies (killed, crashed in native code) fails the job it held and is replaced
at once: the job is retried once on the new worker (``retry``), else it fails with a
`SpeechProviderError`; no caller waits on a dead process. ``mode="thread"`` keeps the
same API on threads (debugging, or platforms where processes are unwelcome).

Workers whose only state is their model (the initializer is marked ``recyclable``: whisper and
piper, not VAD, whose per-stream state lives in a worker) are recycled: after ``max_jobs`` jobs
or once their resident memory exceeds ``max_rss_mb`` (``VOIPBIN_SPEECH_WORKER_MAX_JOBS``,
``VOIPBIN_SPEECH_WORKER_MAX_RSS_MB``), a worker with nothing else queued is retired and the next
job starts a fresh one, so native memory growth cannot accumulate. Such workers are also
retired once idle ``idle_retire_s`` (``VOIPBIN_SPEECH_WORKER_IDLE_RETIRE_S``, 60 s), all but the
first ``keep_warm`` of a pool (1: the latency of the next job stays that of a loaded model; 0 for
``idle`` pools, whose best-effort work, interim text, is skipped while a worker loads): an idle
server holds one whisper and one piper worker whatever the pool sizes. A worker process exits
within half a second when its parent dies, even in the middle of a job (it watches its parent
pid), so a SIGKILLed server leaves no orphans.

Workers belong to the event loop that started them; used from another loop (tests run one
loop per test), they are replaced. A worker process is a fresh interpreter that imports only
what its initializer and jobs need (not the program's main module: see
:mod:`voipbin.speech.worker_process`), so jobs and initializers are functions of importable modules.

This module is the pool; one worker (the process's main loop, the socket protocol, the handle
the loop drives it through, the thread equivalent) is :mod:`voipbin.speech.worker_process`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import structlog

from voipbin.speech.errors import SpeechProviderError
from voipbin.speech.worker_process import ProcessWorker, ThreadWorker, Worker, WorkerBusy, WorkerDied

log = structlog.get_logger(__name__)

T = TypeVar("T")
WorkerMode = Literal["process", "thread"]
WORKER_MODES = ("process", "thread")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Overloaded(SpeechProviderError):
    """A job waited longer than its pool's ``max_wait_s`` for a worker: it was shed, never run
    (the workers are behind: more work comes than they can do)."""


def recyclable(initializer: Callable[..., None]) -> Callable[..., None]:
    """Mark a worker initializer whose worker keeps no state but what it loads (a model):
    such workers may be retired and replaced between jobs (see the module docstring)."""
    initializer.recyclable = True  # type: ignore[attr-defined]
    return initializer


def process_rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (Linux ``/proc``); 0 when unknown."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


def worker_pid() -> int:
    """The pid of the process a job runs in (tests use it to prove inference is elsewhere)."""
    return os.getpid()


def crash_worker() -> None:  # pragma: no cover - runs (and dies) in a worker process
    """Kill the worker process running this job, as a native crash would (tests)."""
    os._exit(70)


_HELD: list[bytes] = []


def hold_memory(mib: int) -> int:  # pragma: no cover - runs in a worker process
    """Allocate ``mib`` MiB in the worker and keep it, as a leak would (tests); returns the pid."""
    _HELD.append(os.urandom(mib * 1024 * 1024))
    return os.getpid()


# --- the pool -----------------------------------------------------------------------------


class WorkerPool:
    """`size` workers, each a process (or thread) that ran ``initializer(*initargs)`` once.

    Args:
        name: the provider name reported in errors (``"whisper"``, ``"piper"``, ``"vad"``).
        size: number of workers (at least 1).
        mode: ``"process"`` (default) or ``"thread"``.
        initializer: loads the model(s) into the worker's globals; must be importable
            (a module-level function) in process mode.
        nice: added to the workers' scheduling niceness (process mode), so the event
            loop's process wins the CPU when it wakes (and interims yield to finals).
            Worker processes also run as ``SCHED_BATCH`` (Linux): one that wakes up does
            not preempt the event loop (measured: the longest loop callback while streaming
            went from 2.4-6.5 ms to 0.6-1.4 ms on a busy 2-vCPU machine).
        max_jobs, max_rss_mb: recycle a process worker after this many jobs, or once its
            resident memory exceeds this many MiB (0: never). None: from the speech settings
            when the initializer is `recyclable`, else never.
        max_wait_s: a job whose turn on a worker has not come this many seconds after `run`
            was called is shed: `run` raises `Overloaded` and the job never runs (work worth
            doing only while fresh, e.g. interim text). None: jobs wait as long as it takes; so
            do jobs for a worker that has not answered yet (its model is loading: not overload).
        idle: process workers run as ``SCHED_IDLE`` (Linux): only on CPU time no other thread
            wants, whatever its niceness (work worth doing only with spare capacity: interim
            text, which then never slows a final transcription down).
        pipelined: send a worker its next job while it runs one (see `ProcessWorker.call`):
            for many short jobs (VAD steps of many streams: ~1 ms each, where a round trip per
            job, two process wake-ups, would cap a worker's throughput), at the price of
            cancelled jobs that were sent running anyway.
        idle_retire_s: a process worker of a `recyclable` pool that ran no job this many seconds
            is retired (its memory given back; the next job starts a fresh one), unless it is one
            of the first `keep_warm`. None: ``VOIPBIN_SPEECH_WORKER_IDLE_RETIRE_S`` for recyclable
            pools, else never; 0: never.
        keep_warm: workers never retired for idleness (the pool's first ones). None: 0 for an
            `idle` pool, else 1.
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
        max_jobs: int | None = None,
        max_rss_mb: int | None = None,
        max_wait_s: float | None = None,
        pipelined: bool = False,
        idle: bool = False,
        idle_retire_s: float | None = None,
        keep_warm: int | None = None,
    ) -> None:
        if mode not in WORKER_MODES:
            raise ValueError(f"worker mode must be one of {WORKER_MODES}, not {mode!r}")
        self.name = name
        self.mode = mode
        self.size = max(1, size)
        self._initializer = initializer
        self._initargs = initargs
        self._nice = nice
        self.pipelined = pipelined
        self.idle = idle
        self.max_wait_s = max_wait_s
        self.shed = 0  # jobs shed after max_wait_s
        self._workers: list[Worker | None] = [None] * self.size
        self._busy = [0] * self.size
        self._closed = False
        if (max_jobs is None or max_rss_mb is None or idle_retire_s is None) and getattr(
            initializer, "recyclable", False
        ):
            from voipbin.speech.settings import SpeechSettings

            defaults = SpeechSettings()
            max_jobs = defaults.speech_worker_max_jobs if max_jobs is None else max_jobs
            max_rss_mb = defaults.speech_worker_max_rss_mb if max_rss_mb is None else max_rss_mb
            idle_retire_s = defaults.speech_worker_idle_retire_s if idle_retire_s is None else idle_retire_s
        self.max_jobs = max_jobs or 0
        self.max_rss_bytes = (max_rss_mb or 0) * 1024 * 1024
        self.recycled = 0  # workers retired by the limits
        self.idle_retire_s = idle_retire_s or 0.0
        self.keep_warm = (0 if idle else 1) if keep_warm is None else keep_warm
        self.retired = 0  # workers retired for idleness
        self._idle_timers: list[asyncio.TimerHandle | None] = [None] * self.size

    # --- jobs -------------------------------------------------------------------------
    def least_busy(self) -> int:
        """Index of the worker with the fewest jobs in flight or waiting."""
        return min(range(self.size), key=self._busy.__getitem__)

    async def run(
        self, fn: Callable[..., T], *args: Any, worker: int | None = None, retry: bool = True
    ) -> T:
        """Run ``fn(*args)`` on a worker (the least busy one unless `worker` is given).

        A worker found dead is replaced; with `retry` (for jobs that may run twice) the job
        then runs once more on the new worker. Cancelling the caller drops a job that has
        not started; one running finishes in the worker and its result is discarded.

        Raises:
            Overloaded: the job waited longer than the pool's `max_wait_s` (it never ran).
            SpeechProviderError: the worker died running the job (twice, with `retry`), or
                the pool is shut down.
        """
        index = self.least_busy() if worker is None else worker % self.size
        self._busy[index] += 1
        if (timer := self._idle_timers[index]) is not None:
            timer.cancel()
            self._idle_timers[index] = None
        loop = asyncio.get_running_loop()
        deadline = None if self.max_wait_s is None else loop.time() + self.max_wait_s
        try:
            for _attempt in range(2 if retry else 1):
                current = self._worker(index)
                try:
                    result = await current.call(  # no shedding behind a model still loading
                        fn, args, pipelined=self.pipelined,
                        max_wait_s=None if deadline is None or not current.ready else deadline - loop.time(),
                    )
                except WorkerBusy:
                    self.shed += 1
                    raise Overloaded(
                        self.name, f"{self.name} workers busy: the job waited over {self.max_wait_s} s and was shed"
                    ) from None
                except WorkerDied:
                    self._discard(index, current)
                else:
                    self._maybe_recycle(index, current)
                    return result
            raise SpeechProviderError(
                self.name, f"{self.name} worker process died running the job; it was restarted"
            )
        finally:
            self._busy[index] -= 1
            if not self._busy[index] and self.idle_retire_s and index >= self.keep_warm and not self._closed:
                self._idle_timers[index] = loop.call_later(self.idle_retire_s, self._retire_idle, index)

    async def run_all(self, fn: Callable[..., T], *args: Any) -> list[T]:
        """Run ``fn(*args)`` once on every worker (warm-up)."""
        return list(await asyncio.gather(*(self.run(fn, *args, worker=i) for i in range(self.size))))

    # --- lifecycle --------------------------------------------------------------------
    def _worker(self, index: int) -> Worker:
        if self._closed:
            raise SpeechProviderError(self.name, f"{self.name} workers are shut down")
        current = self._workers[index]
        if current is not None and (
            current.dead or (isinstance(current, ProcessWorker) and current.loop is not asyncio.get_running_loop())
        ):
            self._discard(index, current)  # died, or talks to another (finished) event loop
            current = None
        if current is None:
            if self.mode == "thread":
                current = ThreadWorker(f"{self.name}-{index}", self._initializer, self._initargs)
            else:
                current = ProcessWorker(self.name, self._nice, self._initializer, self._initargs, idle=self.idle)
            self._workers[index] = current
        return current

    def _maybe_recycle(self, index: int, current: Worker) -> None:
        """Retire a process worker past its job count or memory ceiling, if no other job waits
        for it (the next job starts a fresh worker)."""
        if not isinstance(current, ProcessWorker) or self._busy[index] > 1 or self._workers[index] is not current:
            return
        reason = ""
        if self.max_jobs and current.jobs >= self.max_jobs:
            reason = f"{current.jobs} jobs"
        elif self.max_rss_bytes and current.pid and (rss := process_rss_bytes(current.pid)) > self.max_rss_bytes:
            reason = f"rss {rss // (1024 * 1024)} MiB"
        if not reason:
            return
        log.info("speech worker recycled", pool=self.name, pid=current.pid, reason=reason)
        self._workers[index] = None
        self.recycled += 1
        current.close()  # idle: it exits at once; reaped off the loop
        _reap_later(current)

    def _retire_idle(self, index: int) -> None:
        """Retire worker `index` after `idle_retire_s` without a job (the next job starts a new one)."""
        self._idle_timers[index] = None
        current = self._workers[index]
        if self._busy[index] or not isinstance(current, ProcessWorker) or current.dead:
            return
        log.info("idle speech worker retired", pool=self.name, pid=current.pid, idle_s=self.idle_retire_s)
        self._workers[index] = None
        self.retired += 1
        current.close()
        _reap_later(current)

    def _discard(self, index: int, current: Worker) -> None:
        if self._workers[index] is current:
            self._workers[index] = None
        current.kill()
        if isinstance(current, ProcessWorker) and current.pid is not None:
            with contextlib.suppress(Exception):
                current.process.join(0)  # reap it if it is gone already

    @property
    def ready(self) -> bool:
        """Every worker is up with its model loaded (it answered a job)."""
        return all(w is not None and w.ready and not w.dead for w in self._workers)

    def pids(self) -> list[int]:
        """Pids of the live worker processes (process mode)."""
        return [w.pid for w in self._workers if isinstance(w, ProcessWorker) and not w.dead and w.pid]

    def _take_all(self) -> list[Worker]:
        self._closed = True
        for timer in self._idle_timers:
            if timer is not None:
                timer.cancel()
        self._idle_timers = [None] * self.size
        workers = [w for w in self._workers if w is not None]
        self._workers = [None] * self.size
        for w in workers:
            w.close()
        return workers

    def shutdown(self, *, timeout: float = 5.0) -> None:
        """Stop every worker (blocking until they exit). Later `run` calls fail."""
        for w in self._take_all():
            w.join(timeout)

    async def aclose(self, *, timeout: float = 5.0) -> None:
        """`shutdown` without blocking the event loop while the workers exit."""
        workers = self._take_all()
        if workers:
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(None, w.join, timeout) for w in workers))


_SHARED: dict[tuple, WorkerPool] = {}
_BACKGROUND: set[asyncio.Task] = set()


def _reap_later(worker: ProcessWorker) -> None:
    """Join a closed worker process from a thread (its exit takes a moment; never on the loop)."""
    task = asyncio.get_running_loop().create_task(asyncio.to_thread(worker.join, 5.0))
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def prestart(*pools: WorkerPool) -> None:
    """Start the pools' workers (each loads its model) in the background, when called in
    a running event loop: an engine built on a request's path then has its model loaded
    by the time its first job comes, without blocking the loop. No-op without a loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return

    pools = tuple(pool for pool in pools if not pool.ready)
    if not pools:
        return

    async def start() -> None:
        for pool in pools:
            with contextlib.suppress(Exception):  # the first real job reports any failure
                await pool.run_all(worker_pid)

    task = loop.create_task(start())
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


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
