"""What several benches share, in one place.

* RTP pacing at the receiving end (``media_capacity.py``, ``conference_mixing.py``; ``cluster_capacity.py``
  through ``media_capacity``): the 20 ms frame interval and its bar, :class:`StampedReceivers` (UDP sockets
  that record each packet's kernel receive time, SO_TIMESTAMPNS, and its RTP sequence number, RFC 3550
  §5.1) and :func:`pacing` (per stream, |inter-packet interval - 20 ms| and the packets lost);
* the processes that measure: :func:`pin`, :func:`raise_fd_limit`, :func:`set_priority`;
* a process tree from /proc (``soak_calls.py``, ``transcribe_capacity.py``): :func:`children`;
* a ``voipbin sandbox`` whose trunk is this process's SIP UA, the carrier (``ai_turn_latency.py``,
  ``transcribe_capacity.py``): :func:`sandbox_with_trunk`.

The benches put their own directory on ``sys.path`` (a script's is there already) and ``import support``.
Only numpy and the standard library are imported at module level: the media benches' receiver and sender
processes import this module and need nothing else.
"""

from __future__ import annotations

import asyncio
import os
import resource
import select
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tests_support.processes import SandboxProcess
    from voipbin.sip.ua import UserAgent

#: the packetization interval of every stream the benches send and receive (G.711, 160 samples at 8 kHz)
FRAME_INTERVAL_MS = 20.0
#: the pacing bar: per stream, p99 of |inter-packet interval - 20 ms| at most this
TOLERANCE_MS = 2.0
#: socket option number of SO_TIMESTAMPNS (Linux; 35 where the socket module does not name it)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
#: SO_RCVBUF of each receiving socket: a late reader loses no packet
RECEIVE_BUFFER_BYTES = 1 << 20
#: the largest datagram a receiver reads (an RTP packet of 160 bytes of G.711 is 172)
_DATAGRAM_BYTES = 512


# ---------------------------------------------------------------- the processes that measure


def pin(cpu: int | None) -> None:
    """Run this process on CPU ``cpu`` only; None, or a CPU this machine lacks: leave it where it is."""
    if cpu is not None and hasattr(os, "sched_setaffinity") and cpu < os.cpu_count():
        os.sched_setaffinity(0, {cpu})


