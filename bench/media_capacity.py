"""Media capacity: CPU per RTP packet, tick spread and pacing of G.711 calls sent through the one media clock,
beside a minimal uvloop RTP sender (``bench/reference/uvloop_rtp_sender.py``) measured in the same invocation.

For each N, interleaved rounds of two sender processes (uvloop, one thread, so at most one core), each
sending N streams to its own receiver sockets:

* **ours**: N RtpSessions on one MediaClock (the configuration ``voipbin`` runs), each playing looped
  audio (BufferPlayer: G.711 encoded once, a frame is a slice);
* **reference**: 80 lines, absolute deadlines, one pre-encoded payload, one ``sendto`` per stream per tick, per
  stream a random SSRC, sequence and timestamp start (RFC 3550 §5.1), each socket watched for reading as an RTP
  endpoint's is (``--reference-send-only``: not watched, ~5 % less CPU per packet).

A receiver process stamps every packet with the kernel's receive time (SO_TIMESTAMPNS; on loopback that is
the send time) and computes:

* pacing: per stream, p99 of |inter-packet interval - 20 ms|; the bar is p99 <= 2 ms on every stream, no loss;
* tick spread: for each 20 ms tick, the time between the first and the last send of that tick across the
  N streams. Our clock spreads its streams over phases of the period (``slots``, 4 by default: a wake-up
  every 5 ms sends a quarter of them), so each packet's lateness is taken against the moment its stream was
  due (the grid's phase 0 + the stream's phase, from ``MediaClock.origin_s``/``phase_s``) and the *spread* is
  max - min of that lateness over one tick's packets; an endpoint sees each stream at a fixed phase, so the
  phase itself is invisible to it, the spread (how much later the last stream of a burst goes out than the
  first) is not. The *raw* spread (max - min receive time, phases included) is printed beside it. For the
  reference, which sends every stream at phase 0, both are the same;
* CPU per packet: the sender's ``time.process_time()`` over the window / packets sent (robust to the
  host's load; pacing and spread are not: on a busy host they measure the neighbours too).

Calls per core = 1 / (CPU per call) = 1e6 / (us per packet * 50). Ratios (ours / reference) are printed last.

    PYTHONPATH=src .venv/bin/python bench/media_capacity.py --calls 500 --repeats 3   # side by side at one N
    PYTHONPATH=src .venv/bin/python bench/media_capacity.py                          # ramp both, then bisect
    PYTHONPATH=src .venv/bin/python bench/media_capacity.py --calls 200 --no-reference --slots 1
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support import FRAME_INTERVAL_MS, TOLERANCE_MS, StampedReceivers, pacing  # noqa: E402
from support import pin, raise_fd_limit, set_priority  # noqa: E402

SPREAD_BAR_MS = 2.0
CPU_RATIO_BAR = 1.5
WARMUP_S = 1.0
_PERIOD_NS = int(FRAME_INTERVAL_MS * 1_000_000)
#: a packet up to this much before its due time still counts for that tick (clock conversion, early timers)
_EARLY_NS = 2_000_000


# ---------------------------------------------------------------- receiver (measures)


def _tick_spreads(stamps: list[np.ndarray], origin_ns: int, phases_ns: list[int], calls: int) -> dict:
    """Per tick (packets due at the same 20 ms deadline, up to a phase): p50/p99 of the spread of the
    packets' lateness against their stream's due time, and of their raw receive times (ms)."""
    ticks, lates, raws = [], [], []
    for t, phase in zip(stamps, phases_ns):
        rel = t - origin_ns - phase
        tick = (rel + _EARLY_NS) // _PERIOD_NS
        ticks.append(tick)
        lates.append(rel - tick * _PERIOD_NS)
        raws.append(t)
    if not ticks:
        return {}
    tick, late, raw = np.concatenate(ticks), np.concatenate(lates), np.concatenate(raws)
    order = np.argsort(tick, kind="stable")
    tick, late, raw = tick[order], late[order], raw[order]
    starts = np.flatnonzero(np.r_[True, tick[1:] != tick[:-1]])
    counts = np.diff(np.r_[starts, len(tick)])
    full = counts >= max(1, int(0.9 * calls))  # the window's edges hold partial ticks
    spread = (np.maximum.reduceat(late, starts) - np.minimum.reduceat(late, starts))[full] / 1e6
    raw_spread = (np.maximum.reduceat(raw, starts) - np.minimum.reduceat(raw, starts))[full] / 1e6
    if not len(spread):
        return {}
    return {
        "spread_p50_ms": float(np.percentile(spread, 50)),
        "spread_p99_ms": float(np.percentile(spread, 99)),
        "raw_spread_p50_ms": float(np.percentile(raw_spread, 50)),
        "raw_spread_p99_ms": float(np.percentile(raw_spread, 99)),
        "late_p99_ms": float(np.percentile(late, 99) / 1e6),
        "ticks_measured": int(len(spread)),
    }


def receiver_main(calls: int, conn, cpu: int | None) -> None:
    """N sockets; records (kernel receive time ns, RTP sequence) per socket until told to stop.

    The stop message is the window ``(start_ns, end_ns)`` (CLOCK_REALTIME), or a dict with ``window_ns``,
    ``origin_ns`` (CLOCK_REALTIME of a phase-0 deadline) and ``phases_ns`` (per socket), which adds the
    tick spread to the figures sent back.
    """
    pin(cpu)
    raise_fd_limit()
    receivers = StampedReceivers(calls)
    conn.send(receivers.ports)
    stop = False
    while True:
        if not stop and conn.poll():
            message = conn.recv()
            stop = True
        ready = receivers.receive(0.05)
        if stop and not ready:  # drained: what the sockets still held when the window ended is read too
            break
    grid = message if isinstance(message, dict) else None
    paced = pacing(receivers.records, *(grid["window_ns"] if grid else message))
    flat = np.concatenate(paced.intervals_ms) if paced.intervals_ms else np.zeros(1)
    result = {
        "p99_worst_ms": max(paced.p99_dev_ms),
        "p99_median_ms": float(np.median(paced.p99_dev_ms)),
        "p99_all_ms": float(np.percentile(np.abs(flat - FRAME_INTERVAL_MS), 99)),
        "max_dev_ms": float(np.max(np.abs(flat - FRAME_INTERVAL_MS))),
        "mean_interval_ms": float(np.mean(flat)),
        "packets": int(sum(len(i) for i in paced.intervals_ms)),
        "lost": paced.lost,
    }
    if grid:
        result.update(_tick_spreads(paced.stamps_ns, grid["origin_ns"], grid["phases_ns"], calls))
    conn.send(result)


# ---------------------------------------------------------------- senders (ours, the reference)


def _realtime_ns(monotonic_s: float) -> int:
    """CLOCK_REALTIME ns (the receiver's stamps) of a ``time.monotonic()`` instant."""
    return round(monotonic_s * 1e9) + time.time_ns() - time.monotonic_ns()


def sender_main(
    calls: int, ports: list[int], seconds: float, conn, cpu: int | None, use_uvloop: bool, priority: str,
    slots: int | None = None,
) -> None:
    """Ours: ``calls`` RtpSessions on one MediaClock (``slots`` phases; None: the clock's default), each
    playing looped audio to one of ``ports``. Sends back the figures of the window (see :func:`report`)."""
    pin(cpu)
    set_priority(priority)
    raise_fd_limit()
    from voipbin.media.clock import MediaClock
    from voipbin.media.codecs import PcmuCodec
    from voipbin.media.players import BufferPlayer
    from voipbin.media.session import RtpSession

    async def main() -> dict:
        rng = np.random.default_rng(1)
        t = np.arange(8000 * 3) / 8000
        audio = (6000 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 800, len(t))).astype(np.int16)
        clock = MediaClock() if slots is None else MediaClock(slots=slots)
        sessions = []
        for port in ports:
            session = await RtpSession.open(
                "127.0.0.1", codec=PcmuCodec(), remote_address=("127.0.0.1", port), rtp_timeout_s=30.0, clock=clock
            )
            session.outbound.add(BufferPlayer(audio, loop=True))
            sessions.append(session)
        await asyncio.sleep(WARMUP_S)
        sent0 = sum(s.stats.packets_sent for s in sessions)
        wall0, cpu0, real0 = time.monotonic(), time.process_time(), time.time_ns()
        await asyncio.sleep(seconds)
        wall1, cpu1, real1 = time.monotonic(), time.process_time(), time.time_ns()
        sent1 = sum(s.stats.packets_sent for s in sessions)
        origin_ns = _realtime_ns(clock.origin_s())
        phases_ns = [round(clock.phase_s(s) * 1e9) for s in sessions]
        for s in sessions:
            s.close()
        cpu_s, wall_s = cpu1 - cpu0, wall1 - wall0
        return {
            "window_ns": (real0, real1),
            "origin_ns": origin_ns,
            "phases_ns": phases_ns,
            "cpu_core_fraction": cpu_s / wall_s,
            "cpu_per_call_pct": 100 * cpu_s / wall_s / calls,
            "us_per_packet": 1e6 * cpu_s / max(1, sent1 - sent0),
            "packets_sent": sent1 - sent0,
            "skipped_frames": clock.stats.skipped_frames,
            "max_tick_lateness_ms": 1000 * clock.stats.max_lateness_s,
            "slots": clock.slots,
        }

    if use_uvloop:
        import uvloop

        result = uvloop.run(main())
    else:
        result = asyncio.run(main())
    conn.send(result)


