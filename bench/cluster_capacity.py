#!/usr/bin/env python3
"""Scale-out capacity (issue 19): G.711 calls held within the pacing bar by 1 media pod vs 2, and
REGISTER/s through the Kamailio edge vs straight to the registrar.

**Media.** A media pod's RTP is its own process: an event loop with one media clock pacing every
session it holds (bench/media_capacity.py measures one such process). Here the calls are split over P
sender processes (P = 1, then 2: the media pods), each running the pod's media plane (RtpSession,
PCMU, the media clock) at the pod's scheduling (``--priority``, default SCHED_FIFO as a media pod is
deployed; pod k pinned to CPU k unless --no-pin), and one receiver process stamps every packet with
the kernel's receive time. A total N passes
when every stream's p99 |inter-packet interval - 20 ms| stays <= 2 ms with no loss (media_capacity's
bar, the same code). For each P the largest N that passes is found (ramp, then bisection), and the ratio
2 pods / 1 pod is printed beside the target (>= 1.7 on this 2-core machine). What this leaves out: SIP
call set-up, TTS and STT (each pod's speech engines are separate processes or threads and scale the
same way, bench/transcribe_capacity.py).

**REGISTER.** A real ``voipbin sandbox`` (its registrar, store, events) with ``--users`` extensions, and
Kamailio in front of it (deploy/kamailio/kamailio.cfg.tmpl, the config ``scripts/cluster.sh`` runs:
Path added, relayed to the pod by Call-ID hash). bench/sip_register.py's open-loop client offers
registrations (REGISTER, 401, REGISTER with MD5 digest, 200) at each rate, in interleaved runs
straight to the sandbox and through Kamailio (each from its own client addresses, so each keeps its
own binding per user). voipbin and Kamailio are pinned to one CPU (``--server-cpu``, as
bench/sip_register.py pins its servers; the edge's cost comes out of the same core), this client runs
on the others. Per run: registrations/s, p50/p99 latency, retransmissions, 503s, failures and CPU per
registration of voipbin and of Kamailio. The sandbox is told ``VOIPBIN_SIP_TRUSTED_PROXIES=127.0.0.1``:
every registration through the edge comes from Kamailio's one address, which the per-source token
bucket (2,000 messages/s) would otherwise cap at about 1,000 registrations/s.

    .venv/bin/python bench/cluster_capacity.py [--quick] [--part media|register|both]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(BENCH_DIR))
import media_capacity  # noqa: E402
import sip_register  # noqa: E402
from tests_support.processes import SandboxProcess  # noqa: E402

TARGET_RATIO = 1.7


# ---------------------------------------------------------------- media: 1 pod vs 2 pods


def pods_trial(calls: int, pods: int, seconds: float, priority: str, pin: bool) -> dict:
    """``calls`` streams split over ``pods`` sender processes, one receiver; media_capacity's figures
    (worst stream p99, loss) plus each pod's CPU share. ``pin``: pod k on CPU k (a pod per core)."""
    ctx = mp.get_context("spawn")
    recv_parent, recv_child = ctx.Pipe()
    receiver = ctx.Process(target=media_capacity.receiver_main, args=(calls, recv_child, None))
    receiver.start()
    ports = recv_parent.recv()
    shares = [ports[i::pods] for i in range(pods)]
    senders, pipes = [], []
    cpus = os.cpu_count() or 1
    for k, share in enumerate(shares):
        parent, child = ctx.Pipe()
        sender = ctx.Process(target=media_capacity.sender_main,
                             args=(len(share), share, seconds, child, k % cpus if pin else None, True, priority))
        sender.start()
        senders.append(sender)
        pipes.append(parent)
    results = [p.recv() for p in pipes]
    for sender in senders:
        sender.join()
    windows = [r.pop("window_ns") for r in results]
    recv_parent.send((max(w[0] for w in windows), min(w[1] for w in windows)))  # when every pod was measuring
    result = recv_parent.recv()
    receiver.join()
    result.update(calls=calls, pods=pods, cpu_core_fractions=[r["cpu_core_fraction"] for r in results],
                  skipped_frames=sum(r["skipped_frames"] for r in results))
    result["ok"] = result["p99_worst_ms"] <= media_capacity.TOLERANCE_MS and result["lost"] == 0
    return result


def media_report(r: dict) -> None:
    cpus = " + ".join(f"{100 * c:.0f}%" for c in r["cpu_core_fractions"])
    print(f"  pods={r['pods']} N={r['calls']:5d}  p99|dev| worst stream {r['p99_worst_ms']:6.3f} ms  median "
          f"{r['p99_median_ms']:6.3f} ms  max {r['max_dev_ms']:6.2f} ms  lost {r['lost']}  "
          f"pod CPU {cpus} of a core  skipped {r['skipped_frames']}  {'OK' if r['ok'] else 'FAIL'}", flush=True)


