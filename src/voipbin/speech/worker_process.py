"""One worker of a :class:`voipbin.speech.workers.WorkerPool`: the spawned process (its main loop),
the handle the event loop drives it through (:class:`ProcessWorker`), and the thread-mode
equivalent (:class:`ThreadWorker`). The pool's policy (placement, retry, recycling, shared pools)
is in :mod:`voipbin.speech.workers`.

A process worker and its parent talk over a socket pair: each message is an 8-byte big-endian
length and a pickle. The parent sends ``(fn, args)``; the worker answers ``(ok, value)`` (the
result, or the exception raised), one job at a time, in order. The worker exits when the parent
hangs up, or within :data:`PARENT_CHECK_INTERVAL_S` of the parent's death (it watches its parent pid).

A worker is a fresh interpreter (``python -c``, like multiprocessing's ``spawn``) that imports only
this module and what its initializer and jobs need: the parent sends the socket's first message,
its ``sys.path`` and the initializer, over the socket it passes to the child. multiprocessing's
``spawn`` also re-imports the parent's main module in every worker (for ``voipbin sandbox``:
``voipbin.cli``, the whole server: ~40 MiB a worker) and starts a resource-tracker process;
neither happens here. A job's function must be importable by module name (not defined in a
script's ``__main__``).

A worker gives freed heap memory back to the system (``malloc_trim``, every glibc arena) once it
has been idle :data:`TRIM_AFTER_IDLE_S` (~2 ms; the next job then costs ~3 ms more CPU in
page faults). Measured with ``bench/transcribe_capacity.py --idle`` (PSS of a tiny.en whisper worker):
~175 MiB spawned by multiprocessing, ~120 MiB as a fresh interpreter with the trim.
A fork server sharing the imported libraries between workers was tried and dropped: the workers'
writes (reference counts, allocations in the shared heap) copied most of its pages, and the
~44 MiB it held itself ate the ~12 MiB a worker it saved.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_HEADER = struct.Struct("!Q")
PARENT_CHECK_INTERVAL_S = 0.5
TRIM_AFTER_IDLE_S = 2.0
"""A worker idle this long (no job) gives its freed heap memory back to the system (``malloc_trim``)."""


# --- in the worker process ----------------------------------------------------------------


def _exit_with_parent(parent_pid: int) -> None:
    """In a worker: exit as soon as the parent is gone (re-parented), even while a job runs."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_INTERVAL_S)
        os._exit(0)

    if os.getppid() != parent_pid:  # died before we got here
        os._exit(0)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None)


def _trim_heap() -> None:
    with contextlib.suppress(Exception):
        _libc().malloc_trim(0)


def _lower_priority(nice: int, batch: bool, idle: bool = False) -> None:
    """Renice every thread of this process (threads started at import time, e.g. BLAS
    pools, included; threads started later inherit) and make them ``SCHED_BATCH``, or
    ``SCHED_IDLE`` with `idle` (they run only on CPU time no other thread wants)."""
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:  # not Linux
        threads = [0]
    policy = getattr(os, "SCHED_IDLE" if idle else "SCHED_BATCH", None) if batch or idle else None
    for tid in threads:
        with contextlib.suppress(OSError):  # not permitted, or the thread is gone
            if nice:
                os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
            if policy is not None:
                os.sched_setscheduler(tid, policy, os.sched_param(0))


