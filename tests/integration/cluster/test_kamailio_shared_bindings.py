"""Behind the SIP edge a phone registers through one media pod and is called from another: the
bindings (with their Path) are shared in the store and a pod that holds no live binding of an AOR
reads the table again (``DatabaseLocationService``, two instances = two pods, on SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest_asyncio

from voipbin.extensions.registrar import MISS_RELOAD_S, DatabaseLocationService
from voipbin.sip.location import Binding
from voipbin.store.db import make_engine, make_sessionmaker

AOR = "sip:4001@c1.registrar.voipbin.test"
PATH = ("<sip:127.0.0.1:5060;lr;received=sip:198.51.100.7:40123>",)


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def pods(db_url: str) -> AsyncIterator[tuple[DatabaseLocationService, DatabaseLocationService, Monotonic]]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    clock = Monotonic()
    try:
        yield DatabaseLocationService(sessions, monotonic=clock), DatabaseLocationService(sessions, monotonic=clock), clock
    finally:
        await engine.dispose()


async def test_a_binding_saved_by_one_pod_is_found_by_another_that_missed_it(pods) -> None:  # type: ignore[no-untyped-def]
    registrar_pod, calling_pod, clock = pods
    assert await calling_pod.lookup(AOR) == []  # nothing registered yet: this pod remembers the miss
    binding = Binding(aor=AOR, contact="sip:4001@10.0.0.5:5062", expires_at=time.time() + 300,
                      received=("127.0.0.1", 5060), transport="UDP", call_id="c1", cseq=2, domain_id="c1",
                      user="4001", owner_id="ext-1", path=PATH)
    await registrar_pod.save(binding)
    clock.now += MISS_RELOAD_S + 0.1
    [found] = await calling_pod.lookup(AOR)
    assert found.path == PATH and found.received == ("127.0.0.1", 5060) and found.contact == binding.contact
