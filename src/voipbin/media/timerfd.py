"""A periodic Linux timerfd (timerfd_create(2)) for the media clock.

libuv (uvloop) and asyncio timers have 1 ms granularity, which alone costs up to +-1 ms of
send jitter. A timerfd armed with an absolute start and a 20 ms interval on
CLOCK_MONOTONIC fires on the kernel's high-resolution timer grid (no drift), and reading
it returns the number of expirations since the last read (missed ticks included).

Python gained ``os.timerfd_create`` in 3.13; on 3.11/3.12 the libc calls go through ctypes.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLOCK_MONOTONIC = 1
TFD_TIMER_ABSTIME = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
_NS_PER_S = 1_000_000_000


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _timespec(ns: int) -> _Timespec:
    return _Timespec(ns // _NS_PER_S, ns % _NS_PER_S)


_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        _libc.timerfd_settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.POINTER(_Itimerspec),
        ]
    except (OSError, AttributeError):
        _libc = None


def available() -> bool:
    """True where a periodic timerfd can be created (Linux)."""
    return _libc is not None


class PeriodicTimerFd:
    """A non-blocking periodic timer fd on CLOCK_MONOTONIC (the clock of ``time.monotonic``)."""

    def __init__(self) -> None:
        if _libc is None:
            raise OSError("timerfd is not available on this platform")
        fd = _libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
        self.fd: int = fd

    def arm(self, first_deadline_ns: int, interval_ns: int) -> None:
        """Fire at ``first_deadline_ns`` (CLOCK_MONOTONIC ns) and every ``interval_ns`` after."""
        spec = _Itimerspec(_timespec(interval_ns), _timespec(first_deadline_ns))
        assert _libc is not None
        if _libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))

    def read_expirations(self) -> int:
        """Expirations since the last read (0 if none yet)."""
        try:
            return int.from_bytes(os.read(self.fd, 8), sys.byteorder)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