def _name_process(name: str) -> None:
    """Show ``name`` as this process's command name (``ps``, ``top``, ``/proc/<pid>/comm``; Linux,
    15 bytes at most), so that each pool's workers can be told apart from the outside."""
    with contextlib.suppress(Exception):  # not Linux, or no libc: the name is cosmetic
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def _init_worker(nice: int, initializer: Callable[..., None] | None, initargs: tuple, batch: bool = False,
                 idle: bool = False) -> None:
    if nice or batch or idle:
        _lower_priority(nice, batch, idle)
    if initializer is not None:
        initializer(*initargs)


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _dumps_reply(ok: bool, value: Any) -> bytes:
    try:
        payload = pickle.dumps((ok, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an unpicklable result or exception
        payload = pickle.dumps((False, RuntimeError(repr(value))), protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def _serve(sock: socket.socket, nice: int, initializer: Callable[..., None] | None, initargs: tuple,
           parent_pid: int | None = None, name: str = "", idle: bool = False) -> None:
    """Worker process main: run the initializer, then answer jobs until the parent hangs up
    (or dies: see `_exit_with_parent`). ``name``: the process's command name (``vb-<pool>``)."""
    if name:
        _name_process(name)
    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    init_error: BaseException | None = None
    try:
        _init_worker(nice, initializer, initargs, batch=True, idle=idle)
    except BaseException as exc:  # every job reports it: no restart loop on a broken model
        init_error = exc
    trimmed = False
    while True:
        if not trimmed and not select.select([sock], [], [], TRIM_AFTER_IDLE_S)[0]:
            _trim_heap()  # idle: no job for a while
            trimmed = True
        try:
            (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
            fn, args = pickle.loads(_recv_exactly(sock, size))
        except (EOFError, OSError):
            return
        trimmed = False
        if init_error is not None:
            reply = _dumps_reply(False, init_error)
        else:
            try:
                reply = _dumps_reply(True, fn(*args))
            except BaseException as exc:
                reply = _dumps_reply(False, exc)
        try:
            sock.sendall(reply)
        except OSError:
            return


def main() -> None:
    """A worker process's entry point (``python -c``): read the bootstrap message from the socket
    whose descriptor is ``argv[1]`` (the parent's ``sys.path``, then `_serve`'s arguments), then serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C in a terminal: the server stops its workers
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
        path, payload = pickle.loads(_recv_exactly(sock, size))
    except (EOFError, OSError):
        return
    sys.path[:] = path
    _serve(sock, *pickle.loads(payload))


# --- the parent side ----------------------------------------------------------------------


_BOOT = "from voipbin.speech.worker_process import main; main()"


class _Child:
    """A worker's process, not started yet (`start`), then running, then reaped (`join`)."""

    def __init__(self, sock: socket.socket, bootstrap: tuple) -> None:
        self._sock = sock
        self._payload = pickle.dumps(bootstrap, protocol=pickle.HIGHEST_PROTOCOL)
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def start(self) -> None:
        """Start the interpreter with the socket and send it the bootstrap message (blocking)."""
        fd = self._sock.fileno()
        self._popen = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(fd)], pass_fds=(fd,), stdin=subprocess.DEVNULL
        )

    def join(self, timeout: float | None = None) -> None:
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout)

    def is_alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def kill(self) -> None:
        if self._popen is not None and self._popen.poll() is None:
            with contextlib.suppress(OSError):
                self._popen.kill()

    def bootstrap(self) -> bytes:
        """The first message on the parent's end of the socket: ``(sys.path, pickled arguments)``."""
        body = pickle.dumps((list(sys.path), self._payload), protocol=pickle.HIGHEST_PROTOCOL)
        return _HEADER.pack(len(body)) + body


class WorkerDied(Exception):
    """The worker is gone (exited, killed, or could not be spawned): its job got no answer."""


class WorkerBusy(Exception):
    """The job's turn on the worker did not come in time: it was not run."""


async def _take_turn(turn: asyncio.Lock, max_wait_s: float | None) -> None:
    if max_wait_s is None:
        await turn.acquire()
        return
    try:
        await asyncio.wait_for(turn.acquire(), max(0.0, max_wait_s))
    except TimeoutError:
        raise WorkerBusy from None


class _Replies(asyncio.Protocol):
    """Parses the worker's replies and resolves the jobs in flight, in order."""

    def __init__(self, worker: ProcessWorker) -> None:
        self._worker = worker
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer)
            end = _HEADER.size + size
            if len(buffer) < end:
                return
            ok, value = pickle.loads(memoryview(buffer)[_HEADER.size : end])
            del buffer[:end]
            self._worker.on_reply(ok, value)

    def connection_lost(self, exc: Exception | None) -> None:
        self._worker.on_lost()


