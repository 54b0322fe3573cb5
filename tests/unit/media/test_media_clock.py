"""The media clock: absolute deadlines (no drift), skipped frames on a stall, errors isolated."""

import asyncio
import time

import pytest
import uvloop

from voipbin.media import timerfd
from voipbin.media.clock import MediaClock, get_media_clock


class Recorder:
    def __init__(self) -> None:
        self.ticks: list[tuple[int, float]] = []

    def on_clock_tick(self, frames: int, now: float) -> None:
        self.ticks.append((frames, now))


async def _run_one_second(clock: MediaClock) -> Recorder:
    recorder = Recorder()
    clock.register(recorder)
    start = time.monotonic()
    await asyncio.sleep(1.0)
    clock.unregister(recorder)
    recorder.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
    return recorder


BACKENDS = ["loop", "timerfd"] if timerfd.available() else ["loop"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("use_uvloop", [False, True])
def test_no_drift(use_uvloop: bool, backend: str) -> None:
    runner = uvloop.run if use_uvloop else asyncio.run

    async def main() -> Recorder:
        clock = MediaClock(timer=backend)
        assert clock.backend == backend
        return await _run_one_second(clock)

    recorder = runner(main())
    # 1 s at 20 ms is 50 frames; absolute deadlines keep the count exact whatever each tick costs
    # or however late the loop runs it (a late tick reports frames > 1 instead of losing time)
    frames = sum(f for f, _ in recorder.ticks)
    assert 48 <= frames <= 52, frames
    assert recorder.ticks[0][0] == 1


@pytest.mark.parametrize("backend", BACKENDS)
async def test_stall_reports_skipped_frames_instead_of_burst(backend: str) -> None:
    clock = MediaClock(timer=backend)
    recorder = Recorder()
    clock.register(recorder)
    await asyncio.sleep(0.05)
    time.sleep(0.1)  # block the loop for 5 frames
    await asyncio.sleep(0.05)
    clock.unregister(recorder)
    frames = [f for f, _ in recorder.ticks]
    assert max(frames) >= 4
    assert clock.stats.skipped_frames >= 3
    assert not clock.running


async def test_failing_listener_does_not_stop_others() -> None:
    class Broken:
        def on_clock_tick(self, frames: int, now: float) -> None:
            raise RuntimeError("boom")

    clock = MediaClock()
    broken, recorder = Broken(), Recorder()
    clock.register(broken)
    clock.register(recorder)
    await asyncio.sleep(0.1)
    clock.unregister(broken)
    clock.unregister(recorder)
    assert len(recorder.ticks) >= 3
    assert clock.stats.listener_errors >= 3


async def test_one_clock_per_loop() -> None:
    assert get_media_clock() is get_media_clock()
