"""Issue 13 finding 10: an extension's SIP password never leaves in an event (WebSocket pushes and
webhook bodies are both made from the bus event; the webhook outbox keeps the body it sends)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from voipbin.events.model import Event
from voipbin.store.models import OutboxEntry

PASSWORD = "phone-secret-pass-1"
NEW_PASSWORD = "phone-secret-pass-2"


async def test_no_extension_event_carries_the_password(client: httpx.AsyncClient, admin_token: str, runtime) -> None:  # type: ignore[no-untyped-def]
    q = {"token": admin_token}
    cid = runtime.seed.customer_id
    assert (await client.put("/v1.0/customer", params=q,
                             json={"webhook_method": "POST", "webhook_uri": "http://127.0.0.1:9/hook"})).status_code == 200
    events: list[Event] = []
    await runtime.bus.subscribe(f"customer_id:{cid}:extension", events.append)

    ext = (await client.post("/v1.0/extensions", params=q, json={
        "name": "n", "detail": "d", "extension": "4001", "password": PASSWORD})).json()
    assert ext["password"] == PASSWORD  # the API's own answer still shows it
    await client.put(f"/v1.0/extensions/{ext['id']}", params=q, json={"password": NEW_PASSWORD})
    await runtime.extensions.registration_changed(cid, ext["id"], "registered")
    await client.delete(f"/v1.0/extensions/{ext['id']}", params=q)
    async with asyncio.timeout(5):
        while len(events) < 4:
            await asyncio.sleep(0.01)
    assert [e.event_type for e in events] == ["extension_created", "extension_updated", "extension_updated",
                                              "extension_deleted"]
    for event in events:
        assert "password" not in event.data and event.data["id"] == ext["id"]
        for wire in (str(event.to_websocket()), str(event.to_webhook())):
            assert PASSWORD not in wire and NEW_PASSWORD not in wire
    async with runtime.sessions() as session:
        bodies = (await session.scalars(select(OutboxEntry.body).where(OutboxEntry.customer_id == cid))).all()
    assert any('"extension_created"' in b for b in bodies)
    assert not any(PASSWORD in b or NEW_PASSWORD in b for b in bodies)
