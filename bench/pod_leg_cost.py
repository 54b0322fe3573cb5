#!/usr/bin/env python3
"""What a pod leg costs (issue 19): a conference participant whose call another media pod holds
(joined through a SIP leg between the pods, ``voipbin.pods.legs``) against the same participant held
by the room's own pod (the reference, measured in the same run, interleaved).

Two media runtimes in this process (pod A mixes the room, pod B holds the remote call) on the local
PostgreSQL and NATS, real SIP and RTP on 127.0.0.1, and a carrier (our own UA) placing the calls to a
number whose flow joins the room. A listener's call sits on A. The speaker's call is placed on A
(``local``) or on B (``pod leg``), alternately, ``--rounds`` times. In each round:

* **CPU**: this process's CPU time (getrusage: both pods, the carrier and the legs) over
  ``--window`` seconds of the room carrying the two calls, per second of room time. The difference
  between the two is the leg (two more RTP streams, the relay on B, one more G.711 encode/decode each
  way), the carrier's own streams being the same in both.
* **Mouth-to-ear**: the speaker's phone switches from silence to a tone; the time until the
  listener's phone receives its first loud frame (the media clock tick, the jitter buffers and the
  mix on the way; a pod leg adds one relay, one more jitter buffer and one more RTP hop).

    .venv/bin/python bench/pod_leg_cost.py [--quick] [--rounds 3] [--window 5] [--trials 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from voipbin.config import Settings  # noqa: E402
from voipbin.events.bus import event_queue  # noqa: E402
from voipbin.events.model import Event  # noqa: E402
from voipbin.media.session import RtpSession  # noqa: E402
from voipbin.media.sources import AudioSource  # noqa: E402
from voipbin.runtime import Runtime  # noqa: E402
from voipbin.sip.stack import SipStack, StackConfig  # noqa: E402
from voipbin.sip.ua import UserAgent  # noqa: E402
from tests_support.legs import RtpCaller  # noqa: E402
from tests_support.postgres import create_database, drop_database  # noqa: E402
from voipbin.store.migrate import upgrade  # noqa: E402

NATS_URL = os.environ.get("VOIPBIN_TEST_NATS_URL", "nats://127.0.0.1:4222")
RATE_HZ = 8000
FRAME_SAMPLES = 160
LOUD_RMS = 1000.0


class Tone(AudioSource):
    """A 1 kHz tone while ``on``, else nothing (the phone sends silence)."""

    def __init__(self) -> None:
        self.on = False
        self._n = 0

    def read_frame(self) -> bytes | None:
        if not self.on:
            return None
        t = (np.arange(FRAME_SAMPLES) + self._n) / RATE_HZ
        self._n += FRAME_SAMPLES
        return (np.sin(2 * np.pi * 1000 * t) * 8000).astype("<i2").tobytes()


class Phone(RtpCaller):
    """One carrier call (:class:`~tests_support.legs.RtpCaller`): what it says (:class:`Tone`) and
    when it last heard a loud frame."""

    def __init__(self, rtp: RtpSession) -> None:
        super().__init__(rtp)
        self.tone = Tone()
        rtp.outbound.add(self.tone)
        self.loud: asyncio.Event = asyncio.Event()
        self.quiet_frames = 0
        self.heard_at = 0.0

    def on_audio(self, frame: bytes) -> None:
        super().on_audio(frame)
        x = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        if float(np.sqrt(np.mean(x * x))) > LOUD_RMS:
            self.quiet_frames = 0
            if not self.loud.is_set():
                self.heard_at = asyncio.get_running_loop().time()
                self.loud.set()
        else:
            self.quiet_frames += 1


def _settings(db_url: str, pod_id: str, trunk_port: int, rtp_low: int) -> Settings:
    return Settings(_env_file=None, database_url=db_url, bus_url=NATS_URL, role="media",  # type: ignore[call-arg]
                    pod_id=pod_id, sip_host="127.0.0.1", sip_port=0, rtp_port_min=rtp_low,
                    rtp_port_max=rtp_low + 98, trunk_uri=f"sip:127.0.0.1:{trunk_port}",
                    trunk_allowed_hosts=f"127.0.0.1:{trunk_port}", number_pool="+15550100000-+15550109999",
                    rtp_timeout_seconds=30)


async def _next(queue: asyncio.Queue[Event], event_type: str, timeout: float = 20) -> Event:
    async with asyncio.timeout(timeout):
        while (event := await queue.get()).event_type != event_type:
            pass
    return event


async def _dial(trunk: UserAgent, pod: Runtime, number: str) -> Phone:
    phone = Phone(await RtpSession.open("127.0.0.1"))
    uri = f"sip:{number}@127.0.0.1:{pod.sip.port}"
    phone.session = await trunk.invite(request_uri=uri, to_uri=uri, from_uri="sip:+15551230000@127.0.0.1",
                                       sdp=phone.offer.serialize(), handler=phone)
    return phone


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _round(trunk: UserAgent, pod: Runtime, number: str, listener: Phone, queue: asyncio.Queue[Event],
                 window_s: float, trials: int) -> tuple[float, list[float]]:
    """The speaker's call on ``pod`` joins; (CPU ms per second of room time, mouth-to-ear ms of each trial)."""
    speaker = await _dial(trunk, pod, number)
    await _next(queue, "conferencecall_joined")
    loop = asyncio.get_running_loop()
    cpu0, t0 = _cpu_s(), loop.time()
    await asyncio.sleep(window_s)  # the measurement window: the room runs
    cpu_ms_per_s = (_cpu_s() - cpu0) * 1000 / (loop.time() - t0)
    delays: list[float] = []
    for _ in range(trials):
        listener.loud.clear()
        speaker.tone.on = True
        said = loop.time()
        await asyncio.wait_for(listener.loud.wait(), 5)
        delays.append((listener.heard_at - said) * 1000)
        speaker.tone.on = False
        while listener.quiet_frames < 10:  # 200 ms of quiet before the next trial
            await asyncio.sleep(0.02)
    await speaker.session.bye()
    await asyncio.wait_for(speaker.ended.wait(), 10)
    await _next(queue, "conferencecall_leaved")
    speaker.rtp.close()
    return cpu_ms_per_s, delays