def largest(pods: int, ramp: list[int], args: argparse.Namespace) -> int:
    """The largest total N held by ``pods`` pods (the median of ``args.repeats`` trials passes)."""
    def passes(calls: int) -> bool:
        trials = [pods_trial(calls, pods, args.seconds, args.priority, not args.no_pin) for _ in range(args.repeats)]
        for t in trials:
            media_report(t)
        verdicts = sorted(t["ok"] for t in trials)
        return verdicts[len(verdicts) // 2]

    best, failed_at = 0, None
    for calls in ramp:
        if not passes(calls):
            failed_at = calls
            break
        best = calls
    if failed_at is None:
        print(f"  pods={pods}: ramp exhausted at {best}", flush=True)
        return best
    low, high = best, failed_at
    while high - low > max(20, low // 20):
        mid = (low + high) // 2
        low, high = (mid, high) if passes(mid) else (low, mid)
    return low


def media_part(args: argparse.Namespace) -> None:
    print(f"== media: G.711 calls within 20 ms +- {media_capacity.TOLERANCE_MS} ms (p99, every stream, no loss), "
          f"{os.cpu_count()} CPUs, pods at priority {args.priority}{'' if args.no_pin else ', pod k on CPU k'}, "
          f"{args.seconds:.0f} s windows, "
          f"median of {args.repeats}", flush=True)
    ramp = [int(n) for n in args.ramp.split(",")]
    one = largest(1, ramp, args)
    print(f"1 media pod:  {one} calls", flush=True)
    two = largest(2, [n * 2 for n in ramp], args)
    print(f"2 media pods: {two} calls", flush=True)
    ratio = two / max(one, 1)
    print(f"ratio 2 pods / 1 pod: {ratio:.2f}x (target >= {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else 'NOT met'})")


# ---------------------------------------------------------------- REGISTER: direct vs through Kamailio


def start_kamailio(workdir: Path, port: int, pod: tuple[str, int]):  # -> subprocess.Popen
    import importlib.util
    import subprocess

    spec = importlib.util.spec_from_file_location("kamailio_render", REPO / "deploy" / "kamailio" / "render.py")
    assert spec is not None and spec.loader is not None
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    config = render.write_config(workdir, listen=("127.0.0.1", port), pods=[pod], children=2)
    log = (workdir / "kamailio.log").open("ab")
    return subprocess.Popen(["kamailio", "-f", str(config), "-DD", "-E", "-m", "128", "-M", "16"],
                            stdout=log, stderr=subprocess.STDOUT)


async def measure(load: sip_register.Load, target: sip_register.Target, rate: float, seconds: float,
                  edge_pid: int | None) -> tuple[sip_register.Sample, float]:
    """One run: sip_register's Sample (CPU: voipbin's tree) and Kamailio's CPU us per registration."""
    edge0 = sip_register.tree_cpu_s(edge_pid) if edge_pid else 0.0
    started = time.monotonic()
    sample = await sip_register.measure(load, target, rate, seconds)
    edge_s = (sip_register.tree_cpu_s(edge_pid) - edge0) if edge_pid else 0.0
    registered = max(1.0, sample.rate * (time.monotonic() - started))  # rate is per second until the last answer
    return sample, edge_s / registered * 1e6


async def open_load(first: int, sources: int, users: int) -> sip_register.Load:
    """sip_register's client on ``sources`` addresses from 127.0.0.(2 + first) up."""
    loop = asyncio.get_running_loop()
    clients = []
    for i in range(sources):
        _, proto = await loop.create_datagram_endpoint(sip_register.Client, local_addr=(f"127.0.0.{2 + first + i}", 0))
        clients.append(proto)
    return sip_register.Load(clients, users)


async def register_part(args: argparse.Namespace) -> None:
    import shutil

    if shutil.which("kamailio") is None:
        print("== register: kamailio not installed (make install): skipped")
        return
    with tempfile.TemporaryDirectory(prefix="cluster-capacity-") as tmp:
        sip_port, edge_port = sip_register.free_port(), sip_register.free_port()
        sandbox = SandboxProcess(Path(tmp), api_port=sip_register.free_tcp_port(), sip_port=sip_port,
                                 env={"VOIPBIN_SIP_TRUSTED_PROXIES": "127.0.0.1"}).start(90)
        edge = start_kamailio(Path(tmp), edge_port, ("127.0.0.1", sip_port))
        try:
            assert sandbox.proc is not None
            domain = await sip_register.create_extensions(sandbox, args.users)
            await sip_register.wait_sip(("127.0.0.1", sip_port))
            await sip_register.wait_sip(("127.0.0.1", edge_port))
            await sip_register.settle(sandbox.proc.pid)
            sip_register.pin_tree(sandbox.proc.pid, args.server_cpu)
            sip_register.pin_tree(edge.pid, args.server_cpu)
            direct = sip_register.Target("direct", sandbox.proc.pid, ("127.0.0.1", sip_port), domain)
            via = sip_register.Target("kamailio", sandbox.proc.pid, ("127.0.0.1", edge_port), domain)
            # each target its own client addresses, so each keeps its own binding per user (one through the
            # edge, with Path, one without): the runs measure refreshes, not a binding moved at every run
            loads = {"direct": await open_load(0, args.sources, args.users),
                     "kamailio": await open_load(args.sources, args.sources, args.users)}
            for target in (direct, via):  # every user bound once (new bindings are the slow path)
                for _ in range(5):
                    warm = await loads[target.name].run(target, [(args.users / sip_register.WARM_UP_RATE,
                                                                  sip_register.WARM_UP_RATE)])
                    await sip_register.settle(sandbox.proc.pid)  # new bindings publish events: let them drain
                    if warm.refused == 0 and warm.failed == 0:
                        break
            print(f"== register: MD5 digest over UDP, {args.users} users from {args.sources} sources; straight to "
                  f"the sandbox's registrar vs through Kamailio (Path added, relayed to it); "
                  f"{args.register_seconds:.0f} s runs, interleaved", flush=True)
            best: dict[str, float] = {}
            runs: dict[tuple[str, float], tuple[sip_register.Sample, float]] = {}
            for rate in args.rates:
                for target, edge_pid in ((direct, None), (via, edge.pid)):
                    sample, edge_us = await measure(loads[target.name], target, rate, args.register_seconds, edge_pid)
                    runs[(target.name, rate)] = (sample, edge_us)
                    extra = f"  Kamailio CPU {edge_us:5.0f} us/reg" if edge_pid else ""
                    print(sip_register.row(target.name, rate, sample) + extra, flush=True)
                    if sample.clean:
                        best[target.name] = max(best.get(target.name, 0.0), rate)
            print("through Kamailio / direct, per rate (registrations/s; p99; CPU per registration of voipbin + "
                  "Kamailio against voipbin alone):")
            for rate in args.rates:
                (d, _), (k, edge_us) = runs[("direct", rate)], runs[("kamailio", rate)]
                print(f"  at {rate:>6.0f}/s: {k.rate / max(d.rate, 1e-9):5.2f}x reg/s   p99 "
                      f"{k.p99_ms / max(d.p99_ms, 1e-9):5.2f}x   CPU {(k.cpu_us + edge_us) / max(d.cpu_us, 1e-9):5.2f}x")
            for name in ("direct", "kamailio"):
                print(f"{name:<9} highest clean rate tried: {best.get(name, 0):,.0f}/s")
            print(f"through Kamailio / direct (highest clean rate): "
                  f"{best.get('kamailio', 0) / max(best.get('direct', 0), 1e-9):.2f}x")
        finally:
            edge.terminate()
            edge.wait(10)
            sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["media", "register", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="short windows, one trial, fewer rates (< 4 min)")
    parser.add_argument("--seconds", type=float, default=5.0, help="media: measured window per trial")
    parser.add_argument("--repeats", type=int, default=3, help="media: trials per N (the median decides)")
    parser.add_argument("--ramp", default="200,400,800,1200,1600,2000,2400,3000", help="media: N for 1 pod (x2 for 2)")
    parser.add_argument("--priority", choices=["default", "nice", "fifo"], default="fifo",
                        help="media pods' scheduling (see bench/media_capacity.py)")
    parser.add_argument("--no-pin", action="store_true", help="media: let the scheduler place the pods")
    parser.add_argument("--rates", default="500,1000,2000", help="register: offered registrations/s")
    parser.add_argument("--register-seconds", type=float, default=6.0, help="register: seconds per run")
    parser.add_argument("--users", type=int, default=1000, help="register: distinct extensions")
    parser.add_argument("--sources", type=int, default=8, help="register: client source IPs per target")
    parser.add_argument("--server-cpu", type=int, default=0, help="register: the CPU voipbin and Kamailio are pinned "
                                                                  "to (this client runs on the others)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeats, args.register_seconds, args.users = 3.0, 1, 4.0, 500
        args.rates = "500,1000"
    args.rates = [float(r) for r in args.rates.split(",")]
    started = time.monotonic()
    if args.part in ("media", "both"):
        media_part(args)
    if args.part in ("register", "both"):
        import uvloop

        others = os.sched_getaffinity(0) - {args.server_cpu}
        if others:
            os.sched_setaffinity(0, others)
        uvloop.run(register_part(args))
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
