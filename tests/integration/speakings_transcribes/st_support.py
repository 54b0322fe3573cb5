"""Helpers of the speaking/transcribe tests (a uniquely named module: imported by conftest and tests).

``live_call`` is an answered call running a long ``sleep``: its ``leg.phone`` is the endpoint's
RTP session (feed ``leg.phone.outbound`` to make the phone speak) and ``ear`` records what the
phone receives, frame by frame, with the arrival time of each frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests_support.events import Events
from tests_support.fake_legs import FakeLeg, FakeOriginator
from tests_support.frame_log import FrameLog

@dataclass
class LiveCall:
    call: dict[str, Any]
    leg: FakeLeg
    ear: FrameLog


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
    ear = FrameLog()
    await leg.answer()
    assert leg.phone is not None
    leg.phone.add_inbound_consumer(ear)
    await events.next("call_progressing", call["id"])
    return LiveCall(call, leg, ear)
