"""Conferences over the REST API with scripted legs (no SIP) and real RTP on 127.0.0.1.

Three calls join one room through the ``conference_join`` flow action; each phone plays its own
tone, and each must hear the other two and never itself (mix-minus through the real media clock,
RTP and G.711). A ``confbridge`` speaking is heard by all; ``DELETE /conferencecalls/{id}``
releases one participant (its flow goes on), ``DELETE /conferences/{id}`` the rest. The room's
transcribe (real whisper) attributes each sentence to the participant who spoke it, including
one who joined late. Real softphones in a room: tests/integration/inbound/test_conference_baresip.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from st_support import Events, LiveCall, start_call
from tests_support.speech import word_recall
from voipbin.media.players import BufferPlayer

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")

TONES_HZ = (440.0, 1000.0, 1800.0)
SENTENCES = {
    "sense_and_sensibility_01_austen_64kb-0880.wav": "he was not an ill disposed young man",
    "sense_and_sensibility_01_austen_64kb-0930.wav": "he might even have been made amiable himself",
    "sense_and_sensibility_01_austen_64kb-0890.wav":
        "unless to be rather cold hearted and rather selfish is to be ill disposed",
}


def _tone(hz: float, seconds: float = 1.0) -> BufferPlayer:
    t = np.arange(int(8000 * seconds)) / 8000
    return BufferPlayer((np.sin(2 * np.pi * hz * t) * 6000).astype(np.int16), 8000, loop=True)


def _levels(pcm: bytes) -> dict[float, float]:
    """Magnitude of each tone frequency in ``pcm`` (8 kHz PCM16), relative to the strongest."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    mags = {hz: float(spectrum[(freqs > hz - 15) & (freqs < hz + 15)].max()) for hz in TONES_HZ}
    top = max(mags.values()) or 1.0
    return {hz: m / top for hz, m in mags.items()}


