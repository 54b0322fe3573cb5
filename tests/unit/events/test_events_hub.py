"""WebSocketHub without a web server: authorization of topics, matching, fan-out and bounded queues."""

from __future__ import annotations

import json

import pytest

from voipbin.events.memory import MemoryBus
from voipbin.events.model import Event
from voipbin.events.websocket_hub import PolicyViolation, WebSocketHub

C, OTHER = "c-1", "c-2"


def sub(*topics: str, kind: str = "subscribe") -> str:
    return json.dumps({"type": kind, "topics": list(topics)})


def ev(customer: str = C, resource: str = "call", rid: str = "r1") -> Event:
    return Event(f"{resource}_created", customer, resource, rid, {"id": rid})


async def test_fan_out_to_matching_connections_only() -> None:
    bus = MemoryBus()
    hub = WebSocketHub(bus)
    await hub.start()
    a, b, c = hub.connect(C), hub.connect(C), hub.connect(OTHER)
    hub.handle_message(a, sub(f"customer_id:{C}:call"))
    hub.handle_message(b, sub(f"customer_id:{C}:call:r2", f"customer_id:{C}:call:r2"))
    hub.handle_message(c, sub(f"customer_id:{OTHER}"))
    await bus.publish(ev(rid="r1"))
    await bus.publish(ev(rid="r2"))
    await bus.publish(ev(resource="number"))
    assert [json.loads(a.queue.get_nowait())["data"]["id"] for _ in range(2)] == ["r1", "r2"]
    assert a.queue.empty()
    frame = json.loads(b.queue.get_nowait())
    assert frame == {"event_type": "call_created", "timestamp": frame["timestamp"],
                     "topic": f"customer_id:{C}:call:r2", "data": {"id": "r2"}}
    assert b.queue.empty() and c.queue.empty()
    hub.handle_message(a, sub(f"customer_id:{C}:call", kind="unsubscribe"))
    await bus.publish(ev())
    assert a.queue.empty()
    assert hub.stats["deliveries"] == 3
    await hub.stop()
    assert a.closed.is_set() and a.close_code == 1001


@pytest.mark.parametrize("message, reason", [
    (sub(f"customer_id:{OTHER}:call"), "another customer"),
    (sub("agent_id:someone:call"), "another agent"),
    (sub("bogus"), "topic"),
    ("[]", "object"),
    ("{", "JSON"),
    (json.dumps({"type": "subscribe", "topics": "customer_id:c-1"}), "array"),
    (json.dumps({"type": "ping"}), "subscribe or unsubscribe"),
])
def test_policy_violations(message: str, reason: str) -> None:
    hub = WebSocketHub(MemoryBus())
    conn = hub.connect(C, agent_id="me")
    with pytest.raises(PolicyViolation, match=reason):
        hub.handle_message(conn, message)
    assert not conn.filters


def test_customer_scope_needs_admin_or_manager_but_agent_scope_does_not() -> None:
    hub = WebSocketHub(MemoryBus())
    conn = hub.connect(C, agent_id="me", customer_scope_allowed=False)
    with pytest.raises(PolicyViolation, match="permission"):
        hub.handle_message(conn, sub(f"customer_id:{C}:call"))
    hub.handle_message(conn, sub("agent_id:me:call"))
    assert hub.dispatch(Event("call_created", C, "call", "x", {}, agent_ids=("me",))) == 1
    assert json.loads(conn.queue.get_nowait())["topic"] == "agent_id:me:call:x"


def test_a_full_queue_disconnects_the_slow_consumer() -> None:
    hub = WebSocketHub(MemoryBus(), queue_size=3)
    slow, fast = hub.connect(C), hub.connect(C)
    for conn in (slow, fast):
        hub.handle_message(conn, sub(f"customer_id:{C}"))
    for i in range(3):
        assert hub.dispatch(ev(rid=str(i))) == 2
        fast.queue.get_nowait()
    assert hub.dispatch(ev(rid="3")) == 1  # slow's queue is full: it is dropped, fast still gets it
    assert slow.closed.is_set() and slow.close_code == 1013
    assert slow not in hub.connections and hub.stats["slow_consumer_drops"] == 1
    assert slow.queue.qsize() == 3  # memory stayed bounded
    assert hub.dispatch(ev(rid="4")) == 1


def test_disconnect_forgets_subscriptions() -> None:
    hub = WebSocketHub(MemoryBus())
    conn = hub.connect(C)
    hub.handle_message(conn, sub(f"customer_id:{C}:call", f"customer_id:{C}:number"))
    hub.disconnect(conn)
    assert hub.dispatch(ev()) == 0 and not hub.connections
    assert not hub._by_customer  # noqa: SLF001 - the index is empty again


def test_the_send_queue_is_bounded_in_bytes() -> None:
    hub = WebSocketHub(MemoryBus(), queue_size=1000, queue_bytes=10_000)
    slow, fast = hub.connect(C), hub.connect(C)
    for conn in (slow, fast):
        hub.handle_message(conn, sub(f"customer_id:{C}"))
    big = {"blob": "x" * 3000}  # ~3 KB per frame: the 4th does not fit in 10 kB
    for i in range(3):
        assert hub.dispatch(Event("call_updated", C, "call", str(i), big)) == 2
        fast.queue.get_nowait()
    assert 9000 < slow.queue.nbytes <= 10_000 and fast.queue.nbytes == 0
    assert hub.dispatch(Event("call_updated", C, "call", "3", big)) == 1  # slow is closed 1013, fast gets it
    assert slow.close_code == 1013 and slow not in hub.connections
    assert slow.queue.qsize() == 3


def test_bytes_are_released_as_frames_are_sent_and_one_large_frame_still_passes() -> None:
    hub = WebSocketHub(MemoryBus(), queue_bytes=1000)
    conn = hub.connect(C)
    hub.handle_message(conn, sub(f"customer_id:{C}"))
    huge = {"blob": "y" * 5000}  # larger than the whole bound: accepted into an empty queue
    assert hub.dispatch(Event("call_updated", C, "call", "a", huge)) == 1
    frame = conn.queue.get_nowait()
    assert conn.queue.nbytes == 0 and len(frame) > 5000
    for i in range(20):  # small frames, each read before the next: never over the bound
        assert hub.dispatch(Event("call_updated", C, "call", str(i), {"n": i})) == 1
        conn.queue.get_nowait()
    assert not conn.closed.is_set() and conn.queue.nbytes == 0
