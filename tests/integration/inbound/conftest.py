"""Inbound-call fixtures: a Runtime with real SIP on 127.0.0.1 whose trunk is a test peer on ``trunk_port``
(our own UA, or sipp), and helpers to await events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from inbound_support import free_udp_port
from voipbin.config import Settings
from voipbin.events.bus import event_queue
from voipbin.events.model import Event


class Events:
    """Events of one customer in publish order; ``next(type, resource_id)`` awaits the next match."""

    def __init__(self, queue: asyncio.Queue[Event]) -> None:
        self.queue = queue
        self.seen: list[Event] = []

    async def next(self, event_type: str, resource_id: str | None = None, timeout: float = 20,
                   where: Any = None) -> Event:
        async def find() -> Event:
            while True:
                event = await self.queue.get()
                self.seen.append(event)
                if event.event_type == event_type and resource_id in (None, event.resource_id) and (
                        where is None or where(event)):
                    return event
        return await asyncio.wait_for(find(), timeout)


@pytest.fixture
def trunk_port() -> int:
    return free_udp_port()


@pytest.fixture
def settings(sqlite_url: str, trunk_port: int) -> Settings:
    return Settings(database_url=sqlite_url, webhook_allow_private=True, sip_port=0,  # type: ignore[call-arg]
                    webhook_worker=False, rtp_timeout_seconds=30, call_ring_timeout_seconds=20,
                    trunk_uri=f"sip:127.0.0.1:{trunk_port}", trunk_allowed_hosts=f"127.0.0.1:{trunk_port}",
                    trunk_username="trunkuser", trunk_password="trunkpass", _env_file=None)


@pytest_asyncio.fixture
async def events(runtime: Any) -> AsyncIterator[Events]:
    queue, sub = await event_queue(runtime.bus, f"customer_id:{runtime.seed.customer_id}")
    yield Events(queue)
    await sub.unsubscribe()
