"""The media clock: one per process (per event loop), ticking every 20 ms.

Each tick calls ``on_clock_tick(frames, now)`` on every registered listener (the RTP
sessions), which pull one 20 ms frame from their outbound source and send it. Ticks are
paced against absolute deadlines (deadline_n = start + n * 20 ms) on the loop's monotonic
clock, so lateness of one tick never accumulates into drift (DESIGN.md "Audio").

If the loop stalls for more than a whole frame, the missed ticks are not replayed as a
burst: the next tick reports ``frames > 1`` so RTP timestamps stay aligned to real time.

Two timer backends: on Linux a periodic timerfd (kernel high-resolution timer, see
:mod:`.timerfd`) watched by the loop; elsewhere ``loop.call_at`` (1 ms granularity under
uvloop/libuv, so up to +-1 ms of extra send jitter).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Literal, Protocol

from . import timerfd

FRAME_INTERVAL_S = 0.020
#: a timer that fires this much before its deadline is re-armed instead of ticking early
EARLY_TOLERANCE_S = 0.0005

logger = logging.getLogger(__name__)


class ClockListener(Protocol):
    def on_clock_tick(self, frames: int, now: float) -> None:
        """Called once per tick. frames: 20 ms periods since the previous tick (normally 1);
        now: the loop's monotonic time (``loop.time()``, seconds)."""


@dataclass(slots=True)
class ClockStats:
    ticks: int = 0
    skipped_frames: int = 0
    max_lateness_s: float = 0.0
    listener_errors: int = 0


class MediaClock:
    """Drives every outbound stream of one event loop. Use :func:`get_media_clock` to share it."""

    def __init__(
        self,
        interval_s: float = FRAME_INTERVAL_S,
        loop: asyncio.AbstractEventLoop | None = None,
        timer: Literal["auto", "timerfd", "loop"] = "auto",
    ) -> None:
        """timer: "timerfd" (Linux), "loop" (``loop.call_at``) or "auto" (timerfd where available)."""
        self.interval_s = interval_s
        self._loop = loop
        self._use_timerfd = timer == "timerfd" or (timer == "auto" and timerfd.available())
        self._timerfd: timerfd.PeriodicTimerFd | None = None
        self._listeners: dict[int, ClockListener] = {}
        self._snapshot: tuple[ClockListener, ...] = ()
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._deadline_ns = 0
        self._interval_ns = 0
        self.stats = ClockStats()

    @property
    def running(self) -> bool:
        return self._handle is not None or self._timerfd is not None

    @property
    def backend(self) -> str:
        """"timerfd" or "loop"."""
        return "timerfd" if self._use_timerfd else "loop"

    def __len__(self) -> int:
        return len(self._listeners)

    def register(self, listener: ClockListener) -> None:
        """Start calling ``listener`` on every tick; starts the clock if it was idle."""
        self._listeners[id(listener)] = listener
        self._snapshot = tuple(self._listeners.values())
        if not self.running:
            self._start()

    def unregister(self, listener: ClockListener) -> None:
        """Stop calling ``listener``; the clock goes idle when nobody is registered."""
        if self._listeners.pop(id(listener), None) is not None:
            self._snapshot = tuple(self._listeners.values())
        if not self._listeners:
            self.stop()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._timerfd is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._timerfd.fd)
            self._timerfd.close()
            self._timerfd = None

    def _start(self) -> None:
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        if self._use_timerfd:
            fd = timerfd.PeriodicTimerFd()
            interval_ns = round(self.interval_s * 1e9)
            self._deadline_ns = time.monotonic_ns() + interval_ns
            self._interval_ns = interval_ns
            fd.arm(self._deadline_ns, interval_ns)
            loop.add_reader(fd.fd, self._on_timerfd)
            self._timerfd = fd
            return
        self._deadline = loop.time() + self.interval_s
        self._handle = loop.call_at(self._deadline, self._tick)

    def _on_timerfd(self) -> None:
        fd = self._timerfd
        if fd is None:
            return
        expirations = fd.read_expirations()
        if expirations:
            self._deadline_ns += (expirations - 1) * self._interval_ns
            lateness = (time.monotonic_ns() - self._deadline_ns) / 1e9
            if lateness > self.stats.max_lateness_s:
                self.stats.max_lateness_s = lateness
            self._deadline_ns += self._interval_ns
            if expirations > 1:
                self.stats.skipped_frames += expirations - 1
            self._run_listeners(expirations, self._loop.time())  # type: ignore[union-attr]

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        lateness = now - self._deadline
        if lateness < -EARLY_TOLERANCE_S:
            # uvloop/libuv timers have 1 ms granularity and may fire early: wait the rest
            self._handle = loop.call_at(self._deadline, self._tick)
            return
        frames = 1
        if lateness >= self.interval_s:
            missed = int(lateness // self.interval_s)
            frames += missed
            self._deadline += missed * self.interval_s
            self.stats.skipped_frames += missed
        if lateness > self.stats.max_lateness_s:
            self.stats.max_lateness_s = lateness
        self._run_listeners(frames, now)
        self._deadline += self.interval_s
        if self._listeners:
            self._handle = loop.call_at(self._deadline, self._tick)
        else:
            self._handle = None


    def _run_listeners(self, frames: int, now: float) -> None:
        self.stats.ticks += 1
        for listener in self._snapshot:
            try:
                listener.on_clock_tick(frames, now)
            except Exception:  # one broken stream must not stop the others
                self.stats.listener_errors += 1
                logger.exception("media clock listener %r failed", listener)


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock] = weakref.WeakKeyDictionary()


def get_media_clock() -> MediaClock:
    """The one media clock of the running event loop (created on first use).

    Must be called from a coroutine or callback running in that loop (RuntimeError otherwise).
    """
    loop = asyncio.get_running_loop()
    clock = _clocks.get(loop)
    if clock is None:
        clock = _clocks[loop] = MediaClock(loop=loop)
    return clock
