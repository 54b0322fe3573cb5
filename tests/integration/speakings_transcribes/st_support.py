"""Helpers of the speaking/transcribe tests (a uniquely named module: imported by conftest and tests).

``live_call`` is an answered call running a long ``sleep``: its ``leg.phone`` is the endpoint's
RTP session (feed ``leg.phone.outbound`` to make the phone speak) and ``ear`` records what the
phone receives, frame by frame, with the arrival time of each frame.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from tests_support.events import Events
from tests_support.fake_legs import FakeLeg, FakeOriginator

VOICED_RMS = 300.0  # a 20 ms frame above ~-40 dBFS carries speech


@dataclass
class Ear:
    """What the phone receives: (arrival loop time, rms) per 20 ms frame, and the PCM (8 kHz)."""

    frames: list[tuple[float, float]] = field(default_factory=list)
    pcm: bytearray = field(default_factory=bytearray)
    _waiters: list[tuple[Any, asyncio.Future[None]]] = field(default_factory=list)

    def __call__(self, frame: bytes) -> None:
        now = asyncio.get_running_loop().time()
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        self.frames.append((now, float(np.sqrt(np.mean(samples ** 2)))))
        self.pcm += frame
        for cond, fut in list(self._waiters):
            if not fut.done() and cond(self):
                fut.set_result(None)
                self._waiters.remove((cond, fut))

    async def until(self, cond: Any, timeout: float = 30) -> None:
        """Wait until ``cond(ear)`` holds (checked on every received frame)."""
        if cond(self):
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((cond, fut))
        await asyncio.wait_for(fut, timeout)

    def voiced_since(self, index: int) -> int:
        return sum(1 for _, rms in self.frames[index:] if rms > VOICED_RMS)

    def trailing_silence(self) -> int:
        n = 0
        for _, rms in reversed(self.frames):
            if rms > VOICED_RMS:
                break
            n += 1
        return n

    async def utterance(self, start: int = 0, *, silence_s: float = 0.8, timeout: float = 40) -> bytes:
        """Wait for speech after frame ``start`` followed by ``silence_s`` of silence; its 8 kHz PCM."""
        await self.until(lambda e: e.voiced_since(start) > 0 and e.trailing_silence() * 0.02 >= silence_s, timeout)
        return bytes(self.pcm[start * 320:])


@dataclass
class LiveCall:
    call: dict[str, Any]
    leg: FakeLeg
    ear: Ear


async def start_call(client: httpx.AsyncClient, token: str, runtime: Any, originator: FakeOriginator,
                     events: Events, actions: list[dict[str, Any]] | None = None) -> LiveCall:
    """POST /calls to the phone, answer it, wait for ``call_progressing``; the phone's ear is attached."""
    body = {"source": {"type": "tel", "target": runtime.seed.number},
            "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
            "actions": actions or [{"type": "sleep", "option": {"duration": 600000}}]}
    r = await client.post("/v1.0/calls", params={"token": token}, json=body)
    assert r.status_code == 200, r.text
    call = r.json()["calls"][0]
    leg = await originator.next_leg()
    ear = Ear()
    await leg.answer()
    assert leg.phone is not None
    leg.phone.add_inbound_consumer(ear)
    await events.next("call_progressing", call["id"])
    return LiveCall(call, leg, ear)
