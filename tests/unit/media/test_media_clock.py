"""The media clock: absolute deadlines (no drift), skipped frames on a stall, errors isolated.

The clock's logic is checked on a ManualScheduler the test advances by hand (exact counts, no
sleeping); each real timer backend (``loop.call_at``, timerfd; asyncio and uvloop) keeps one
real-time smoke test, since only the real timer can show it wakes up on time.
"""

import asyncio
import itertools
import time

import pytest
import uvloop

from voipbin.media import timerfd
from voipbin.media.clock import ManualScheduler, MediaClock, get_media_clock


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


def test_no_drift_whatever_each_wake_up_costs() -> None:
    lateness = itertools.cycle([0.0, 0.003, 0.0001, 0.0049, 0.001])  # up to a whole sub-tick late
    scheduler = ManualScheduler(lateness_s=lambda: next(lateness))
    clock = MediaClock(scheduler=scheduler)
    assert clock.backend == "scheduler"
    recorder = Recorder()
    clock.register(recorder)
    scheduler.advance(1.0)
    clock.unregister(recorder)
    # 1 s at 20 ms is exactly 50 frames, each reported once, at the scheduler's time
    assert sum(f for f, _ in recorder.ticks) == 50 and {f for f, _ in recorder.ticks} == {1}
    assert recorder.ticks[0][1] == pytest.approx(1000.005) and not clock.running
    assert all(b - a == pytest.approx(0.02, abs=0.005) for (_, a), (_, b) in zip(recorder.ticks, recorder.ticks[1:]))


def test_stall_reports_skipped_frames_instead_of_burst() -> None:
    scheduler = ManualScheduler()
    clock = MediaClock(scheduler=scheduler)
    recorder = Recorder()
    clock.register(recorder)
    scheduler.advance(0.05)
    scheduler.stall(0.1)  # block the loop for 5 frames
    scheduler.advance(0.05)
    clock.unregister(recorder)
    frames = [f for f, _ in recorder.ticks]
    assert max(frames) == 5 and frames.count(5) == 1 and sum(frames) == 10  # 0.2 s, no burst, no loss
    assert clock.stats.skipped_frames == 4
    assert not clock.running


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b == "timerfd"])
async def test_timerfd_stall_reports_skipped_frames_instead_of_burst(backend: str) -> None:
    clock = MediaClock(timer=backend)
    recorder = Recorder()
    clock.register(recorder)
    await asyncio.sleep(0.05)
    time.sleep(0.1)  # block the loop for 5 frames: the kernel timer counts the expirations
    await asyncio.sleep(0.05)
    clock.unregister(recorder)
    frames = [f for f, _ in recorder.ticks]
    assert max(frames) >= 4
    assert clock.stats.skipped_frames >= 3
    assert not clock.running


def test_failing_listener_does_not_stop_others() -> None:
    class Broken:
        def on_clock_tick(self, frames: int, now: float) -> None:
            raise RuntimeError("boom")

    scheduler = ManualScheduler()
    clock = MediaClock(scheduler=scheduler, slots=1)
    broken, recorder = Broken(), Recorder()
    clock.register(broken)
    clock.register(recorder)
    scheduler.advance(0.1)
    clock.unregister(broken)
    clock.unregister(recorder)
    assert len(recorder.ticks) == 5
    assert clock.stats.listener_errors == 5


def test_listeners_are_spread_over_the_slots_and_each_ticks_every_20_ms() -> None:
    scheduler = ManualScheduler()
    clock = MediaClock(scheduler=scheduler, slots=4)
    recorders = [Recorder() for _ in range(8)]
    for recorder in recorders:
        clock.register(recorder)
    scheduler.advance(0.2)
    starts = sorted({round(r.ticks[0][1] - 1000, 4) for r in recorders})
    assert starts == [0.005, 0.01, 0.015, 0.02]  # four phases, two listeners each
    assert all(len(r.ticks) == 10 and {f for f, _ in r.ticks} == {1} for r in recorders)
    assert clock.time() == scheduler.now


async def test_one_clock_per_loop() -> None:
    assert get_media_clock() is get_media_clock()
