"""Conference mixing capacity: how many participants one core receives, mixes (mix-minus) and sends.

The pacing bar and its measurement are those of ``bench/media_capacity.py`` (both in
``bench/support.py``): the packets each participant's session sends are stamped by the kernel on
arrival (SO_TIMESTAMPNS; on loopback that is the send time) and, per stream, the p99 of
|inter-packet interval - 20 ms| must stay <= 2 ms, on every stream, with no loss.

For each N, a peer process (plain sockets, the phones) opens N UDP sockets; each sends G.711 audio
(a tone with noise, 20 ms packets, half PCMU and half PCMA, the sends spread over four 5 ms phases)
to its own RtpSession and stamps what comes back. The system under test (uvloop, one thread, so at
most one core) opens the N RtpSessions on 127.0.0.1 and puts them in rooms of R
(:class:`voipbin.media.conference.ConferenceMixer`): receive, jitter buffer, decode, mix, encode,
send. The reference, in the same run: the same N sessions without rooms, each echoing what its
peer sends (receive, decode, encode, send: everything but the mix), so the mixing overhead shows.
CPU per participant is the process CPU time over the window / N / seconds.

The largest N within the bar is the participants one core mixes (a ramp, then a bisection;
``--quick``: a coarse ramp and a short window, under a minute). A failing N is tried once more
(``--retries``) before it counts as failed: on a shared host one trial is noisy.

    PYTHONPATH=src .venv/bin/python bench/conference_mixing.py --quick
    PYTHONPATH=src .venv/bin/python bench/conference_mixing.py --rooms 3,10 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time

import numpy as np
from support import FRAME_INTERVAL_MS, TOLERANCE_MS, StampedReceivers, pacing, pin, raise_fd_limit, set_priority

TARGET_PARTICIPANTS_PER_CORE = 300
#: the peers' sends are spread over this many phases of the 20 ms period
SEND_PHASES = 4
PAYLOAD_TYPES = (0, 8)  # PCMU, PCMA: participant i uses PAYLOAD_TYPES[i % 2]


# ---------------------------------------------------------------- the phones (send audio, measure pacing)


def _pacing(records: list[list[tuple[int, int]]], start_ns: int, end_ns: int) -> dict:
    """Per stream, p99 of |interval - 20 ms| between consecutive packets received in the window."""
    paced = pacing(records, start_ns, end_ns)
    deviations = [np.abs(intervals - FRAME_INTERVAL_MS) for intervals in paced.intervals_ms]
    flat = np.concatenate(deviations) if deviations else np.full(1, np.inf)
    return {"p99_worst_ms": max(paced.p99_dev_ms), "p99_median_ms": float(np.median(paced.p99_dev_ms)),
            "max_dev_ms": float(np.max(flat)), "lost": paced.lost}


def peer_main(participants: int, conn, cpu: int | None) -> None:
    """N phones: each sends 20 ms G.711 packets to its session and records (kernel time ns, seq) of
    what the session sends back, until told the measurement window."""
    pin(cpu)
    raise_fd_limit()
    from voipbin.media.codecs import PcmaCodec, PcmuCodec
    from voipbin.media.rtp import pack_header

    phones = StampedReceivers(participants)
    sockets = phones.sockets
    conn.send(phones.ports)
    targets = [("127.0.0.1", port) for port in conn.recv()]
    rng = np.random.default_rng(7)
    t = np.arange(8000) / 8000
    encoded = {}
    for payload_type, codec in zip(PAYLOAD_TYPES, (PcmuCodec(), PcmaCodec())):
        tone = (5000 * np.sin(2 * np.pi * (300 + 200 * payload_type) * t) + rng.normal(0, 600, len(t)))
        encoded[payload_type] = codec.encode(tone.astype("<i2").tobytes())  # 1 s, 50 frames of 160 bytes
    seqs = [int(x) for x in rng.integers(0, 1 << 16, participants)]
    ssrcs = [int(x) for x in rng.integers(0, 1 << 32, participants)]
    phase_s = FRAME_INTERVAL_MS / 1000 / SEND_PHASES
    next_send, phase, frame = time.monotonic(), 0, 0
    window = None
    while window is None:
        if conn.poll():
            window = conn.recv()  # (start_ns, end_ns) in CLOCK_REALTIME
        now = time.monotonic()
        if now >= next_send:
            offset = (frame % 50) * 160
            for i in range(phase, participants, SEND_PHASES):
                payload_type = PAYLOAD_TYPES[i % 2]
                header = pack_header(payload_type, frame == 0, seqs[i], (frame * 160) & 0xFFFFFFFF, ssrcs[i])
                try:
                    sockets[i].sendto(header + encoded[payload_type][offset:offset + 160], targets[i])
                except OSError:
                    pass  # the session is not up yet (ICMP port unreachable)
                seqs[i] = (seqs[i] + 1) & 0xFFFF
            phase = (phase + 1) % SEND_PHASES
            frame += phase == 0
            next_send = max(next_send + phase_s, now - phase_s)  # late: no burst to catch up
        phones.receive(max(0.0, next_send - time.monotonic()))
    conn.send(_pacing(phones.records, *window))


# ---------------------------------------------------------------- the system under test


def sut_main(participants: int, room_size: int, peer_ports: list[int], seconds: float, warmup_s: float,
             conn, cpu: int | None, priority: str) -> None:
    """N RtpSessions in rooms of ``room_size`` (0: no rooms, each session echoes its peer)."""
    pin(cpu)
    set_priority(priority)
    raise_fd_limit()
    import uvloop

    from voipbin.media.codecs import PcmaCodec, PcmuCodec
    from voipbin.media.conference import ConferenceMixer
    from voipbin.media.session import RtpSession

    async def main() -> dict:
        sessions = []
        for i, port in enumerate(peer_ports):
            codec = PcmuCodec() if PAYLOAD_TYPES[i % 2] == 0 else PcmaCodec()
            sessions.append(await RtpSession.open("127.0.0.1", codec=codec, remote_address=("127.0.0.1", port),
                                                  rtp_timeout_s=30.0))
        rooms = []
        if room_size:
            rooms = [ConferenceMixer() for _ in range(participants // room_size)]
            for i, session in enumerate(sessions):
                rooms[i // room_size].join(f"p{i}", session)
        else:
            for session in sessions:
                session.start_echo()
        conn.send([s.local_port for s in sessions])
        await asyncio.sleep(warmup_s)
        clock = sessions[0]._clock
        skipped0 = clock.stats.skipped_frames
        received0 = sum(s.stats.packets_received for s in sessions)
        wall0, cpu0, real0 = time.monotonic(), time.process_time(), time.time_ns()
        await asyncio.sleep(seconds)
        wall1, cpu1, real1 = time.monotonic(), time.process_time(), time.time_ns()
        received1 = sum(s.stats.packets_received for s in sessions)
        for room in rooms:
            room.close()
        for session in sessions:
            session.close()
        cpu_s, wall_s = cpu1 - cpu0, wall1 - wall0
        return {
            "window_ns": (real0, real1),
            "cpu_core_fraction": cpu_s / wall_s,
            "cpu_us_per_participant_s": 1e6 * cpu_s / wall_s / participants,
            "received_per_participant_s": (received1 - received0) / wall_s / participants,
            "skipped_frames": clock.stats.skipped_frames - skipped0,
        }

    conn.send(uvloop.run(main()))


def run_trial(participants: int, room_size: int, seconds: float, warmup_s: float, priority: str,
              pin: bool) -> dict:
    ctx = mp.get_context("spawn")
    peer_parent, peer_child = ctx.Pipe()
    sut_parent, sut_child = ctx.Pipe()
    cpus = os.cpu_count() or 1
    peer = ctx.Process(target=peer_main, args=(participants, peer_child, 1 if pin and cpus > 1 else None))
    peer.start()
    peer_ports = peer_parent.recv()
    sut = ctx.Process(target=sut_main, args=(participants, room_size, peer_ports, seconds, warmup_s, sut_child,
                                             0 if pin else None, priority))
    sut.start()
    peer_parent.send(sut_parent.recv())
    result = sut_parent.recv()
    sut.join()
    peer_parent.send(result.pop("window_ns"))
    result.update(peer_parent.recv())
    peer.join()
    result.update(participants=participants, room_size=room_size)
    result["ok"] = result["p99_worst_ms"] <= TOLERANCE_MS and result["lost"] == 0
    return result


def report(r: dict) -> None:
    what = f"rooms of {r['room_size']:2d}" if r["room_size"] else "reference "
    print(f"{what}  N={r['participants']:5d}  p99|dev| worst stream {r['p99_worst_ms']:6.3f} ms"
          f"  median stream {r['p99_median_ms']:6.3f} ms  max {r['max_dev_ms']:6.2f} ms  lost {r['lost']}"
          f"  CPU {100 * r['cpu_core_fraction']:5.1f}% core = {r['cpu_us_per_participant_s']:6.1f} us/s"
          f" ({r['cpu_us_per_participant_s'] / 1e4:.3f}% core) per participant"
          f"  in {r['received_per_participant_s']:4.1f} pkt/s each  skipped {r['skipped_frames']}"
          f"  {'OK' if r['ok'] else 'FAIL'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", default="3,10", help="room sizes to measure")
    parser.add_argument("--ramp", default="120,240,360,480,600,720,900,1200", help="participant counts to try")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement window per trial")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before the window")
    parser.add_argument("--quick", action="store_true", help="coarse ramp, 2 s windows, no bisection (< 60 s)")
    parser.add_argument("--priority", choices=["default", "nice", "fifo"], default="fifo",
                        help="scheduling of the system under test, as in bench/media_capacity.py")
    parser.add_argument("--retries", type=int, default=1,
                        help="a failing N is tried again this many times and passes if one retry passes "
                             "(a shared host's noise; every trial is printed)")
    parser.add_argument("--pin", action="store_true", help="pin the sessions to CPU 0 and the phones to CPU 1")
    args = parser.parse_args()
    if args.quick:
        args.ramp, args.seconds, args.warmup = "150,300,600,900", 2.0, 0.5
    room_sizes = [int(r) for r in args.rooms.split(",")]
    ramp = [int(n) for n in args.ramp.split(",")]
    print(f"conference mixing: {os.cpu_count()} CPUs, uvloop, priority {args.priority}, window {args.seconds} s;"
          f" criterion p99 |interval - 20 ms| <= {TOLERANCE_MS} ms on every stream, no loss", flush=True)

    def trial(participants: int, room_size: int) -> dict:
        for _ in range(1 + args.retries):
            result = run_trial(participants, room_size, args.seconds, args.warmup, args.priority, args.pin)
            report(result)
            if result["ok"]:
                break
        return result

    summary = []
    for room_size in room_sizes:
        best: dict | None = None
        failed_at = None
        for participants in ramp:
            participants -= participants % room_size
            result = trial(participants, room_size)
            if not result["ok"]:
                failed_at = participants
                break
            best = result
        if failed_at is not None and not args.quick:
            low, high = (best["participants"] if best else 0), failed_at
            while high - low > max(room_size, low // 10):
                mid = (low + high) // 2
                mid -= mid % room_size
                if mid <= low:
                    break
                result = trial(mid, room_size)
                if result["ok"]:
                    low, best = mid, result
                else:
                    high = mid
        measured = best or result
        reference = trial(measured["participants"], 0)
        summary.append((room_size, best, failed_at, measured, reference))
    print()
    for room_size, best, failed_at, measured, reference in summary:
        reached = best["participants"] if best else 0
        overhead = measured["cpu_us_per_participant_s"] / reference["cpu_us_per_participant_s"] - 1
        print(f"rooms of {room_size}: {reached} participants per core within the bar"
              f" ({'first failure at ' + str(failed_at) if failed_at else 'ramp exhausted'};"
              f" target {TARGET_PARTICIPANTS_PER_CORE} in rooms of 3);"
              f" CPU per participant {measured['cpu_us_per_participant_s']:.1f} us/s"
              f" ({measured['cpu_us_per_participant_s'] / 1e4:.3f}% core) at N={measured['participants']};"
              f" reference, {reference['participants']} echoing sessions: {reference['cpu_us_per_participant_s']:.1f}"
              f" us/s each ({'OK' if reference['ok'] else 'FAIL'}); mixing adds {100 * overhead:+.0f}%"
              f" (CPU-bound ceiling {1e6 / measured['cpu_us_per_participant_s']:.0f} participants per core)",
              flush=True)


if __name__ == "__main__":
    main()