class ProcessWorker:
    """One worker process (a fresh interpreter: see the module docstring) and the socket the event
    loop talks to it over."""

    def __init__(self, name: str, nice: int, initializer: Callable[..., None] | None, initargs: tuple,
                 idle: bool = False) -> None:
        self.loop = asyncio.get_running_loop()
        parent, child = socket.socketpair()
        self.process = _Child(child, (nice, initializer, initargs, os.getpid(), f"vb-{name}", idle))
        self._child_sock = child
        self._started: asyncio.Future | None = None
        self._sock = parent
        self._transport: asyncio.Transport | None = None
        self._inflight: collections.deque[asyncio.Future] = collections.deque()
        self._turn = asyncio.Lock()
        self.dead = False
        self.ready = False  # answered a job: the initializer (model load) is done
        self.jobs = 0  # jobs answered

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _start(self) -> None:
        try:
            self.process.start()
            self._sock.sendall(self.process.bootstrap())  # the child waits for it
        finally:
            self._child_sock.close()

    async def _connect(self) -> asyncio.Transport:
        if self._transport is None:
            if self._started is None:  # once, even if the caller is cancelled meanwhile
                # from a thread: spawning (fork/exec of a big process) would block the loop ms
                self._started = asyncio.ensure_future(asyncio.to_thread(self._start))
            try:
                await asyncio.shield(self._started)
            except Exception as exc:  # could not spawn: a dead worker (replaced, retried once)
                self.dead = True
                raise WorkerDied from exc
            if self._transport is not None or self.dead:
                return self._transport  # type: ignore[return-value]
            self._sock.setblocking(False)
            transport, _ = await self.loop.create_connection(lambda: _Replies(self), sock=self._sock)
            self._transport = transport  # type: ignore[assignment]
        return self._transport  # type: ignore[return-value]

    async def call(self, fn: Callable[..., T], args: tuple, *, pipelined: bool = False,
                   max_wait_s: float | None = None) -> T:
        """Run ``fn(*args)`` in the worker. One job is in flight at a time, so a job cancelled while
        waiting for its turn never runs; ``pipelined`` jobs only wait for their turn to be *sent*:
        the worker then finds the next job already in its socket when it answers one (no round trip
        per job; for many short jobs, e.g. VAD steps), and such a job runs even if cancelled.

        Raises:
            WorkerBusy: its turn did not come within ``max_wait_s`` (the job never ran).
            WorkerDied: the worker is gone.
        """
        payload = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        await _take_turn(self._turn, max_wait_s)
        try:
            if self.dead:
                raise WorkerDied
            transport = await self._connect()
            if self.dead:
                raise WorkerDied
            reply = self.loop.create_future()
            self._inflight.append(reply)
            transport.write(_HEADER.pack(len(payload)) + payload)
        except BaseException:
            self._turn.release()
            raise
        if pipelined:
            self._turn.release()
        else:
            reply.add_done_callback(lambda _: self._turn.release())
        ok, value = await reply
        if not ok:
            raise value
        return value

    def on_reply(self, ok: bool, value: Any) -> None:
        self.ready = True
        self.jobs += 1
        reply = self._inflight.popleft()
        if not reply.done():  # else the caller was cancelled meanwhile
            reply.set_result((ok, value))

    def on_lost(self) -> None:
        self.dead = True
        while self._inflight:
            reply = self._inflight.popleft()
            if not reply.done():
                reply.set_exception(WorkerDied())

    def close(self) -> None:
        """Hang up: the worker exits after the job it is running."""
        self.dead = True
        if self._transport is not None and not self.loop.is_closed():
            self._transport.close()
        else:
            self._sock.close()

    def kill(self) -> None:
        self.close()
        with contextlib.suppress(Exception):
            self.process.kill()

    def join(self, timeout: float) -> None:
        if self.process.pid is None:
            return  # never started
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(1)


class ThreadWorker:
    """The thread-mode equivalent: a one-thread executor that ran the initializer."""

    def __init__(self, name: str, initializer: Callable[..., None] | None, initargs: tuple) -> None:
        self.loop = asyncio.get_running_loop()
        self.dead = False
        self.ready = False
        self.pid: int | None = None
        self._turn = asyncio.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=name, initializer=_init_worker, initargs=(0, initializer, initargs)
        )

    async def call(self, fn: Callable[..., T], args: tuple, *, pipelined: bool = False,
                   max_wait_s: float | None = None) -> T:
        """As `ProcessWorker.call` (one thread: jobs run in order, pipelined or not)."""
        await _take_turn(self._turn, max_wait_s)
        try:
            return await asyncio.wrap_future(self._executor.submit(fn, *args))
        finally:
            self._turn.release()
            self.ready = True

    def close(self) -> None:
        self.dead = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    kill = close

    def join(self, timeout: float) -> None:
        self._executor.shutdown(wait=True)


Worker = ProcessWorker | ThreadWorker
"""What a pool holds in each slot, whichever its mode."""
