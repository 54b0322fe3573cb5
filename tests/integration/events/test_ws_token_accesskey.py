"""Seed 001 connects to ``/v1.0/ws?token=`` with "the same JWT or access key" (issue 12, item 5)."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from .conftest import LiveServer
from .test_events_websocket import create_extension, recv_json, subscribe, sync


async def test_an_accesskey_works_as_token(server: LiveServer) -> None:
    async with server.http() as http:
        key = (await http.post("/v1.0/accesskeys", json={"name": "ws", "expire": 86400})).json()["token"]
    async with connect(server.ws_url(token=key)) as ws:
        await subscribe(ws, f"customer_id:{server.customer_id}:extension")
        await sync(ws, server)
        ext = await create_extension(server, "5101")
        assert (await recv_json(ws))["data"]["id"] == ext["id"]


async def test_a_wrong_or_deleted_accesskey_as_token_is_401(server: LiveServer) -> None:
    async with server.http() as http:
        key = (await http.post("/v1.0/accesskeys", json={"name": "ws", "expire": 86400})).json()
        assert (await http.delete(f"/v1.0/accesskeys/{key['id']}")).status_code == 200
    for token in ("vb_wrong", key["token"]):
        with pytest.raises(InvalidStatus) as info:
            async with connect(server.ws_url(token=token)):
                pass
        assert info.value.response.status_code == 401