async def _conference(client: httpx.AsyncClient, token: str, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1.0/conferences", params={"token": token},
                          json={"type": "conference", "name": "standup", "detail": "", "data": {}, "timeout": 0,
                                **body})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _join(conference_id: str, then: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    return [{"type": "conference_join", "option": {"conference_id": conference_id}},
            *(then if then is not None else [{"type": "hangup"}])]


async def _join_calls(client: httpx.AsyncClient, token: str, runtime: Any, originator: Any, events: Events,
                      conference_id: str, n: int) -> list[tuple[LiveCall, str]]:
    """``n`` calls in the room: (the live call, its conferencecall id), once each is ``joined``."""
    joined = []
    for _ in range(n):
        live = await start_call(client, token, runtime, originator, events, actions=_join(conference_id))
        cc = await events.next("conferencecall_joined", where=lambda e, c=live: e.data["reference_id"] == c.call["id"])
        joined.append((live, cc.resource_id))
    return joined


async def _all_hung_up(events: Events, call_ids: list[str]) -> None:
    """Wait for ``call_hangup`` of every call of ``call_ids``, in whatever order they come."""
    left = set(call_ids)
    while left:
        left.discard((await events.next("call_hangup", where=lambda e: e.resource_id in left)).resource_id)


async def _seen_or_next(events: Events, event_type: str, resource_id: str, **data: Any) -> Any:
    """The event if it was read already (events arrive in publish order, not the order awaited), else the next."""
    for e in events.seen:
        if e.event_type == event_type and e.resource_id == resource_id and all(e.data.get(k) == v
                                                                               for k, v in data.items()):
            return e
    return await events.next(event_type, resource_id, **data)


async def test_three_callers_hear_each_other_never_themselves(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any], spec: Any) -> None:
    t = {"token": admin_token}
    conf = await _conference(client, admin_token)
    spec.validate("ConferenceManagerConference", conf)
    assert conf["status"] == "progressing" and conf["conferencecall_ids"] == []
    assert (await events.next("conference_created", conf["id"])).data["status"] == "starting"
    assert (await events.next("conference_updated", conf["id"])).data["status"] == "progressing"

    party = await _join_calls(client, admin_token, runtime, originator, events, conf["id"], 3)
    got = (await client.get(f"/v1.0/conferences/{conf['id']}", params=t)).json()
    assert sorted(got["conferencecall_ids"]) == sorted(cc for _, cc in party)
    page = (await client.get("/v1.0/conferencecalls", params=t)).json()
    spec.validate_page("ConferenceManagerConferencecall", page)
    assert {c["status"] for c in page["result"]} == {"joined"}
    assert {c["reference_id"] for c in page["result"]} == {live.call["id"] for live, _ in party}

    for (live, _), hz in zip(party, TONES_HZ, strict=True):
        assert live.leg.phone is not None
        live.leg.phone.outbound.add(_tone(hz))
    start = [len(live.ear.pcm) for live, _ in party]
    for (live, _), s in zip(party, start, strict=True):
        await live.ear.until(lambda e, s=s: len(e.pcm) - s >= 320 * 60)
    for (live, _), s, own in zip(party, start, TONES_HZ, strict=True):
        levels = _levels(bytes(live.ear.pcm[s + 320 * 20:s + 320 * 60]))
        others = [levels[hz] for hz in TONES_HZ if hz != own]
        assert min(others) > 0.5, levels  # both other parties, at similar levels
        assert levels[own] < 0.02, levels  # never itself
    for live, _ in party:
        live.leg.phone.outbound.clear()  # type: ignore[union-attr]

    # a speaking on the room: every participant hears it; one per room
    r = await client.post("/v1.0/speakings", params=t, json={"reference_type": "confbridge",
                                                             "reference_id": conf["id"], "direction": "both"})
    assert r.status_code == 201, r.text
    speaking = r.json()
    spec.validate("TtsManagerSpeaking", speaking)
    assert speaking["reference_type"] == "confbridge"
    await events.next("speaking_started", speaking["id"])
    again = await client.post("/v1.0/speakings", params=t, json={"reference_type": "confbridge",
                                                                 "reference_id": conf["id"]})
    assert again.status_code == 409, again.text
    marks = [len(live.ear.frames) for live, _ in party]
    assert (await client.post(f"/v1.0/speakings/{speaking['id']}/say", params=t,
                              json={"text": "Welcome to the meeting."})).status_code == 200
    for (live, _), mark in zip(party, marks, strict=True):
        await live.ear.until(lambda e, m=mark: e.voiced_since(m) >= 15, timeout=30)

    # one participant is removed: its flow goes on (hangup), the others stay
    gone, gone_cc = party[2]
    r = await client.delete(f"/v1.0/conferencecalls/{gone_cc}", params=t)
    assert r.status_code == 200 and r.json()["status"] == "leaved", r.text
    await events.next("call_hangup", gone.call["id"])
    again = await client.delete(f"/v1.0/conferencecalls/{gone_cc}", params=t)  # left already: upstream's no-op
    assert again.status_code == 200 and again.json() == r.json(), again.text
    got = (await client.get(f"/v1.0/conferences/{conf['id']}", params=t)).json()
    assert sorted(got["conferencecall_ids"]) == sorted(cc for _, cc in party[:2])
    kinds = [e.event_type for e in events.seen if e.resource_id == gone_cc]
    assert kinds == ["conferencecall_joining", "conferencecall_joined", "conferencecall_leaving",
                     "conferencecall_leaved"], kinds

    # deleting the room: its speaking stops, the participants are released (their flows hang up)
    r = await client.delete(f"/v1.0/conferences/{conf['id']}", params=t)
    assert r.status_code == 200, r.text
    deleted = r.json()
    spec.validate("ConferenceManagerConference", deleted)
    assert deleted["status"] == "terminated" and deleted["tm_end"] and deleted["tm_delete"]
    assert deleted["conferencecall_ids"] == []
    await _all_hung_up(events, [live.call["id"] for live, _ in party[:2]])
    assert (await _seen_or_next(events, "speaking_stopped", speaking["id"])).data["status"] == "stopped"
    await _seen_or_next(events, "conference_deleted", conf["id"])
    assert (await client.get(f"/v1.0/conferences/{conf['id']}", params=t)).status_code == 404


