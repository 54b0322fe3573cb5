"""Issue 14: an extension calling another extension that exists but has no registration gets 480
Temporarily Unavailable (not 500); the caller's call ends ``noanswer`` (the hangup reason of a 480)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from test_extension_busy_relay import _dial, _extension

pytestmark = pytest.mark.sip_peer


async def test_unregistered_callee_answers_480(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                               events: Any) -> None:
    await _extension(client, admin_token, "carol", "3001")
    await _extension(client, admin_token, "dave", "3002")  # never registers
    call, agent = await _dial(runtime, "3001", "carol-secret-pw", "3002")
    try:
        await asyncio.wait_for(call.ended.wait(), 15)
        assert call.ended_with == [("rejected", 480)]
        master = await events.next("call_hangup", where=lambda e: e.data["direction"] == "incoming")
        assert (master.data["hangup_by"], master.data["hangup_reason"]) == ("local", "noanswer")
    finally:
        call.rtp.close()
        agent.close()
        await agent.stack.stop()
