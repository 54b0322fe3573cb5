"""GET /v1.0/ws against a live server with a real WebSocket client (seed 003 "Receiving Events")."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from voipbin.events.model import Event

from .conftest import OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, LiveServer, RawWebSocket, live_server, make_settings

EXT = {"name": "quickstart-phone", "detail": "d", "password": "secret-pass-1"}


async def recv_json(ws: ClientConnection, timeout: float = 5, *, markers: bool = False) -> dict[str, Any]:
    """The next pushed message (sync markers skipped unless ``markers``)."""
    async with asyncio.timeout(timeout):
        while True:
            msg = json.loads(await ws.recv())
            if markers or msg["event_type"] != "marker_created":
                return msg  # type: ignore[no-any-return]


async def subscribe(ws: ClientConnection, *topics: str, kind: str = "subscribe") -> None:
    await ws.send(json.dumps({"type": kind, "topics": list(topics)}))


async def sync(ws: ClientConnection, server: LiveServer) -> list[dict[str, Any]]:
    """Wait until the server applied everything ``ws`` sent so far: subscribe to a marker topic, publish
    a marker with a fresh id until it arrives. Returns the other messages received before it."""
    marker_id = uuid.uuid4().hex
    await subscribe(ws, f"customer_id:{server.customer_id}:marker")
    before: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while True:
            await server.runtime.bus.publish(Event("marker_created", server.customer_id, "marker", marker_id, {}))
            try:
                while True:
                    msg = await recv_json(ws, timeout=0.2, markers=True)
                    if msg["event_type"] != "marker_created":
                        before.append(msg)
                    elif msg["data"] == {} and msg["topic"].endswith(marker_id):
                        return before
            except TimeoutError:
                continue


async def create_extension(server: LiveServer, ext: str) -> dict[str, Any]:
    async with server.http() as http:
        r = await http.post("/v1.0/extensions", json={**EXT, "extension": ext})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


async def test_subscribe_and_receive_rest_events_with_wildcard(server: LiveServer) -> None:
    cid = server.customer_id
    async with connect(server.ws_url()) as ws:
        await subscribe(ws, f"customer_id:{cid}:extension:*")
        await sync(ws, server)
        ext = await create_extension(server, "2001")
        msg = await recv_json(ws)
        assert set(msg) == {"event_type", "timestamp", "topic", "data"}
        assert msg["event_type"] == "extension_created"
        assert msg["topic"] == f"customer_id:{cid}:extension:{ext['id']}"
        assert msg["data"] == {k: v for k, v in ext.items() if k != "password"}  # events never carry it
        assert msg["timestamp"].endswith("Z") and len(msg["timestamp"]) == 27


async def test_resource_prefix_exact_and_wildcard_topics(server: LiveServer) -> None:
    cid = server.customer_id
    async with connect(server.ws_url()) as broad, connect(server.ws_url()) as exact, \
            connect(server.ws_url()) as other_resource:
        await subscribe(broad, f"customer_id:{cid}:extension")  # resource id omitted: all extensions
        await subscribe(other_resource, f"customer_id:{cid}:number:*")
        assert await sync(broad, server) == [] and await sync(other_resource, server) == []
        first = await create_extension(server, "3001")
        assert (await recv_json(broad))["data"]["id"] == first["id"]
        await subscribe(exact, f"customer_id:{cid}:extension:{first['id']}")
        assert await sync(exact, server) == []
        second = await create_extension(server, "3002")
        async with server.http() as http:
            r = await http.put(f"/v1.0/extensions/{first['id']}", json={"detail": "changed"})
            assert r.status_code == 200
        got = [await recv_json(broad) for _ in range(2)]
        assert [(m["event_type"], m["data"]["id"]) for m in got] == [
            ("extension_created", second["id"]), ("extension_updated", first["id"])]
        # exact: the update of its extension is the first thing it gets (not the creation of the second)
        only = await recv_json(exact)
        assert (only["event_type"], only["data"]["id"]) == ("extension_updated", first["id"])
        assert only["topic"] == f"customer_id:{cid}:extension:{first['id']}"
        # the number subscriber saw no extension event: a number event is the next thing it gets
        await server.runtime.bus.publish(Event("number_updated", cid, "number", "n1", {"id": "n1"}))
        assert (await recv_json(other_resource))["event_type"] == "number_updated"
        assert await sync(exact, server) == []


async def test_unsubscribe_stops_delivery(server: LiveServer) -> None:
    topic = f"customer_id:{server.customer_id}:extension"
    async with connect(server.ws_url()) as ws:
        await subscribe(ws, topic)
        await sync(ws, server)
        await create_extension(server, "4001")
        assert (await recv_json(ws))["event_type"] == "extension_created"
        await subscribe(ws, topic, kind="unsubscribe")
        assert await sync(ws, server) == []  # the unsubscribe is applied
        await create_extension(server, "4002")
        assert await sync(ws, server) == []  # a marker published after it arrives with nothing before


async def test_topic_of_another_customer_closes_with_policy_violation(server: LiveServer) -> None:
    async with connect(server.ws_url()) as ws:
        await subscribe(ws, "customer_id:00000000-0000-0000-0000-000000000000:call:*")
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        assert "another customer" in info.value.rcvd.reason


@pytest.mark.parametrize("message", ['{"type": "subscribe", "topics": ["call:*"]}', "not json",
                                     '{"type": "listen", "topics": []}',
                                     '{"type": "subscribe", "topics": ["agent_id:someone-else:queue"]}'])
async def test_malformed_or_forbidden_messages_close_1008(server: LiveServer, message: str) -> None:
    async with connect(server.ws_url()) as ws:
        await ws.send(message)
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008


@pytest.mark.parametrize("query", [{}, {"token": "not-a-jwt"}, {"accesskey": "vb_wrong"}])
async def test_bad_credential_is_refused_with_401(server: LiveServer, query: dict[str, str]) -> None:
    url = f"ws://127.0.0.1:{server.port}/v1.0/ws" + ("?" + "&".join(f"{k}={v}" for k, v in query.items())
                                                        if query else "")
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body)["error"]["status"] == "UNAUTHENTICATED"


async def test_accesskey_authenticates_like_rest(server: LiveServer) -> None:
    async with server.http() as http:
        r = await http.post("/v1.0/accesskeys", json={"name": "ws", "expire": 86400})
        assert r.status_code == 200, r.text
        key = r.json()["token"]
    async with connect(server.ws_url(accesskey=key)) as ws:
        await subscribe(ws, f"customer_id:{server.customer_id}:extension")
        await sync(ws, server)
        ext = await create_extension(server, "5001")
        assert (await recv_json(ws))["data"]["id"] == ext["id"]


async def test_agent_scope_receives_agent_scoped_events(server: LiveServer) -> None:
    agent_id = server.runtime.tokens.verify(server.token).agent_id
    assert agent_id
    async with connect(server.ws_url()) as ws:
        await subscribe(ws, f"agent_id:{agent_id}:queuecall")
        await sync(ws, server)
        ev = Event("queuecall_created", server.customer_id, "queuecall", "qc1", {"id": "qc1"}, agent_ids=(agent_id,))
        await server.runtime.bus.publish(Event("queuecall_created", server.customer_id, "queuecall", "qc0", {}))
        await server.runtime.bus.publish(ev)
        msg = await recv_json(ws)
        assert msg["topic"] == f"agent_id:{agent_id}:queuecall:qc1"


async def test_reconnect_and_resubscribe(server: LiveServer) -> None:
    topic = f"customer_id:{server.customer_id}:extension"
    async with connect(server.ws_url()) as ws:
        await subscribe(ws, topic)
        await sync(ws, server)
    # the server forgets a closed connection and its subscriptions
    async with asyncio.timeout(5):
        while server.runtime.hub.connections:
            await asyncio.sleep(0.01)
    async with connect(server.ws_url()) as ws:
        await subscribe(ws, topic)
        await sync(ws, server)
        ext = await create_extension(server, "6001")
        assert (await recv_json(ws))["data"]["id"] == ext["id"]


async def test_slow_consumer_is_disconnected_with_1013(sqlite_url: str) -> None:
    async with live_server(make_settings(sqlite_url, ws_send_queue_size=8)) as server:
        raw = await RawWebSocket.connect(server.port, f"/v1.0/ws?token={server.token}", rcvbuf=4096)
        try:
            raw.send_text(json.dumps({"type": "subscribe", "topics": [f"customer_id:{server.customer_id}"]}))
            async with asyncio.timeout(5):
                while not any(c.filters for c in server.runtime.hub.connections):
                    await asyncio.sleep(0.01)
            big = {"blob": "x" * 100_000}
            hub = server.runtime.hub
            for i in range(5000):  # never read: the socket fills, then the bounded queue
                await server.runtime.bus.publish(Event("blob_created", server.customer_id, "blob", str(i), big))
                await asyncio.sleep(0)
                if hub.stats["slow_consumer_drops"]:
                    break
            assert hub.stats["slow_consumer_drops"] == 1
            assert not hub.connections
            assert i < 1000  # dropped within a bounded amount of buffered data
            _, code = await asyncio.wait_for(raw.read_until_close(), 10)
            assert code == 1013
        finally:
            raw.close()


async def test_server_pings_and_drops_a_peer_that_never_answers(sqlite_url: str) -> None:
    """uvicorn's keepalive (protocol-level, on the event loop's timers: nothing of ours to clock) is
    asserted by the order of frames, not by how long it took."""
    async with live_server(make_settings(sqlite_url), ws_ping_interval=0.1, ws_ping_timeout=0.3) as server:
        raw = await RawWebSocket.connect(server.port, f"/v1.0/ws?token={server.token}")
        try:
            seen, code = await asyncio.wait_for(raw.read_until_close(), 10)
            assert seen == [OP_PING, OP_CLOSE]  # one ping, its pong timeout, the close
            assert code == 1011
        finally:
            raw.close()
        # a peer that answers every ping stays connected through more pings than one pong timeout spans
        raw = await RawWebSocket.connect(server.port, f"/v1.0/ws?token={server.token}")
        try:
            async with asyncio.timeout(10):
                for _ in range(5):  # the server pings 0.1 s after each pong: 5 pings span > 0.3 s
                    op, payload = await raw.read_frame()
                    assert op == OP_PING
                    send_masked(raw, OP_PONG, payload)
                raw.send_text(json.dumps({"type": "subscribe", "topics": [f"customer_id:{server.customer_id}"]}))
                while not any(c.filters for c in server.runtime.hub.connections):
                    await answer_pings_until_text(raw, timeout=0.05)
                await server.runtime.bus.publish(Event("marker_created", server.customer_id, "marker", "m1", {}))
                frame = await answer_pings_until_text(raw)
                assert frame is not None and json.loads(frame)["event_type"] == "marker_created"
        finally:
            raw.close()


def send_masked(raw: RawWebSocket, opcode: int, payload: bytes) -> None:
    """One masked client frame (RFC 6455 5.3) with a payload under 126 bytes (a control frame)."""
    mask = os.urandom(4)
    raw.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
                     + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


async def answer_pings_until_text(raw: RawWebSocket, timeout: float | None = None) -> str | None:
    """Read frames, answering pings, up to the next text frame (its text); None when ``timeout`` passes
    first (a poll of the server's state, which has no event to await)."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                op, payload = await raw.read_frame()
                if op == OP_PING:
                    send_masked(raw, OP_PONG, payload)
                elif op == OP_TEXT:
                    return payload.decode()
                else:
                    raise AssertionError(f"unexpected frame {op:#x}")
    except TimeoutError:
        return None


def test_keepalive_defaults_are_ping_10s_and_drop_after_60s_of_silence() -> None:
    from voipbin.events.websocket_hub import UVICORN_WS_OPTIONS

    assert UVICORN_WS_OPTIONS["ws_ping_interval"] == 10
    assert UVICORN_WS_OPTIONS["ws_ping_interval"] + UVICORN_WS_OPTIONS["ws_ping_timeout"] == 60
