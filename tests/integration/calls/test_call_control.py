"""Call control over the REST API with scripted legs: lifecycle, events, hangup causes, flows.

The SIP side is replaced by :mod:`tests_support.fake_legs`; media is real RTP on 127.0.0.1 and
``talk`` is synthesized by the real TTS engine. SIP itself is proven with baresip/sipp elsewhere.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest

from tests_support.fake_legs import register

SEED_000_ACTIONS = [
    {"type": "talk", "option": {"text": "Hello. This is a test call.", "gender": "female", "language": "en-US"}},
    {"type": "sleep", "option": {"duration": 300}},
]


def _call_body(runtime: Any, actions: list[dict[str, Any]] | None = None, **dest: str) -> dict[str, Any]:
    return {"source": {"type": "tel", "target": runtime.seed.number},
            "destinations": [{"type": "extension", "target_name": "quickstart-phone", **dest}],
            "actions": actions if actions is not None else SEED_000_ACTIONS}


async def _post_call(client: httpx.AsyncClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/v1.0/calls", params={"token": token}, json=body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(("change", "field"), [
    ({"source": {"type": "tel", "target": "+15559999999"}}, "source.target"),
    ({"source": {"type": "tel", "target": "15550100000"}}, "source.target"),
    ({"destinations": [{"type": "extension", "target_name": "nobody"}]}, "destinations[0].target_name"),
    ({"destinations": [{"type": "tel", "target": "+15551112222"}]}, "destinations[0].type"),
    ({"destinations": []}, "destinations"),
    ({"actions": [{"type": "dance"}]}, "actions[0].type"),
    ({"actions": [{"type": "sleep", "option": {}}]}, "actions[0].option.duration"),
    ({"actions": [{"type": "talk", "option": {"text": "hi", "language": "en_US"}}]}, "actions[0].option.language"),
    ({"actions": None, "flow_id": "7b0c1b8e-3f4e-4a51-9d0a-2a4b7b2b9f00"}, "flow_id"),
])
async def test_bad_requests_are_400_and_write_nothing(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                      phone: dict[str, Any], originator: Any,
                                                      change: dict[str, Any], field: str) -> None:
    body = {**_call_body(runtime), **change}
    r = await client.post("/v1.0/calls", params={"token": admin_token}, json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]["message"]
    assert (await client.get("/v1.0/calls", params={"token": admin_token})).json()["result"] == []
    assert (await client.get("/v1.0/groupcalls", params={"token": admin_token})).json()["result"] == []
    assert originator.all == []


async def test_seed_call_rings_answers_talks_and_ends(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                      phone: dict[str, Any], originator: Any, events: Any,
                                                      spec: Any) -> None:
    created = await _post_call(client, admin_token, _call_body(runtime))
    assert len(created["calls"]) == 1 and len(created["groupcalls"]) == 1
    call, group = created["calls"][0], created["groupcalls"][0]
    spec.validate("CallManagerCall", call)
    spec.validate("CallManagerGroupcall", group)
    assert call["status"] == "dialing" and call["direction"] == "outgoing"
    assert call["destination"] == {"type": "extension", "target": phone["id"], "target_name": "quickstart-phone",
                                   "name": "", "detail": ""}
    assert group["call_ids"] == [call["id"]] and group["ring_method"] == "ring_all"
    assert group["answer_method"] == "hangup_others"

    leg = await originator.next_leg()
    assert leg.target.request_uri == "sip:quickstart1@127.0.0.1:35060"
    assert leg.target.destination == ("127.0.0.1", 35060)
    assert leg.target.from_uri == f"sip:{runtime.seed.number}@voipbin.test"
    leg.ring()
    assert (await events.next("call_ringing", call["id"])).data["status"] == "ringing"
    await leg.answer()
    progressing = await events.next("call_progressing", call["id"])
    assert progressing.data["tm_progressing"] is not None
    hangup = await events.next("call_hangup", call["id"], timeout=30)
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "normal")
    assert leg.byed.is_set()
    types = events.types(call["id"])
    assert types[:3] == ["call_created", "call_ringing", "call_progressing"] and types[-1] == "call_hangup"
    order = ["dialing", "ringing", "progressing", "terminating", "hangup"]
    statuses = [order.index(e.data["status"]) for e in events.seen if e.resource_id == call["id"]]
    assert statuses == sorted(statuses), statuses

    # the phone heard the greeting: about 1-3 s of non-silent audio
    audio = np.frombuffer(bytes(leg.phone_audio), dtype="<i2").astype(np.float64)
    voiced = np.sqrt(np.mean(audio.reshape(-1, 160) ** 2, axis=1)) > 300  # 20 ms frames above ~-40 dBFS
    assert 0.8 <= voiced.sum() * 0.02 <= 4.0, voiced.sum()

    af = (await client.get(f"/v1.0/activeflows/{call['activeflow_id']}", params={"token": admin_token})).json()
    spec.validate("FlowManagerActiveflow", af)
    assert [a["type"] for a in af["executed_actions"]] == ["talk", "sleep"]
    assert all(a["tm_execute"] for a in af["executed_actions"]) and af["status"] == "ended"
    final = (await client.get(f"/v1.0/calls/{call['id']}", params={"token": admin_token})).json()
    spec.validate("CallManagerCall", final)
    assert final["status"] == "hangup" and final["tm_hangup"] is not None
    await events.next("groupcall_hangup", group["id"])  # the group follows its last call, in its own transaction
    grp = (await client.get(f"/v1.0/groupcalls/{group['id']}", params={"token": admin_token})).json()
    assert grp["status"] == "hangup" and grp["answer_call_id"] == call["id"]


async def test_extension_without_contact_ends_failed(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                      originator: Any, events: Any) -> None:
    await client.post("/v1.0/extensions", params={"token": admin_token}, json={
        "name": "quickstart-phone", "detail": "d", "extension": "quickstart1", "password": "phone-pass-1"})
    created = await _post_call(client, admin_token, _call_body(runtime))
    call = created["calls"][0]
    hangup = await events.next("call_hangup", call["id"])
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "failed")
    assert hangup.data["tm_ringing"] is None and originator.all == []


@pytest.mark.parametrize(("code", "reason"), [(486, "busy"), (600, "busy"), (603, "noanswer"),
                                              (480, "noanswer"), (404, "failed"), (500, "failed")])
async def test_final_responses_map_to_hangup_reasons(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                     phone: dict[str, Any], originator: Any, events: Any,
                                                     code: int, reason: str) -> None:
    call = (await _post_call(client, admin_token, _call_body(runtime)))["calls"][0]
    leg = await originator.next_leg()
    leg.ring()
    leg.reject(code)
    hangup = await events.next("call_hangup", call["id"])
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("remote", reason)


async def test_hangup_while_ringing_cancels(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                            phone: dict[str, Any], originator: Any, events: Any) -> None:
    call = (await _post_call(client, admin_token, _call_body(runtime)))["calls"][0]
    leg = await originator.next_leg()
    leg.ring()
    await events.next("call_ringing", call["id"])
    r = await client.post(f"/v1.0/calls/{call['id']}/hangup", params={"token": admin_token})
    assert r.status_code == 200
    hangup = await events.next("call_hangup", call["id"])
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "cancel")
    assert leg.cancelled.is_set() and "canceling" in [e.data["status"] for e in events.seen
                                                      if e.resource_id == call["id"]]


async def test_delete_answered_call_sends_bye(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                              phone: dict[str, Any], originator: Any, events: Any) -> None:
    body = _call_body(runtime, [{"type": "sleep", "option": {"duration": 60000}}])
    call = (await _post_call(client, admin_token, body))["calls"][0]
    leg = await originator.next_leg()
    await leg.answer()
    await events.next("call_progressing", call["id"])
    r = await client.delete(f"/v1.0/calls/{call['id']}", params={"token": admin_token})
    assert r.status_code == 200 and r.json()["tm_delete"] is not None
    assert r.json()["status"] == "hangup" and r.json()["hangup_by"] == "local"
    assert leg.byed.is_set()
    assert (await client.get(f"/v1.0/calls/{call['id']}", params={"token": admin_token})).status_code == 404


async def test_remote_bye_ends_call_and_flow(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                             phone: dict[str, Any], originator: Any, events: Any) -> None:
    body = _call_body(runtime, [{"type": "sleep", "option": {"duration": 60000}}])
    call = (await _post_call(client, admin_token, body))["calls"][0]
    leg = await originator.next_leg()
    await leg.answer()
    await events.next("call_progressing", call["id"])
    leg.remote_bye()
    hangup = await events.next("call_hangup", call["id"])
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("remote", "normal")
    ended = await events.next("activeflow_deleted", call["activeflow_id"])
    assert ended.data["status"] == "ended"


async def test_ring_timeout_is_dialout(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                       phone: dict[str, Any], originator: Any, events: Any) -> None:
    runtime.calls.settings.ring_timeout_seconds = 0.3
    call = (await _post_call(client, admin_token, _call_body(runtime)))["calls"][0]
    leg = await originator.next_leg()
    leg.ring()
    hangup = await events.next("call_hangup", call["id"])
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "dialout")
    assert leg.cancelled.is_set()


async def test_dead_endpoint_is_detected_by_rtp_timeout(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                         phone: dict[str, Any], originator: Any,
                                                         events: Any) -> None:
    runtime.calls.settings.rtp_timeout_seconds = 0.5
    body = _call_body(runtime, [{"type": "sleep", "option": {"duration": 60000}}])
    call = (await _post_call(client, admin_token, body))["calls"][0]
    leg = await originator.next_leg()
    await leg.answer(phone_sends=False)
    hangup = await events.next("call_hangup", call["id"])
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("remote", "failed")
    assert leg.byed.is_set()


async def test_groupcall_rings_all_contacts_and_cancels_the_others(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, phone: dict[str, Any], originator: Any,
        events: Any) -> None:
    await register(runtime, phone, "sip:quickstart1@127.0.0.1:35062", ("127.0.0.1", 35062))
    body = _call_body(runtime, [{"type": "sleep", "option": {"duration": 60000}}])
    created = await _post_call(client, admin_token, body)
    group = created["groupcalls"][0]
    assert len(group["call_ids"]) == 2 and [c["id"] for c in created["calls"]] == group["call_ids"]
    first, second = await originator.next_leg(), await originator.next_leg()
    first.ring()
    second.ring()
    await second.answer()
    await events.next("groupcall_progressing", group["id"])
    await asyncio.wait_for(first.cancelled.wait(), 5)
    grp = (await client.get(f"/v1.0/groupcalls/{group['id']}", params={"token": admin_token})).json()
    answered = [c["id"] for c in created["calls"] if c["id"] == grp["answer_call_id"]]
    assert len(answered) == 1
    second.remote_bye()
    await events.next("groupcall_hangup", group["id"])


async def test_flow_hangup_action_and_stored_flow(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                  phone: dict[str, Any], originator: Any, events: Any,
                                                  spec: Any) -> None:
    r = await client.post("/v1.0/flows", params={"token": admin_token}, json={
        "name": "busy-out", "detail": "hang up at once",
        "actions": [{"type": "hangup", "option": {"reason": "busy"}}, {"type": "sleep", "option": {"duration": 1}}]})
    assert r.status_code == 200
    flow = r.json()
    spec.validate("FlowManagerFlow", flow)
    body = {**_call_body(runtime), "actions": None, "flow_id": flow["id"]}
    call = (await _post_call(client, admin_token, body))["calls"][0]
    assert call["flow_id"] == flow["id"]
    leg = await originator.next_leg()
    await leg.answer()
    hangup = await events.next("call_hangup", call["id"])
    assert (hangup.data["hangup_by"], hangup.data["hangup_reason"]) == ("local", "busy")
    af = (await client.get(f"/v1.0/activeflows/{call['activeflow_id']}", params={"token": admin_token})).json()
    assert [a["type"] for a in af["executed_actions"]] == ["hangup"]


def _tone(path: Any, seconds: float, freq: int = 1000) -> Any:
    import subprocess

    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "synth", str(seconds),
                    "sine", str(freq), "vol", "0.5"], check=True)
    return path


def _voiced_seconds(pcm: bytes) -> float:
    audio = np.frombuffer(pcm[: len(pcm) // 320 * 320], dtype="<i2").astype(np.float64)
    return float((np.sqrt(np.mean(audio.reshape(-1, 160) ** 2, axis=1)) > 1000).sum() * 0.02)


async def test_play_action_plays_files_and_urls(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                phone: dict[str, Any], originator: Any, events: Any,
                                                tmp_path: Any) -> None:
    import functools
    import http.server
    import threading

    _tone(tmp_path / "a.wav", 0.6)
    _tone(tmp_path / "b.wav", 0.4, 500)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/b.wav"
        body = _call_body(runtime, [{"type": "play", "option": {"stream_urls": [f"file://{tmp_path}/a.wav", url]}}])
        call = (await _post_call(client, admin_token, body))["calls"][0]
        leg = await originator.next_leg()
        await leg.answer()
        await events.next("call_hangup", call["id"])  # the flow ends after the last file
    finally:
        server.shutdown()
    assert 0.9 <= _voiced_seconds(bytes(leg.phone_audio)) <= 1.2


async def test_play_rejects_bad_urls_at_creation(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                 phone: dict[str, Any]) -> None:
    body = _call_body(runtime, [{"type": "play", "option": {"stream_urls": ["ftp://x/y.wav"]}}])
    r = await client.post("/v1.0/calls", params={"token": admin_token}, json=body)
    assert r.status_code == 400 and "actions[0].option.stream_urls" in r.json()["error"]["message"]


async def test_echo_action_returns_the_callers_audio(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                                     phone: dict[str, Any], originator: Any, events: Any,
                                                     tmp_path: Any) -> None:
    from voipbin.media.players import BufferPlayer

    body = _call_body(runtime, [{"type": "echo", "option": {"duration": 1500}}])
    call = (await _post_call(client, admin_token, body))["calls"][0]
    leg = await originator.next_leg()
    await leg.answer()
    await events.next("call_progressing", call["id"])
    leg.phone.outbound.add(BufferPlayer.from_wav(_tone(tmp_path / "c.wav", 0.5)))
    await events.next("call_hangup", call["id"])
    assert 0.3 <= _voiced_seconds(bytes(leg.phone_audio)) <= 0.7
