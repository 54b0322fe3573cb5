"""WorkerPool under overload: jobs that cannot start in time are shed (``max_wait_s``: `Overloaded`,
never run), and a pipelined pool sends a worker its next jobs while it runs one."""

import asyncio
import os
import time
from pathlib import Path

import pytest

from voipbin.speech.errors import SpeechProviderError
from voipbin.speech.workers import Overloaded, WorkerPool, worker_pid


@pytest.mark.parametrize("mode", ["process", "thread"])
async def test_a_job_not_started_within_max_wait_is_shed_and_never_runs(mode: str, tmp_path: Path) -> None:
    pool = WorkerPool("test", mode=mode, max_wait_s=0.2)  # type: ignore[arg-type]
    marker = tmp_path / "ran"
    try:
        await pool.run(worker_pid)  # started and warm
        busy = asyncio.ensure_future(pool.run(time.sleep, 1.5))  # holds the only worker ...
        await asyncio.sleep(0)  # ... once it has taken its turn (one step of the loop)
        with pytest.raises(Overloaded, match="shed") as caught:
            await pool.run(marker.touch)
        assert isinstance(caught.value, SpeechProviderError)  # callers that handle provider errors see it
        await busy
        assert await pool.run(worker_pid)  # the worker is free again: the next job runs
        assert not marker.exists() and pool.shed == 1
    finally:
        await pool.aclose()


async def test_without_max_wait_a_job_waits_its_turn() -> None:
    pool = WorkerPool("test")
    try:
        await pool.run(worker_pid)
        busy = asyncio.ensure_future(pool.run(time.sleep, 0.5))
        await asyncio.sleep(0)  # it takes its turn first
        assert await pool.run(worker_pid) != os.getpid()
        await busy
        assert pool.shed == 0
    finally:
        await pool.aclose()


async def test_a_pipelined_pool_answers_every_job_in_order() -> None:
    pool = WorkerPool("test", pipelined=True)
    try:
        results = await asyncio.gather(*(pool.run(abs, -i) for i in range(300)))
        assert results == list(range(300))
        assert pool.ready
    finally:
        await pool.aclose()


async def test_jobs_behind_a_model_still_loading_are_not_shed() -> None:
    pool = WorkerPool("test", max_wait_s=0.05, initializer=time.sleep, initargs=(1.0,))  # a 1 s "model load"
    try:
        pids = await asyncio.gather(*(pool.run(worker_pid) for _ in range(3)))
        assert len(set(pids)) == 1 and pool.shed == 0
    finally:
        await pool.aclose()


async def test_idle_workers_run_only_on_spare_cpu() -> None:
    idle, batch = WorkerPool("test", idle=True), WorkerPool("test")
    try:
        assert os.sched_getscheduler(await idle.run(worker_pid)) == os.SCHED_IDLE
        assert os.sched_getscheduler(await batch.run(worker_pid)) == os.SCHED_BATCH
    finally:
        await idle.aclose()
        await batch.aclose()
