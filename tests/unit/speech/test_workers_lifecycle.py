"""Speech worker lifecycle: recycled after N jobs or above an RSS ceiling (stateless pools only),
and never orphaned: workers exit when their parent is SIGKILLed, even in the middle of a job."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

from voipbin.speech.workers import WorkerPool, hold_memory, recyclable, worker_pid


def alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        await asyncio.sleep(0.05)  # another process's exit: nothing to await
    return False


async def test_a_worker_is_recycled_after_max_jobs() -> None:
    pool = WorkerPool("test", max_jobs=3)
    try:
        pids = [await pool.run(worker_pid) for _ in range(7)]
        assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]
        assert pool.recycled == 2
        assert await gone([pids[0], pids[3]], 10)
    finally:
        await pool.aclose()


async def test_a_worker_above_the_rss_ceiling_is_recycled() -> None:
    pool = WorkerPool("test", max_rss_mb=200)
    try:
        first = await pool.run(hold_memory, 20)
        assert await pool.run(worker_pid) == first and pool.recycled == 0  # under the ceiling: kept
        assert await pool.run(hold_memory, 250) == first  # the job that crossed it completes
        assert pool.recycled == 1
        assert await pool.run(worker_pid) != first
        assert await gone([first], 10)
    finally:
        await pool.aclose()


def _stateful_init() -> None:
    pass


@recyclable
def _model_init() -> None:
    """A stateless worker's initializer (whisper-like)."""


async def test_only_recyclable_pools_take_the_default_limits(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("VOIPBIN_SPEECH_WORKER_MAX_JOBS", "2")
    stateful = WorkerPool("vad-like", initializer=_stateful_init)  # per-stream state: never recycled
    stateless = WorkerPool("whisper-like", initializer=recyclable(lambda: None))
    assert (stateful.max_jobs, stateful.max_rss_bytes) == (0, 0)
    assert stateless.max_jobs == 2 and stateless.max_rss_bytes > 0


def test_no_orphans_after_the_parent_is_sigkilled() -> None:
    parent = subprocess.Popen([sys.executable, "-c", """
import asyncio, json, sys, time
from voipbin.speech.workers import WorkerPool, worker_pid

async def main():
    pool = WorkerPool("orphan-test", size=2)
    pids = await pool.run_all(worker_pid)
    busy = asyncio.ensure_future(pool.run(time.sleep, 120, worker=0))  # one worker mid-job
    await asyncio.sleep(0.2)
    print(json.dumps(pids), flush=True)
    await busy

if __name__ == "__main__":
    asyncio.run(main())
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 2 and all(alive(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert asyncio.run(gone(pids, 5)), [p for p in pids if alive(p)]
    finally:
        if parent.poll() is None:
            parent.kill()
        for pid in pids if "pids" in locals() else []:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


async def retired(pool: WorkerPool, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pool.retired >= count:
            return True
        await asyncio.sleep(0.05)  # a timer in the pool: nothing to await from outside
    return False


async def test_idle_workers_beyond_the_warm_one_are_retired_and_restarted_on_demand() -> None:
    pool = WorkerPool("test", size=2, initializer=_model_init, idle_retire_s=0.3)
    try:
        warm, extra = await pool.run_all(worker_pid)
        assert await retired(pool, 1, 10)
        assert pool.pids() == [warm]  # the first worker stays warm
        assert await gone([extra], 10)
        assert await pool.run(worker_pid, worker=0) == warm
        assert await pool.run(worker_pid, worker=1) not in (warm, extra)  # started on demand
    finally:
        await pool.aclose()


async def test_a_busy_worker_is_not_retired_and_best_effort_pools_keep_none_warm() -> None:
    pool = WorkerPool("test", initializer=_model_init, idle_retire_s=0.3, idle=True)
    try:
        first = await pool.run(worker_pid)
        assert await pool.run(time.sleep, 0.6) is None and pool.retired == 0  # a job longer than the idle time
        assert await retired(pool, 1, 10)
        assert pool.pids() == [] and await gone([first], 10)
    finally:
        await pool.aclose()


async def test_stateful_pools_are_never_retired_for_idleness() -> None:
    pool = WorkerPool("vad-like", initializer=_stateful_init, keep_warm=0)
    assert pool.idle_retire_s == 0
