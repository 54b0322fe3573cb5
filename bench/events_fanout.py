"""Event fan-out to WebSocket subscribers: deliveries/s and publish -> receive latency.

    .venv/bin/python bench/events_fanout.py [--subscribers 100] [--events 2000] [--rate 100]
                                            [--bus memory://|nats://127.0.0.1:4222]

A server process (Runtime + uvicorn/uvloop on 127.0.0.1, SQLite in a temp dir, the chosen bus)
publishes ``--events`` events at ``--rate`` events/s through ``runtime.bus`` (the outbox write
included, as services do). This process holds ``--subscribers`` WebSocket clients subscribed to
``customer_id:<id>:bench`` and timestamps each frame on arrival. Latency = arrival - publish, both
on CLOCK_MONOTONIC (shared by the processes of one host). Targets: >= 5,000 deliveries/s, p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


# --- server process ---------------------------------------------------------------------------

async def serve(port: int, db: str, bus_url: str) -> None:
    import uvicorn

    from voipbin.api.app import create_app
    from voipbin.config import Settings
    from voipbin.events.model import Event
    from voipbin.events.websocket_hub import UVICORN_WS_OPTIONS
    from voipbin.runtime import Runtime
    from voipbin.store.migrate import upgrade_async

    url = f"sqlite+aiosqlite:///{db}"
    await upgrade_async(url)
    settings = Settings(_env_file=None, database_url=url, bus_url=bus_url, sip_enabled=False,  # type: ignore[call-arg]
                        log_level="WARNING")
    runtime = Runtime(settings)
    await runtime.start()
    seed = await runtime.seed_sandbox()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off", **UVICORN_WS_OPTIONS))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    print(json.dumps({"ready": True, "customer_id": seed.customer_id}), flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    warmup: asyncio.Task[None] | None = None

    async def warm() -> None:
        while True:
            await runtime.bus.publish(Event("bench_warmup", seed.customer_id, "bench", "warmup", {"seq": -1}))
            await asyncio.sleep(0.05)

    while line := (await reader.readline()).decode().split():
        if line[0] == "warmup":
            warmup = asyncio.create_task(warm())
        elif line[0] == "go":
            if warmup:
                warmup.cancel()
            n, rate = int(line[1]), float(line[2])
            start = time.monotonic()
            sent = 0
            while sent < n:  # paced against absolute deadlines: event k is due at start + k / rate
                due = min(n, int((time.monotonic() - start) * rate) + 1)
                while sent < due:
                    await runtime.bus.publish(Event("bench_created", seed.customer_id, "bench", str(sent),
                                                    {"seq": sent, "t_pub": time.monotonic()}))
                    sent += 1
                await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
            elapsed = time.monotonic() - start
            print(json.dumps({"published": sent, "publish_seconds": elapsed, "hub": runtime.hub.stats}), flush=True)
        elif line[0] == "quit":
            break
    server.should_exit = True
    await task
    await runtime.stop()


# --- client side ------------------------------------------------------------------------------

async def login(port: int) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        r = await c.post("/auth/login", json={"username": "admin@localhost", "password": "admin@localhost"})
        r.raise_for_status()
        return str(r.json()["token"])


async def run(args: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect

    tmp = tempfile.mkdtemp(prefix="voipbin-bench-")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(port), "--db",
                             str(Path(tmp) / "bench.db"), "--bus", args.bus],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout and proc.stdin
    loop = asyncio.get_running_loop()
    ready = json.loads(await loop.run_in_executor(None, proc.stdout.readline))
    customer_id = ready["customer_id"]
    token = await login(port)
    topic = f"customer_id:{customer_id}:bench"

    latencies: list[float] = []
    received = [0] * args.subscribers
    warmed = [asyncio.Event() for _ in range(args.subscribers)]
    done = asyncio.Event()
    first_rx: list[float] = []
    last_rx = [0.0]
    expected = args.events * args.subscribers
    total = [0]

    async def client(i: int) -> None:
        async with connect(f"ws://127.0.0.1:{port}/v1.0/ws?token={token}", max_queue=None,
                           compression=None) as ws:
            await ws.send(json.dumps({"type": "subscribe", "topics": [topic]}))
            async for raw in ws:
                now = time.monotonic()
                msg = json.loads(raw)
                if msg["event_type"] == "bench_warmup":
                    warmed[i].set()
                    continue
                latencies.append(now - msg["data"]["t_pub"])
                if not first_rx:
                    first_rx.append(now)
                last_rx[0] = now
                received[i] += 1
                total[0] += 1
                if total[0] == expected:
                    done.set()
                if received[i] == args.events:
                    return

    clients = [asyncio.create_task(client(i)) for i in range(args.subscribers)]
    proc.stdin.write("warmup\n")
    proc.stdin.flush()
    await asyncio.wait_for(asyncio.gather(*(w.wait() for w in warmed)), 30)
    proc.stdin.write(f"go {args.events} {args.rate}\n")
    proc.stdin.flush()
    t0 = time.monotonic()
    try:
        await asyncio.wait_for(done.wait(), args.events / args.rate + 30)
    except TimeoutError:
        pass
    report = json.loads(await loop.run_in_executor(None, proc.stdout.readline))
    proc.stdin.write("quit\n")
    proc.stdin.flush()
    for c in clients:
        c.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    proc.wait(timeout=30)

    span = max(last_rx[0] - t0, 1e-9)
    lat = sorted(latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else float("nan")

    print(f"bus                 {args.bus}")
    print(f"subscribers         {args.subscribers}")
    print(f"events published    {report['published']} in {report['publish_seconds']:.2f} s "
          f"({report['published'] / report['publish_seconds']:.0f} events/s, target rate {args.rate:g})")
    print(f"deliveries          {sum(received)} / {expected} expected"
          f"  (slow-consumer drops: {report['hub']['slow_consumer_drops']})")
    print(f"deliveries/s        {sum(received) / span:,.0f}  (first publish -> last receive, {span:.2f} s)")
    print(f"latency ms          p50 {pct(50):.1f}  p90 {pct(90):.1f}  p99 {pct(99):.1f}  max {lat[-1] * 1000 if lat else 0:.1f}")
    ok = sum(received) == expected and sum(received) / span >= 5000 and pct(99) <= 50
    print(f"targets             >= 5,000 deliveries/s and p99 <= 50 ms: {'MET' if ok else 'NOT MET'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--events", type=int, default=2000, help="events published")
    parser.add_argument("--rate", type=float, default=100.0, help="events published per second")
    parser.add_argument("--bus", default="memory://")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.serve:
        uvloop.run(serve(args.port, args.db, args.bus))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    os.environ.setdefault("VOIPBIN_LOG_LEVEL", "WARNING")
    main()
