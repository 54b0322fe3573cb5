"""The media clock: one per process (per event loop), ticking every 20 ms.

Each tick calls ``on_clock_tick(frames, now)`` on every registered listener (the RTP
sessions), which pull one 20 ms frame from their outbound source and send it. Ticks are
paced against absolute deadlines (deadline_n = start + n * 20 ms) on the loop's monotonic
clock, so lateness of one tick never accumulates into drift (DESIGN.md "Audio").

If the loop stalls for more than a whole frame, the missed ticks are not replayed as a
burst: the next tick reports ``frames > 1`` so RTP timestamps stay aligned to real time.

Listeners are spread over ``slots`` phases of the 20 ms period (4 by default: a timer wake-up
every 5 ms serves a quarter of the streams). Each stream still gets exactly one tick per 20 ms,
at the same phase every time, but a wake-up sends a quarter of the packets, so where a stream's
packet falls inside its wake-up varies four times less (send jitter grows with the work per
wake-up, not with the total).

Two timer backends: on Linux a periodic timerfd (kernel high-resolution timer, see
:mod:`.timerfd`) watched by the loop; elsewhere ``loop.call_at`` (1 ms granularity under
uvloop/libuv, so up to +-1 ms of extra send jitter). A third, for tests and simulations: an
injected :class:`Scheduler` (``time()`` and ``call_at()``, what an event loop offers), e.g. a
:class:`ManualScheduler` that a test advances by hand, so timing is asserted exactly instead of
in wall-clock windows. Listeners read the time with :meth:`MediaClock.time`, whichever the backend.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
import weakref
from dataclasses import dataclass
from collections.abc import Callable
from typing import Literal, Protocol

from . import timerfd

FRAME_INTERVAL_S = 0.020
#: phases of the frame period over which listeners are spread
DEFAULT_SLOTS = 4
#: a timer that fires this much before its deadline is re-armed instead of ticking early
EARLY_TOLERANCE_S = 0.0005

logger = logging.getLogger(__name__)


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Where an injected media clock reads the time and schedules its wake-ups (an event loop is one)."""

    def time(self) -> float:
        """Monotonic time in seconds."""
        ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle:
        """Call ``callback()`` once ``time()`` reaches ``when``; the handle cancels it."""
        ...