async def test_room_transcript_names_who_spoke(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any], spec: Any) -> None:
    t = {"token": admin_token}
    conf = await _conference(client, admin_token)
    party = await _join_calls(client, admin_token, runtime, originator, events, conf["id"], 2)
    r = await client.post(f"/v1.0/conferences/{conf['id']}/transcribe_start", params=t, json={"language": "en-US"})
    assert r.status_code == 200, r.text
    tid = r.json()["transcribe_id"]
    assert r.json()["transcribe_ids"] == [tid]
    transcribe = (await client.get(f"/v1.0/transcribes/{tid}", params=t)).json()
    assert (transcribe["reference_type"], transcribe["reference_id"]) == ("confbridge", conf["id"])
    second = await client.post("/v1.0/transcribes", params=t, json={
        "reference_type": "confbridge", "reference_id": conf["id"], "language": "en-US"})
    assert second.status_code == 409, second.text
    # a third participant joins after the transcribe started: it is transcribed from then on
    party += await _join_calls(client, admin_token, runtime, originator, events, conf["id"], 1)

    for (live, _), (wav, text) in zip(party, SENTENCES.items(), strict=True):
        assert live.leg.phone is not None
        live.leg.phone.outbound.add(BufferPlayer.from_wav(LIBRIVOX / wav))
        transcript = await events.next("transcript_created", tid, timeout=60)
        spec.validate("TranscribeManagerTranscript", transcript.data)
        assert transcript.data["direction"] == "in"
        assert transcript.data["call_id"] == live.call["id"], (transcript.data, text)
        assert word_recall(text, transcript.data["message"]) >= 0.6, (transcript.data, text)

    r = await client.post(f"/v1.0/conferences/{conf['id']}/transcribe_stop", params=t)
    assert r.status_code == 200, r.text
    assert r.json()["transcribe_id"] == "00000000-0000-0000-0000-000000000000"
    assert (await events.next("transcribe_done", tid)).data["status"] == "done"
    assert (await client.post(f"/v1.0/conferences/{conf['id']}/transcribe_stop", params=t)).status_code == 400
    stopped = [e for e in events.seen if e.event_type == "streaming_started" and e.resource_id == tid]
    assert {e.data.get("call_id") for e in stopped} >= {live.call["id"] for live, _ in party}
    assert runtime.transcribes.running_sessions == 0


@pytest.mark.parametrize("kind", ["missing", "foreign", "deleted", "terminated"])
async def test_joining_a_room_that_cannot_be_joined_writes_nothing(
        client: httpx.AsyncClient, admin_token: str, other_token: str, runtime: Any, originator: Any,
        phone: dict[str, Any], kind: str) -> None:
    t = {"token": admin_token}
    if kind == "missing":
        conference_id = "7b0c1b8e-3f4e-4a51-9d0a-2a4b7b2b9f00"
    else:
        conf = await _conference(client, other_token if kind == "foreign" else admin_token)
        conference_id = conf["id"]
        if kind == "deleted":
            assert (await client.delete(f"/v1.0/conferences/{conference_id}", params=t)).status_code == 200
        if kind == "terminated":  # as its timeout does: terminated, not deleted
            await runtime.conferences.terminate(conference_id)
    body = {"source": {"type": "tel", "target": runtime.seed.number},
            "destinations": [{"type": "extension", "target_name": "quickstart-phone"}],
            "actions": _join(conference_id)}
    r = await client.post("/v1.0/calls", params=t, json=body)
    assert r.status_code == (400 if kind == "terminated" else 404), r.text
    assert "actions[0].option.conference_id" in r.json()["error"]["message"]
    assert (await client.get("/v1.0/calls", params=t)).json()["result"] == []
    assert originator.all == []


async def test_a_call_in_one_room_cannot_join_another(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any]) -> None:
    first, second = (await _conference(client, admin_token)), (await _conference(client, admin_token))
    live = await start_call(client, admin_token, runtime, originator, events,
                            actions=[{"type": "conference_join", "option": {"conference_id": first["id"]}}])
    await events.next("conferencecall_joined", where=lambda e: e.data["reference_id"] == live.call["id"])
    control = runtime.calls
    call = control.live(live.call["id"])
    with pytest.raises(Exception, match="already in conference"):
        await runtime.conferences.join(control, call, second["id"])
    got = (await client.get(f"/v1.0/conferences/{second['id']}", params={"token": admin_token})).json()
    assert got["conferencecall_ids"] == []
    assert call.status == "progressing"


