"""Inbound-call fixtures: a Runtime with real SIP on 127.0.0.1 whose trunk is a test peer on ``trunk_port``
(our own UA, or sipp), and helpers to await events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from inbound_support import free_udp_port
from tests_support.events import Events
from voipbin.config import Settings
from voipbin.events.bus import event_queue
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.ua import UserAgent


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
    yield Events(queue, timeout=20)
    await sub.unsubscribe()


@pytest_asyncio.fixture
async def trunk(trunk_port: int) -> AsyncIterator[UserAgent]:
    """Our own UA on the trunk port: the carrier that places inbound calls (``inbound_support.place_call``)."""
    stack = SipStack(StackConfig(host="127.0.0.1", port=trunk_port))
    await stack.start()
    agent = UserAgent(stack)
    yield agent
    agent.close()
    await stack.stop()
