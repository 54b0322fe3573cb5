"""``DELETE /v1.0/conferencecalls/{id}`` over the REST API, with scripted legs (no SIP) and real RTP.

A kick releases a participant: ``leaving``, ``leaved``, out of the room's ``conferencecall_ids``,
and its call goes on with its flow. Kicking one that has left already is upstream's no-op
(``conference_tutorial``: "it returns 200 with the conferencecall's current (unchanged) state rather
than an error"): the same row comes back and nothing is published.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests_support.events import Events
from tests_support.fake_legs import FakeOriginator


async def test_kicking_a_participant_that_left_answers_its_row_unchanged(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: FakeOriginator, events: Events,
        phone: dict[str, Any], spec: Any) -> None:
    t = {"token": admin_token}
    r = await client.post("/v1.0/conferences", params=t, json={"type": "conference", "name": "kick", "detail": ""})
    assert r.status_code == 200, r.text
    conference = r.json()
    r = await client.post("/v1.0/calls", params=t, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
        "actions": [{"type": "conference_join", "option": {"conference_id": conference["id"]}},
                    {"type": "sleep", "option": {"duration": 600000}}]})
    assert r.status_code == 200, r.text
    call = r.json()["calls"][0]
    await (await originator.next_leg()).answer()
    cc_id = (await events.next("conferencecall_joined", where=lambda e: e.data["reference_id"] == call["id"])).resource_id

    r = await client.delete(f"/v1.0/conferencecalls/{cc_id}", params=t)
    assert r.status_code == 200 and r.json()["status"] == "leaved", r.text
    left = r.json()
    # the call goes on with its flow (the next action)
    await events.next("call_updated", call["id"], where=lambda e: e.data["action"]["type"] == "sleep")
    assert (await client.get(f"/v1.0/conferences/{conference['id']}", params=t)).json()["conferencecall_ids"] == []

    # again, on the participant that left: 200, the row as it was, nothing published
    published = len(events.seen) + events.queue.qsize()
    r = await client.delete(f"/v1.0/conferencecalls/{cc_id}", params=t)
    assert r.status_code == 200, r.text
    spec.validate("ConferenceManagerConferencecall", r.json())
    assert r.json() == left
    assert (await client.get(f"/v1.0/conferencecalls/{cc_id}", params=t)).json() == left
    assert len(events.seen) + events.queue.qsize() == published
    assert events.types(cc_id) == ["conferencecall_joining", "conferencecall_joined", "conferencecall_leaving",
                                   "conferencecall_leaved"]

    # a conferencecall that does not exist (or another customer's) is still a 404
    r = await client.delete("/v1.0/conferencecalls/5e4a0680-804e-11ec-8477-2fea5968d85b", params=t)
    assert r.status_code == 404, r.text