async def test_connect_room_ends_when_one_party_leaves(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any]) -> None:
    t = {"token": admin_token}
    conf = await _conference(client, admin_token, type="connect", timeout=30)
    assert conf["timeout"] == 86400  # upstream: 1-59 s means the 24 h default
    (a, _), (b, _) = await _join_calls(client, admin_token, runtime, originator, events, conf["id"], 2)
    third = await start_call(client, admin_token, runtime, originator, events)
    with pytest.raises(Exception, match="two participants"):
        await runtime.conferences.join(runtime.calls, runtime.calls.live(third.call["id"]), conf["id"])
    a.leg.remote_bye()  # one party hangs up: the other is released (its flow hangs up) and the room ends
    await _all_hung_up(events, [b.call["id"]])
    await _seen_or_next(events, "conference_updated", conf["id"], status="terminated")
    assert (await client.get(f"/v1.0/conferences/{conf['id']}", params=t)).json()["status"] == "terminated"


async def test_conference_fields_are_validated(client: httpx.AsyncClient, admin_token: str,
                                               other_token: str) -> None:
    t = {"token": admin_token}
    for body, field in [({"type": "queue"}, "type"), ({}, "type"), ({"type": "conference", "timeout": -1}, "timeout"),
                        ({"type": "conference", "data": []}, "data"),
                        ({"type": "conference", "name": 5}, "name"),
                        ({"type": "conference", "pre_flow_id": "7b0c1b8e-3f4e-4a51-9d0a-2a4b7b2b9f00"}, "pre_flow_id")]:
        r = await client.post("/v1.0/conferences", params=t, json=body)
        assert r.status_code == 400, (body, r.text)
        assert field in r.json()["error"]["message"], (body, r.text)
    assert (await client.get("/v1.0/conferences", params=t)).json()["result"] == []
    conf = await _conference(client, admin_token, name="a", detail="b", data={"k": 1})
    r = await client.put(f"/v1.0/conferences/{conf['id']}", params=t,
                         json={"name": None, "detail": "new", "timeout": 120})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["detail"], r.json()["timeout"], r.json()["data"]) == ("a", "new", 120, {"k": 1})
    assert (await client.get(f"/v1.0/conferences/{conf['id']}", params={"token": other_token})).status_code == 404
    assert (await client.delete(f"/v1.0/conferences/{conf['id']}", params={"token": other_token})).status_code == 404
    r = await client.post("/v1.0/speakings", params={"token": other_token},
                          json={"reference_type": "confbridge", "reference_id": conf["id"]})
    assert r.status_code == 404, r.text


async def test_mute_and_hold_affect_only_that_participant(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any]) -> None:
    t = {"token": admin_token}
    conf = await _conference(client, admin_token)
    party = await _join_calls(client, admin_token, runtime, originator, events, conf["id"], 3)
    for (live, _), hz in zip(party, TONES_HZ, strict=True):
        live.leg.phone.outbound.add(_tone(hz))  # type: ignore[union-attr]
    (a, _), (b, _), (c, _) = party
    a_hz, b_hz, c_hz = TONES_HZ

    async def heard(live: LiveCall, frames: int = 40) -> dict[float, float]:
        """Tone levels of the next ``frames`` frames ``live``'s phone receives (after 10 to settle)."""
        start = len(live.ear.pcm)
        await live.ear.until(lambda e: len(e.pcm) - start >= 320 * (frames + 10))
        return _levels(bytes(live.ear.pcm[start + 320 * 10:start + 320 * (frames + 10)]))

    # a muted "in": nobody hears a, and a still hears both others
    r = await client.post(f"/v1.0/calls/{a.call['id']}/mute", params=t, json={"direction": "in"})
    assert r.status_code == 200 and r.json()["mute_direction"] == "in", r.text
    for other in (b, c):
        levels = await heard(other)
        assert levels[a_hz] < 0.02, levels
    levels = await heard(a)
    assert min(levels[b_hz], levels[c_hz]) > 0.5, levels
    assert (await client.delete(f"/v1.0/calls/{a.call['id']}/mute", params=t)).status_code == 200

    # c on hold: a and b no longer hear c (and still hear each other); c hears nobody
    r = await client.post(f"/v1.0/calls/{c.call['id']}/hold", params=t)
    assert r.status_code == 200, r.text
    levels = await heard(a)
    assert levels[c_hz] < 0.02 and levels[b_hz] > 0.5, levels
    levels = await heard(b)
    assert levels[c_hz] < 0.02 and levels[a_hz] > 0.5, levels
    c_mark = len(c.ear.frames)
    await heard(a)  # time passes: what c received meanwhile is silence (or nothing at all)
    assert c.ear.voiced_since(c_mark) == 0