def reference_main(
    calls: int, ports: list[int], seconds: float, conn, cpu: int | None, priority: str, receive: bool = True
) -> None:
    """The reference sender (``bench/reference/uvloop_rtp_sender.py``) with the same window and figures."""
    pin(cpu)
    set_priority(priority)
    raise_fd_limit()
    import uvloop
    from reference.uvloop_rtp_sender import send

    r = uvloop.run(send(ports, seconds, warmup_s=WARMUP_S, receive=receive))
    conn.send({
        "window_ns": r["window_ns"],
        "origin_ns": _realtime_ns(r["first_deadline_s"]),
        "phases_ns": [0] * len(ports),
        "cpu_core_fraction": r["cpu_s"] / r["wall_s"],
        "cpu_per_call_pct": 100 * r["cpu_s"] / r["wall_s"] / calls,
        "us_per_packet": 1e6 * r["cpu_s"] / max(1, r["packets"]),
        "packets_sent": r["packets"],
        "skipped_frames": r["late_ticks"],
        "max_tick_lateness_ms": float("nan"),
        "slots": 1,
    })


def run_trial(
    calls: int, seconds: float, use_uvloop: bool = True, priority: str = "default", pin: bool = False,
    system: str = "ours", slots: int | None = None, reference_receives: bool = True,
) -> dict:
    """One trial of ``system`` ("ours" or "reference") with ``calls`` streams: sender and receiver figures."""
    ctx = mp.get_context("spawn")
    recv_parent, recv_child = ctx.Pipe()
    send_parent, send_child = ctx.Pipe()
    cpus = os.cpu_count() or 1
    receiver = ctx.Process(target=receiver_main, args=(calls, recv_child, 1 if pin and cpus > 1 else None))
    receiver.start()
    ports = recv_parent.recv()
    cpu = 0 if pin else None
    if system == "reference":
        sender = ctx.Process(target=reference_main,
                             args=(calls, ports, seconds, send_child, cpu, priority, reference_receives))
    else:
        sender = ctx.Process(target=sender_main, args=(calls, ports, seconds, send_child, cpu, use_uvloop, priority, slots))
    sender.start()
    result = send_parent.recv()
    sender.join()
    recv_parent.send({"window_ns": result.pop("window_ns"), "origin_ns": result.pop("origin_ns"),
                      "phases_ns": result.pop("phases_ns")})
    result.update(recv_parent.recv())
    receiver.join()
    result.update(calls=calls, system=system, load=os.getloadavg())
    result["ok"] = result["p99_worst_ms"] <= TOLERANCE_MS and result["lost"] == 0
    return result


