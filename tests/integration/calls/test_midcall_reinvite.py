"""Hold from our side re-offers the leg's media (RFC 3264 §8.4): on a scripted leg, POST /hold asks
for ``sendonly`` and DELETE for ``sendrecv``, once per change; mute and music on hold send nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from test_midcall import _answered_call

from voipbin.media.sdp import Direction


async def test_hold_and_unhold_reoffer_media_once_per_change(client: httpx.AsyncClient, admin_token: str,
                                                            runtime: Any, phone: dict[str, Any], originator: Any,
                                                            events: Any, tmp_path: Path) -> None:
    call_id, leg = await _answered_call(client, admin_token, runtime, originator, events, tmp_path)
    params = {"token": admin_token}
    assert (await client.post(f"/v1.0/calls/{call_id}/hold", params=params)).status_code == 200
    assert leg.media_updates.get_nowait() == Direction.SENDONLY  # done before the API answered
    assert leg.media.direction == Direction.SENDONLY
    assert (await client.post(f"/v1.0/calls/{call_id}/hold", params=params)).status_code == 200
    assert leg.media_updates.empty()  # already held: no second re-INVITE

    for path in ("mute", "moh"):
        assert (await client.post(f"/v1.0/calls/{call_id}/{path}", params=params,
                                  json={"direction": "both"})).status_code == 200
        assert (await client.delete(f"/v1.0/calls/{call_id}/{path}", params=params)).status_code == 200
    assert leg.media_updates.empty()

    r = await client.delete(f"/v1.0/calls/{call_id}/hold", params=params)
    assert r.status_code == 200, r.text
    assert leg.media_updates.get_nowait() == Direction.SENDRECV
    assert leg.media.direction == Direction.SENDRECV and leg.media.sending
    await client.post(f"/v1.0/calls/{call_id}/hangup", params=params)
    await events.next("call_hangup", call_id)