async def main(args: argparse.Namespace) -> None:
    name, url = await create_database("voipbin_bench")
    await asyncio.to_thread(upgrade, url)
    stack = SipStack(StackConfig(host="127.0.0.1", port=0))
    await stack.start()
    trunk = UserAgent(stack)
    a = Runtime(_settings(url, "bench-pod-a", stack.port, 36400))
    b = Runtime(_settings(url, "bench-pod-b", stack.port, 36600))
    await a.start()
    await b.start()
    try:
        seed = await a.seed_sandbox()
        conference = await a.conferences.create(seed.customer_id, {"type": "conference"})
        flow = await a.flows.create(seed.customer_id, {"name": "room", "detail": "", "actions": [
            {"type": "answer"}, {"type": "conference_join", "option": {"conference_id": conference.id}}]})
        number = await a.numbers.find_active(seed.number)
        assert number is not None
        await a.numbers.update(seed.customer_id, number.id, {"call_flow_id": flow.id})
        queue, sub = await event_queue(a.bus.inner, f"customer_id:{seed.customer_id}:conferencecall")
        listener = await _dial(trunk, a, seed.number)
        await _next(queue, "conferencecall_joined")
        results: dict[str, tuple[list[float], list[float]]] = {"local": ([], []), "pod leg": ([], [])}
        for _ in range(args.rounds):
            for label, pod in (("local", a), ("pod leg", b)):
                cpu, delays = await _round(trunk, pod, seed.number, listener, queue, args.window, args.trials)
                results[label][0].append(cpu)
                results[label][1].extend(delays)
        await sub.unsubscribe()
        print(f"pod leg cost: {args.rounds} interleaved rounds, {args.window:g} s CPU window, {args.trials} tone "
              f"trials each (this machine, shared: figures are relative to the reference beside them)")
        print(f"{'speaker call':<14}{'CPU ms/s (median)':>19}{'mouth-to-ear p50':>18}{'p90':>8}")
        for label, (cpus, delays) in results.items():
            q = statistics.quantiles(delays, n=10) if len(delays) > 1 else delays * 9
            print(f"{label + (' (ref)' if label == 'local' else ''):<14}{statistics.median(cpus):>19.1f}"
                  f"{statistics.median(delays):>16.0f}ms{q[8]:>6.0f}ms")
        (lc, ld), (rc, rd) = results["local"], results["pod leg"]
        print(f"the leg: +{statistics.median(rc) - statistics.median(lc):.1f} ms CPU per second of call "
              f"({statistics.median(rc) / statistics.median(lc):.2f}x the local room), "
              f"+{statistics.median(rd) - statistics.median(ld):.0f} ms mouth-to-ear")
        await listener.session.bye()
        listener.rtp.close()
    finally:
        await b.stop()
        await a.stop()
        trunk.close()
        await stack.stop()
        await drop_database(name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round, 2 s window, 4 trials")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--trials", type=int, default=10)
    ns = parser.parse_args()
    if ns.quick:
        ns.rounds, ns.window, ns.trials = 1, 2.0, 4
    started = time.monotonic()
    uvloop.run(main(ns))  # as every server process runs
    print(f"({time.monotonic() - started:.0f} s)")
