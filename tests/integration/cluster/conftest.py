"""The cluster tests' shared fixtures: pods started by a test on the loopback PostgreSQL and NATS
(``cluster``), every event any pod publishes on the bus (``seen``), and a SIP UA on loopback that
plays the carrier (``trunk``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from cluster_support import Cluster, Seen
from tests_support.net import free_port
from voipbin.events.nats_bus import NatsBus
from voipbin.events.topics import ALL_EVENTS
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.ua import UserAgent

NATS_URL = os.environ.get("VOIPBIN_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest_asyncio.fixture
async def cluster(tmp_path: Path, postgres_url: str) -> AsyncIterator[Cluster]:
    """A cluster with no pods yet (the test starts them); every pod is stopped after the test."""
    c = Cluster(tmp_path, db_url=postgres_url, bus_url=NATS_URL)
    try:
        yield c
    finally:
        await c.stop_all()


@pytest_asyncio.fixture
async def seen() -> AsyncIterator[Seen]:
    """Every event published on the bus while the test runs, from any pod."""
    bus = NatsBus(NATS_URL, name="cluster-test")
    await bus.start()
    collector = Seen()
    await bus.subscribe(ALL_EVENTS, collector)
    try:
        yield collector
    finally:
        await bus.close()


@pytest_asyncio.fixture
async def trunk() -> AsyncIterator[UserAgent]:
    """Our own SIP UA on a free loopback port: the trunk (carrier) side of calls."""
    stack = SipStack(StackConfig(host="127.0.0.1", port=free_port()))
    await stack.start()
    agent = UserAgent(stack)
    yield agent
    agent.close()
    await stack.stop()