class ManualScheduler:
    """A :class:`Scheduler` whose time moves only when told (tests, simulations).

    ``lateness_s()``: how late each wake-up runs after its deadline (a busy loop); 0 by default.
    """

    class Handle:
        __slots__ = ("cancelled",)

        def __init__(self) -> None:
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self, start_s: float = 1000.0, lateness_s: Callable[[], float] = lambda: 0.0) -> None:
        self.now = start_s
        self._queue: list[tuple[float, int, ManualScheduler.Handle, Callable[[], object]]] = []
        self._seq = itertools.count()
        self._lateness_s = lateness_s

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object]) -> ManualScheduler.Handle:
        handle = ManualScheduler.Handle()
        heapq.heappush(self._queue, (when + self._lateness_s(), next(self._seq), handle, callback))
        return handle

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: every wake-up due meanwhile runs, in order, at its own time."""
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end + 1e-9:
            when, _, handle, callback = heapq.heappop(self._queue)
            if not handle.cancelled:
                self.now = max(self.now, when)
                callback()
        self.now = end

    def stall(self, seconds: float) -> None:
        """A blocked loop: ``seconds`` pass and nothing runs (the next :meth:`advance` catches up)."""
        self.now += seconds


class ClockListener(Protocol):
    def on_clock_tick(self, frames: int, now: float) -> None:
        """Called once per tick. frames: 20 ms periods since the previous tick (normally 1);
        now: the clock's monotonic time (:meth:`MediaClock.time`: ``loop.time()`` unless a
        scheduler was injected), in seconds."""


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
        slots: int = DEFAULT_SLOTS,
        scheduler: Scheduler | None = None,
    ) -> None:
        """timer: "timerfd" (Linux), "loop" (``loop.call_at``) or "auto" (timerfd where available);
        slots: phases of the frame period; the timer fires every ``interval_s / slots``;
        scheduler: time and wake-ups from there instead (``timer`` is then ignored)."""
        self.interval_s = interval_s
        self.slots = max(1, slots)
        self._tick_s = interval_s / self.slots
        self._slot_members: list[dict[int, ClockListener]] = [{} for _ in range(self.slots)]
        #: per slot, its listeners' bound ``on_clock_tick`` (the tick walks these: no lookups, no tuples)
        self._slot_snapshots: list[tuple[Callable[[int, float], None], ...]] = [() for _ in range(self.slots)]
        self._slot_of: dict[int, int] = {}
        self._subtick = 0  # index of the next sub-tick (slot = index % slots)
        self._loop = loop
        self._scheduler = scheduler
        self._use_timerfd = scheduler is None and (timer == "timerfd" or (timer == "auto" and timerfd.available()))
        self._timerfd: timerfd.PeriodicTimerFd | None = None
        self._listeners: dict[int, ClockListener] = {}
        self._handle: TimerHandle | None = None
        self._deadline = 0.0
        self._deadline_ns = 0
        self._interval_ns = 0
        self.stats = ClockStats()

    @property
    def running(self) -> bool:
        return self._handle is not None or self._timerfd is not None

    @property
    def backend(self) -> str:
        """"timerfd", "loop" or "scheduler" (injected)."""
        if self._scheduler is not None:
            return "scheduler"
        return "timerfd" if self._use_timerfd else "loop"

    def time(self) -> float:
        """The clock's monotonic time in seconds: the injected scheduler's, else the loop's."""
        source = self._scheduler or self._loop or asyncio.get_running_loop()
        return source.time()

    def __len__(self) -> int:
        return len(self._listeners)

    def phase_s(self, listener: ClockListener) -> float:
        """Where ``listener``'s ticks fall in the 20 ms period: its slot's offset from phase 0, in
        seconds (0 <= phase < interval_s). Raises KeyError for a listener that is not registered."""
        return self._slot_of[id(listener)] * self._tick_s

    def origin_s(self) -> float | None:
        """A deadline of phase 0 (slot 0's tick), in seconds of ``time.monotonic()`` with the timerfd
        backend, else of :meth:`time`; None while the clock is idle. Phase-0 deadlines are this plus
        whole multiples of ``interval_s``; a listener is due ``phase_s(listener)`` after each."""
        if not self.running:
            return None
        pending_phase = (self._subtick % self.slots) * self._tick_s
        if self._timerfd is not None:
            return self._deadline_ns / 1e9 - pending_phase
        return self._deadline - pending_phase

    def register(self, listener: ClockListener) -> None:
        """Start calling ``listener`` every 20 ms (in the least busy phase); starts an idle clock."""
        key = id(listener)
        if key not in self._listeners:
            slot = min(range(self.slots), key=lambda i: len(self._slot_members[i]))
            self._slot_members[slot][key] = listener
            self._snapshot(slot)
            self._slot_of[key] = slot
        self._listeners[key] = listener
        if not self.running:
            self._start()

    def unregister(self, listener: ClockListener) -> None:
        """Stop calling ``listener``; the clock goes idle when nobody is registered."""
        key = id(listener)
        if self._listeners.pop(key, None) is not None:
            slot = self._slot_of.pop(key)
            self._slot_members[slot].pop(key, None)
            self._snapshot(slot)
        if not self._listeners:
            self.stop()

    def _snapshot(self, slot: int) -> None:
        self._slot_snapshots[slot] = tuple(listener.on_clock_tick for listener in self._slot_members[slot].values())

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
        self._subtick = 0
        if self._scheduler is not None:
            self._deadline = self._scheduler.time() + self._tick_s
            self._handle = self._scheduler.call_at(self._deadline, self._tick)
            return
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        if self._use_timerfd:
            fd = timerfd.PeriodicTimerFd()
            interval_ns = round(self._tick_s * 1e9)
            self._deadline_ns = time.monotonic_ns() + interval_ns
            self._interval_ns = interval_ns
            fd.arm(self._deadline_ns, interval_ns)
            loop.add_reader(fd.fd, self._on_timerfd)
            self._timerfd = fd
            return
        self._deadline = loop.time() + self._tick_s
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
            self._run_subticks(expirations, self._loop.time())  # type: ignore[union-attr]

    def _tick(self) -> None:
        timer: Scheduler = self._scheduler or self._loop  # type: ignore[assignment]
        now = timer.time()
        lateness = now - self._deadline
        if lateness < -EARLY_TOLERANCE_S:
            # uvloop/libuv timers have 1 ms granularity and may fire early: wait the rest
            self._handle = timer.call_at(self._deadline, self._tick)
            return
        subticks = 1
        if lateness >= self._tick_s:
            missed = int(lateness // self._tick_s)
            subticks += missed
            self._deadline += missed * self._tick_s
        if lateness > self.stats.max_lateness_s:
            self.stats.max_lateness_s = lateness
        self._run_subticks(subticks, now)
        self._deadline += self._tick_s
        if self._listeners:
            self._handle = timer.call_at(self._deadline, self._tick)
        else:
            self._handle = None

    def _run_subticks(self, subticks: int, now: float) -> None:
        """``subticks`` timer periods have passed: tick every phase that came due, once, with the
        number of its 20 ms frames that passed (more than 1 only after a stall)."""
        self.stats.ticks += 1
        slots = self.slots
        due = [0] * slots
        order: list[int] = []
        for index in range(self._subtick, self._subtick + subticks):
            slot = index % slots
            if not due[slot]:
                order.append(slot)
            due[slot] += 1
        self._subtick += subticks
        for slot in order:
            frames = due[slot]
            listeners = self._slot_snapshots[slot]
            if frames > 1 and listeners:
                self.stats.skipped_frames += frames - 1
            for on_clock_tick in listeners:  # back to back: one burst per slot
                try:
                    on_clock_tick(frames, now)
                except Exception:  # one broken stream must not stop the others
                    self.stats.listener_errors += 1
                    logger.exception("media clock listener %r failed", getattr(on_clock_tick, "__self__", on_clock_tick))


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
