"""WorkerPool: jobs run in other processes, a dead worker is replaced, shutdown is final."""

import asyncio
import os
import signal

import pytest

from voipbin.speech.errors import SpeechProviderError
from voipbin.speech.workers import WorkerPool, crash_worker, worker_pid


def pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_jobs_run_in_worker_processes_not_the_event_loops() -> None:
    pool = WorkerPool("test", size=2)
    try:
        pids = set(await pool.run_all(worker_pid))
        assert len(pids) == 2 and os.getpid() not in pids
        assert set(pool.pids()) == pids
        assert await pool.run(worker_pid, worker=1) == await pool.run(worker_pid, worker=1)  # pinned
    finally:
        await pool.aclose()


async def test_thread_mode_runs_in_this_process() -> None:
    pool = WorkerPool("test", mode="thread")
    try:
        assert await pool.run(worker_pid) == os.getpid()
    finally:
        await pool.aclose()


async def test_a_job_that_kills_its_worker_fails_clearly_and_the_next_job_succeeds() -> None:
    pool = WorkerPool("test")
    try:
        first = await pool.run(worker_pid)
        with pytest.raises(SpeechProviderError, match="died"):
            await pool.run(crash_worker)  # crashes the replacement too: retried once, then fails
        second = await pool.run(worker_pid)
        assert second != first and pid_is_alive(second)
    finally:
        await pool.aclose()


async def test_a_worker_killed_while_idle_is_replaced_for_the_next_job() -> None:
    pool = WorkerPool("test")
    try:
        pid = await pool.run(worker_pid)
        os.kill(pid, signal.SIGKILL)
        replacement = await asyncio.wait_for(pool.run(worker_pid), 30)
        assert replacement != pid
    finally:
        await pool.aclose()


async def test_shutdown_stops_the_workers_and_later_jobs_fail() -> None:
    pool = WorkerPool("test")
    pid = await pool.run(worker_pid)
    await pool.aclose()
    assert not pid_is_alive(pid)
    with pytest.raises(SpeechProviderError, match="shut down"):
        await pool.run(worker_pid)


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError):
        WorkerPool("test", mode="fiber")  # type: ignore[arg-type]


def test_a_worker_does_not_import_the_programs_main_module(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """multiprocessing's spawn re-ran the server's main module (voipbin.cli: ~40 MiB) in every worker;
    a worker imports only what its initializer and jobs need, and gets the parent's sys.path."""
    import subprocess
    import sys

    (tmp_path / "helper_module.py").write_text("import os\n\ndef pid():\n    return os.getpid()\n")
    script = tmp_path / "main_script.py"
    script.write_text(f"""
import asyncio, os, sys
sys.path.insert(0, {str(tmp_path)!r})
with open({str(tmp_path / "imports.log")!r}, "a") as f:
    f.write(f"{{os.getpid()}}\\n")
from helper_module import pid
from voipbin.speech.workers import WorkerPool

async def main():
    pool = WorkerPool("main-test")
    print(await pool.run(pid), flush=True)
    await pool.aclose()

if __name__ == "__main__":
    asyncio.run(main())
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True)
    worker = int(out.stdout.split()[-1])
    importers = (tmp_path / "imports.log").read_text().split()
    assert importers == [importers[0]] and int(importers[0]) != worker  # the main script ran once: in the parent