def calls_per_core(us_per_packet: float) -> float:
    """Streams one core sends at 50 packets/s each, at ``us_per_packet`` of CPU per packet."""
    return 1e6 / (us_per_packet * 1000 / FRAME_INTERVAL_MS) if us_per_packet > 0 else float("inf")


def report(r: dict) -> None:
    spread = (f"  spread p50/p99 {r['spread_p50_ms']:5.2f}/{r['spread_p99_ms']:5.2f} ms"
              f" (raw {r['raw_spread_p50_ms']:5.2f}/{r['raw_spread_p99_ms']:5.2f})" if "spread_p99_ms" in r else "")
    print(
        f"{r.get('system', 'ours'):9s} N={r['calls']:5d}  p99|dev| worst stream {r['p99_worst_ms']:6.3f} ms"
        f"  median stream {r['p99_median_ms']:6.3f} ms  max {r['max_dev_ms']:6.2f} ms  lost {r['lost']}"
        f"  CPU {100 * r['cpu_core_fraction']:5.1f}% core  {r['us_per_packet']:5.2f} us/pkt"
        f" = {calls_per_core(r['us_per_packet']):5.0f} calls/core{spread}"
        f"  skipped {r['skipped_frames']}  load {r['load'][0]:.1f}  {'OK' if r['ok'] else 'FAIL'}",
        flush=True,
    )


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def summary(trials: list[dict], largest: dict[str, int] | None = None) -> None:
    """Per N, the medians of each system's trials; then the ratios (ours / reference) and the bars."""
    print(f"\nsummary (medians of trials; load average now {' '.join(f'{x:.1f}' for x in os.getloadavg())}):", flush=True)
    by_n: dict[int, dict[str, list[dict]]] = {}
    for t in trials:
        by_n.setdefault(t["calls"], {}).setdefault(t["system"], []).append(t)
    ratios = []
    for calls in sorted(by_n):
        row = []
        for system in ("ours", "reference"):
            ts = by_n[calls].get(system, [])
            if ts:
                us = _median([t["us_per_packet"] for t in ts])
                spread = _median([t.get("spread_p99_ms", float("nan")) for t in ts])
                row.append(f"{system} {us:5.2f} us/pkt, spread p99 {spread:5.2f} ms, worst stream p99|dev| "
                           f"{_median([t['p99_worst_ms'] for t in ts]):6.2f} ms")
        print(f"  N={calls:5d}: " + " | ".join(row), flush=True)
        ours, ref = by_n[calls].get("ours"), by_n[calls].get("reference")
        if ours and ref:
            ratios.append((calls, _median([t["us_per_packet"] for t in ours]) / _median([t["us_per_packet"] for t in ref]),
                           _median([t.get("spread_p99_ms", float("nan")) for t in ours]),
                           _median([t.get("spread_p99_ms", float("nan")) for t in ref])))
    if largest:
        print("  largest N at the pacing bar: " + ", ".join(f"{k} {v}" for k, v in largest.items()), flush=True)
    for calls, ratio, spread_ours, spread_ref in ratios:
        print(f"ratio N={calls}: CPU per packet ours/reference {ratio:.2f}x (bar <= {CPU_RATIO_BAR}x); "
              f"tick spread p99 ours {spread_ours:.2f} ms vs reference {spread_ref:.2f} ms (bar <= {SPREAD_BAR_MS} ms "
              f"at 500 sessions)", flush=True)
    if largest and largest.get("reference"):
        print(f"ratio largest N at the pacing bar ours/reference: {largest['ours'] / largest['reference']:.2f}x "
              f"(ours {largest['ours']}, bar >= 1500 calls per core)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, help="run trials at this many calls only (no ramp)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measurement window per trial")
    parser.add_argument("--ramp", default="50,100,200,400,600,800,1000,1200,1500,2000,2500,3000", help="N values to try")
    parser.add_argument("--no-uvloop", action="store_true", help="ours on the default asyncio loop")
    parser.add_argument("--slots", type=int, help="our clock's phases per 20 ms (default: the clock's)")
    parser.add_argument("--no-reference", action="store_true", help="measure ours only")
    parser.add_argument("--reference-send-only", action="store_true",
                        help="the reference's sockets are not watched for reading (no RTP endpoint can do that)")
    parser.add_argument(
        "--priority",
        choices=["default", "nice", "fifo"],
        default="fifo",
        help="sender scheduling: fifo = SCHED_FIFO 10 (a media pod's deployment, systemd CPUSchedulingPolicy=fifo), "
        "nice = nice -10, default = unchanged (on a shared, busy host wake-ups then lag by several ms)",
    )
    parser.add_argument("--pin", action="store_true", help="pin the sender to CPU 0 and the receiver to CPU 1")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds per N (ours, reference, ours, ...); N passes when the median trial passes",
    )
    args = parser.parse_args()
    systems = ["ours"] if args.no_reference else ["ours", "reference"]
    print(f"media capacity: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, "
          f"sender priority {args.priority}{', pinned to CPU 0' if args.pin else ''}, "
          f"{'asyncio' if args.no_uvloop else 'uvloop'}, window {args.seconds} s, reference sockets "
          f"{'send-only' if args.reference_send_only else 'watched for reading'}, "
          f"pacing bar p99 |interval - 20 ms| <= {TOLERANCE_MS} ms on every stream, no loss", flush=True)
    trials: list[dict] = []

    def round_robin(calls: int, which: list[str]) -> dict[str, bool]:
        """``args.repeats`` interleaved rounds of each system in ``which``; its verdict: the median trial's."""
        mine: dict[str, list[dict]] = {s: [] for s in which}
        for _ in range(args.repeats):
            for system in which:
                t = run_trial(calls, args.seconds, not args.no_uvloop, args.priority, args.pin, system, args.slots,
                              not args.reference_send_only)
                report(t)
                mine[system].append(t)
                trials.append(t)
        return {s: sorted(t["ok"] for t in ts)[len(ts) // 2] for s, ts in mine.items()}

    if args.calls:
        round_robin(args.calls, systems)
        summary(trials)
        return
    best = {s: 0 for s in systems}
    failed_at: dict[str, int] = {}
    for calls in [int(n) for n in args.ramp.split(",")]:
        which = [s for s in systems if s not in failed_at]
        if not which:
            break
        for system, ok in round_robin(calls, which).items():
            if ok:
                best[system] = calls
            else:
                failed_at[system] = calls
    for system, high in failed_at.items():
        low = best[system]
        while high - low > max(25, low // 10):
            mid = (low + high) // 2
            low, high = (mid, high) if round_robin(mid, [system])[system] else (low, mid)
        best[system] = low
    summary(trials, best)


if __name__ == "__main__":
    main()