def raise_fd_limit() -> None:
    """Raise this process's open-file limit (RLIMIT_NOFILE) to its hard limit: thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def set_priority(priority: str) -> None:
    """default: leave it; nice: nice -10; fifo: SCHED_FIFO 10 (as a media pod on a shared host would run).
    Without the privilege: a warning printed, the default priority kept."""
    try:
        if priority == "nice":
            os.nice(-10)
        elif priority == "fifo":
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (PermissionError, OSError) as exc:
        print(f"warning: cannot set priority {priority!r} ({exc}); running at default priority", flush=True)


# ---------------------------------------------------------------- RTP pacing at the receiving end


class StampedReceivers:
    """``count`` non-blocking UDP sockets on 127.0.0.1 (ephemeral ports), watched by one epoll; every
    packet read is recorded as (kernel receive time in ns, CLOCK_REALTIME; its RTP sequence number) in
    ``records[i]`` for socket ``i``. On loopback the receive time is the send time."""

    def __init__(self, count: int) -> None:
        self.sockets: list[socket.socket] = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)
            self.sockets.append(sock)
        self.records: list[list[tuple[int, int]]] = [[] for _ in self.sockets]
        self._index_by_fd = {s.fileno(): i for i, s in enumerate(self.sockets)}
        self._poller = select.epoll()
        for s in self.sockets:
            self._poller.register(s.fileno(), select.EPOLLIN)
        self._cmsg_space = socket.CMSG_SPACE(16)  # one struct timespec

    @property
    def ports(self) -> list[int]:
        """The sockets' local ports, in socket order."""
        return [s.getsockname()[1] for s in self.sockets]

    def receive(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for packets, then read and record every packet queued on each ready
        socket; an ICMP error queued on a socket (one of its sends refused) is skipped. Returns the number of
        sockets that were ready (0: nothing arrived in ``timeout_s``)."""
        events = self._poller.poll(timeout_s)
        cmsg_space = self._cmsg_space
        for fd, _ in events:
            index = self._index_by_fd[fd]
            sock, out = self.sockets[index], self.records[index]
            while True:
                try:
                    data, ancdata, _, _ = sock.recvmsg(_DATAGRAM_BYTES, cmsg_space)
                except BlockingIOError:
                    break
                except OSError:
                    continue  # an ICMP error queued on the socket
                stamp = 0
                for level, kind, cdata in ancdata:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", cdata[:16])
                        stamp = sec * 1_000_000_000 + nsec
                out.append((stamp, (data[2] << 8) | data[3]))
        return len(events)


@dataclass
class Pacing:
    """Per stream, what arrived in a window (see :func:`pacing`)."""

    #: receive times (ns) of each stream's packets in the window, every stream
    stamps_ns: list[np.ndarray]
    #: intervals (ms) between consecutive packets (sequence + 1) of each stream with 3 packets or more, two in sequence
    intervals_ms: list[np.ndarray]
    #: p99 of |interval - 20 ms| of each stream; inf for a stream with fewer than 3 packets or none in sequence
    p99_dev_ms: list[float]
    #: packets missing from the sequence numbers, all streams
    lost: int


def pacing(records: list[list[tuple[int, int]]], start_ns: int, end_ns: int) -> Pacing:
    """The pacing of each stream in ``records`` (per stream, (receive time ns, RTP sequence number) as
    :class:`StampedReceivers` records them) over the packets received from ``start_ns`` to ``end_ns``
    (CLOCK_REALTIME, both included). Sequence numbers wrap at 2^16; a gap of k counts k - 1 lost."""
    stamps_all, intervals_all, p99s, lost = [], [], [], 0
    for rec in records:
        rec = [(t, q) for t, q in rec if start_ns <= t <= end_ns]
        stamps = np.array([t for t, _ in rec], dtype=np.int64)
        stamps_all.append(stamps)
        if len(rec) < 3:
            p99s.append(float("inf"))
            continue
        steps = np.diff(np.array([q for _, q in rec], dtype=np.int64)) & 0xFFFF
        consecutive = steps == 1
        lost += int(np.sum(steps[~consecutive] - 1))
        intervals_ms = np.diff(stamps)[consecutive] / 1e6
        if not len(intervals_ms):  # no two packets in a row: no interval to judge (the losses are counted)
            p99s.append(float("inf"))
            continue
        p99s.append(float(np.percentile(np.abs(intervals_ms - FRAME_INTERVAL_MS), 99)))
        intervals_all.append(intervals_ms)
    return Pacing(stamps_all, intervals_all, p99s, lost)


# ---------------------------------------------------------------- process trees


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (the parent field of /proc/<pid>/stat), ascending; a process
    that exits while it is read is left out."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return sorted(out)


# ---------------------------------------------------------------- a sandbox and its carrier


@asynccontextmanager
async def sandbox_with_trunk(
    workdir: Path, env: dict[str, str], start_timeout_s: float
) -> AsyncIterator[tuple[SandboxProcess, UserAgent]]:
    """A ``voipbin sandbox`` (tests/tests_support/processes.py: SQLite in ``workdir``, API and SIP on free
    ports of 127.0.0.1) whose SIP trunk is a :class:`UserAgent` of this process on a free UDP port (the
    carrier: ``VOIPBIN_TRUNK_URI`` and ``VOIPBIN_TRUNK_ALLOWED_HOSTS`` point at it), with
    ``VOIPBIN_RTP_TIMEOUT_SECONDS=300`` and ``env`` added last (it wins). Yields (sandbox, carrier UA) once
    the API answers (``start_timeout_s``; RuntimeError or TimeoutError from ``SandboxProcess.start``
    otherwise); on exit the UA is closed, its stack stopped and the sandbox stopped (SIGTERM).

    Needs ``tests/`` on ``sys.path`` (the callers put it there); what it imports is imported here, not at
    the top, for the media benches' processes, which import this module too.
    """
    from tests_support.net import free_port
    from tests_support.processes import SandboxProcess
    from voipbin.sip.stack import SipStack, StackConfig
    from voipbin.sip.ua import UserAgent

    trunk_port = free_port(socket.SOCK_DGRAM)
    sandbox = SandboxProcess(workdir, api_port=free_port(), sip_port=free_port(socket.SOCK_DGRAM), env={
        "VOIPBIN_TRUNK_URI": f"sip:127.0.0.1:{trunk_port}", "VOIPBIN_TRUNK_ALLOWED_HOSTS": f"127.0.0.1:{trunk_port}",
        "VOIPBIN_RTP_TIMEOUT_SECONDS": "300", **env})
    await asyncio.to_thread(sandbox.start, start_timeout_s)
    try:
        stack = SipStack(StackConfig(host="127.0.0.1", port=trunk_port))
        await stack.start()
        trunk = UserAgent(stack)
        try:
            yield sandbox, trunk
        finally:
            trunk.close()
            await stack.stop()
    finally:
        await asyncio.to_thread(sandbox.stop)
