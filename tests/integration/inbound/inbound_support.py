"""Helpers shared by the inbound tests."""

from __future__ import annotations

import socket
from typing import Any

import httpx


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def number_with_flow(client: httpx.AsyncClient, token: str, runtime: Any,
                           actions: list[dict[str, Any]]) -> dict[str, Any]:
    """Store a flow and make it the seed number's ``call_flow_id``; returns the flow."""
    r = await client.post("/v1.0/flows", params={"token": token},
                          json={"name": "ivr", "detail": "inbound test", "actions": actions})
    assert r.status_code == 200, r.text
    flow = r.json()
    numbers = (await client.get("/v1.0/numbers", params={"token": token})).json()["result"]
    number = next(n for n in numbers if n["number"] == runtime.seed.number)
    r = await client.put(f"/v1.0/numbers/{number['id']}", params={"token": token},
                         json={"call_flow_id": flow["id"]})
    assert r.status_code == 200, r.text
    return flow
