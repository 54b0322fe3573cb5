"""The pods' directory (voipbin.pods.directory) on SQLite and PostgreSQL: who holds a resource (nobody
once it is finished), and which live media pod takes a new call (least loaded, bursts spread, dead and
non-media pods skipped); the router's placement (voipbin.pods.router) on the in-memory bus: a pod that
does not answer or drains is skipped for the next, a call joining a conference goes to its pod."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from voipbin.calls.manager import CallsUnavailable
from voipbin.common.clock import new_id, utcnow
from voipbin.events.memory import MemoryBus
from voipbin.pods.commands import Commands, PodUnavailable
from voipbin.pods.directory import PodDirectory
from voipbin.pods.router import PodRouter
from voipbin.store.db import make_engine, make_sessionmaker
from voipbin.store.models import (
    Activeflow, Call, Conference, Conferencecall, Customer, Groupcall, Pod, Speaking, Transcribe,
)


@pytest_asyncio.fixture
async def store(db_url: str) -> AsyncIterator[Any]:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        yield sessions
    finally:
        await engine.dispose()


async def _add(sessions: Any, *rows: Any) -> None:
    async with sessions() as db, db.begin():
        db.add_all(rows)


def _pod(pod_id: str, role: str, load: int, age_s: float = 0.0) -> Pod:
    now = utcnow()
    return Pod(id=pod_id, role=role, load=load, sip_host="127.0.0.1", sip_port=5060,
               tm_heartbeat=now - timedelta(seconds=age_s), tm_create=now - timedelta(seconds=60))


async def test_the_holder_of_each_kind_of_resource(store: Any) -> None:
    cid = new_id()
    now = utcnow()
    live, ended, group, flow = new_id(), new_id(), new_id(), new_id()
    room, member = new_id(), new_id()
    await _add(store, Customer(id=cid, email=f"{cid}@example.test", name="c", webhook_secret="s", tm_create=now))
    await _add(store,
               Call(id=live, customer_id=cid, status="progressing", pod_id="pod-a", tm_create=now),
               Call(id=ended, customer_id=cid, status="hangup", pod_id="pod-b", tm_create=now),
               Groupcall(id=group, customer_id=cid, call_ids=[live], tm_create=now),
               Activeflow(id=flow, customer_id=cid, reference_type="call", reference_id=live, tm_create=now),
               Speaking(id="s-live", customer_id=cid, reference_id=live, status="active", pod_id="pod-a",
                        tm_create=now),
               Speaking(id="s-done", customer_id=cid, reference_id=live, status="stopped", pod_id="pod-a",
                        tm_create=now),
               Transcribe(id="t-live", customer_id=cid, reference_id=live, status="progressing", pod_id="pod-a",
                          tm_create=now),
               Conference(id=room, customer_id=cid, type="conference", status="progressing", pod_id="pod-c",
                          tm_create=now))
    await _add(store, Conferencecall(id=member, customer_id=cid, conference_id=room, reference_id=live,
                                     status="joined", tm_create=now))
    directory = PodDirectory(store, expire_seconds=8)
    assert await directory.holder("call", live) == "pod-a"
    assert await directory.holder("call", ended) == ""  # finished: answered from the store by any pod
    assert await directory.holder("call", new_id()) == ""  # unknown: the local command's 404
    assert await directory.holder("groupcall", group) == "pod-a"
    assert await directory.holder("activeflow", flow) == "pod-a"
    assert await directory.holder("speaking", "s-live") == "pod-a"
    assert await directory.holder("speaking", "s-done") == ""
    assert await directory.holder("transcribe", "t-live") == "pod-a"
    assert await directory.holder("conference", room) == "pod-c"
    assert await directory.holder("conferencecall", member) == "pod-c"


async def test_new_calls_go_to_the_least_loaded_live_media_pod(store: Any) -> None:
    await _add(store, _pod("pod-busy", "media", load=5), _pod("pod-idle", "media", load=1),
               _pod("pod-all", "all", load=3), _pod("pod-dead", "media", load=0, age_s=30),
               _pod("pod-api", "api", load=0), _pod("pod-worker", "worker", load=0))
    directory = PodDirectory(store, expire_seconds=8)
    assert await directory.alive("pod-idle") and not await directory.alive("pod-dead")
    # a burst between two heartbeats is spread by what this process placed since the pods' last beat
    picks = [await directory.least_loaded_media() for _ in range(6)]
    assert picks[:2] == ["pod-idle", "pod-idle"]
    assert sorted(picks[2:]) == ["pod-all", "pod-all", "pod-idle", "pod-idle"]
    assert "pod-dead" not in picks and "pod-api" not in picks and "pod-worker" not in picks
    assert await directory.least_loaded_media(exclude=["pod-idle", "pod-all"]) == "pod-busy"
    assert await directory.least_loaded_media(exclude=["pod-idle", "pod-all", "pod-busy"]) is None


async def test_placement_skips_a_pod_that_does_not_answer_or_drains(store: Any) -> None:
    cid = new_id()
    now = utcnow()
    await _add(store, Customer(id=cid, email=f"{cid}@example.test", name="c", webhook_secret="s", tm_create=now))
    await _add(store, _pod("pod-killed", "media", load=0), _pod("pod-draining", "media", load=1),
               _pod("pod-ok", "media", load=2), _pod("pod-room", "media", load=9))
    await _add(store, Conference(id="room-1", customer_id=cid, type="conference", status="progressing",
                                 pod_id="pod-room", tm_create=now))
    bus = MemoryBus()
    api = Commands("pod-api", bus)
    media = {name: Commands(name, bus) for name in ("pod-draining", "pod-ok", "pod-room")}  # pod-killed: no responder

    def create_on(pod: str) -> Any:
        async def create(customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
            if pod == "pod-draining":
                raise CallsUnavailable("the server is shutting down; no new calls", reason="DRAINING")
            return {"pod": pod}
        return create

    for name, pod in media.items():
        pod.register("calls.create", create_on(name))
        await pod.start()
    api.register("calls.create", create_on("pod-api"))
    router = PodRouter(api, PodDirectory(store, expire_seconds=8), has_media=False)
    assert await router.place("calls.create", customer_id=cid, body={}) == {"pod": "pod-ok"}
    joined = await router.place("calls.create", near=("conference", "room-1"), customer_id=cid, body={})
    assert joined == {"pod": "pod-room"}
    for pod in media.values():
        await pod.stop()
    with pytest.raises(PodUnavailable, match="no media pod is available"):
        await router.place("calls.create", customer_id=cid, body={})