async def test_pre_and_post_flows_run_around_the_room_and_a_hangup_leaves(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, originator: Any, events: Events,
        phone: dict[str, Any]) -> None:
    t = {"token": admin_token}

    async def flow(duration_ms: int) -> str:
        r = await client.post("/v1.0/flows", params=t, json={
            "name": f"f{duration_ms}", "actions": [{"type": "sleep", "option": {"duration": duration_ms}}]})
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    conf = await _conference(client, admin_token, pre_flow_id=await flow(111), post_flow_id=await flow(222))
    first = await start_call(client, admin_token, runtime, originator, events,
                             actions=_join(conf["id"], then=[{"type": "sleep", "option": {"duration": 600000}}]))
    cc = await events.next("conferencecall_joined", where=lambda e: e.data["reference_id"] == first.call["id"])
    r = await client.delete(f"/v1.0/conferencecalls/{cc.resource_id}", params=t)
    assert r.status_code == 200, r.text
    await events.next("call_updated", first.call["id"], where=lambda e: e.data["action"]["option"].get("duration")
                      == 600000)  # after the post flow, the call's own flow goes on
    sleeps = [e.data["action"]["option"]["duration"] for e in events.seen
              if e.event_type == "call_updated" and e.resource_id == first.call["id"]
              and e.data["action"].get("type") == "sleep"]
    assert sleeps == [111, 222, 600000], sleeps
    order = [e.event_type for e in events.seen if e.resource_id == cc.resource_id or (
        e.event_type == "call_updated" and e.resource_id == first.call["id"] and e.data["action"]["type"] == "sleep")]
    assert order == ["conferencecall_joining", "call_updated", "conferencecall_joined", "conferencecall_leaving",
                     "conferencecall_leaved", "call_updated", "call_updated"], order

    # a participant whose phone hangs up leaves the room
    second = await start_call(client, admin_token, runtime, originator, events, actions=_join(conf["id"]))
    cc2 = await events.next("conferencecall_joined", where=lambda e: e.data["reference_id"] == second.call["id"])
    second.leg.remote_bye()
    assert (await events.next("conferencecall_leaved", cc2.resource_id)).data["status"] == "leaved"
    await events.next("conference_updated", conf["id"], conferencecall_ids=[])
    got = (await client.get(f"/v1.0/conferences/{conf['id']}", params=t)).json()
    assert got["conferencecall_ids"] == [] and got["status"] == "progressing"


async def test_timeout_terminates_the_room(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                                           events: Events) -> None:
    from datetime import timedelta

    from voipbin.store.models import Conference

    conf = await _conference(client, admin_token, timeout=3600)
    async with runtime.sessions() as db, db.begin():  # the room was made an hour ago: its timeout is due
        row = await db.get(Conference, conf["id"])
        row.tm_create -= timedelta(seconds=3600)
    r = await client.put(f"/v1.0/conferences/{conf['id']}", params={"token": admin_token}, json={"timeout": 3600})
    assert r.status_code == 200, r.text
    await _seen_or_next(events, "conference_updated", conf["id"], status="terminated")
    got = (await client.get(f"/v1.0/conferences/{conf['id']}", params={"token": admin_token})).json()
    assert got["status"] == "terminated" and got["tm_end"] and got["tm_delete"] is None
