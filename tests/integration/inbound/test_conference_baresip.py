"""Conferences with real softphones: baresip phones registered as extensions, called into a room by
``POST /v1.0/calls`` with a ``conference_join`` action, real SIP and RTP (G.711) on 127.0.0.1.

Three phones take turns saying a different LibriVox sentence (each phone's audio source is switched
to its sentence with baresip's ``ausrc`` command, the next one once the room's transcribe has
delivered the last). What each phone heard (baresip's ``dec`` recording), run through whisper,
holds the other two sentences and not its own; each ``transcript_created`` names the call whose
voice it is (``call_id``); a ``both`` speaking on the confbridge is heard by all three; a phone
hanging up mid-sentence leaves the room and the other two still hear each other and are still
transcribed. A carrier's call from the trunk, to a number whose flow joins the room, talks with a
phone called in by the API (tones). The same with scripted legs and more of the API:
tests/integration/speakings_transcribes/test_conferences.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio

from inbound_support import (
    baresip_extension, dominant_hz, heard, number_with_flow, place_call, silence_wav, speech_wav, tone_wav,
)
from tests_support.events import Events
from tests_support.frame_log import VOICED_RMS
from tests_support.speech import hear, word_recall
from voipbin.demo.baresip import BaresipPhone
from voipbin.media.players import BufferPlayer
from voipbin.sip.ua import UserAgent

pytestmark = [pytest.mark.sip_peer, pytest.mark.slow]

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


@dataclass(frozen=True)
class Sentence:
    wav: str
    text: str  # from LIBRIVOX/transcription
    own: str  # its words that none of the sentences heard with it contains


YOUNG_MAN = Sentence("sense_and_sensibility_01_austen_64kb-0880.wav", "he was not an ill disposed young man",
                     "young man")
AMIABLE = Sentence("sense_and_sensibility_01_austen_64kb-0930.wav", "he might even have been made amiable himself",
                   "even amiable himself")
SELFISH = Sentence("sense_and_sensibility_01_austen_64kb-0890.wav",
                   "unless to be rather cold hearted and rather selfish is to be ill disposed",
                   "unless cold hearted selfish")
DASHWOOD = Sentence("sense_and_sensibility_01_austen_64kb-0870.wav", "and mister john dashwood had then leisure to "
                    "consider how much there might be prudently in his power to do for them", "dashwood leisure")
MARRIED = Sentence("sense_and_sensibility_01_austen_64kb-0920.wav", "had he married a more a amiable woman he might "
                   "have been made still more respectable than he was", "married woman respectable")
ANNOUNCEMENT = "Welcome to the weekly planning meeting."

#: a 20 ms frame (160 samples at 8 kHz) above this RMS carries speech


# ---------------------------------------------------------------------- the room's participants


@dataclass
class Participant:
    phone: BaresipPhone
    call_id: str = ""
    conferencecall_id: str = ""
    said: list[str] = field(default_factory=list)

    async def say(self, workdir: Path, sentence: Sentence) -> None:
        """Switch the phone's audio source to ``sentence`` (then silence): it speaks at once."""
        wav = speech_wav(workdir / f"{self.phone.user}-{len(self.said)}.wav", LIBRIVOX / sentence.wav)
        r = await self.phone.command("ausrc", f"aufile,{wav}")
        assert r["ok"] and "fail" not in r["data"], r
        self.said.append(sentence.text)


def heard_len(phone: BaresipPhone) -> int:
    """Bytes of PCM ``phone`` has heard in its call so far (0 before its recording exists)."""
    return len(heard_since(phone, 0)[0]) if phone.recordings("dec") else 0


def heard_since(phone: BaresipPhone, start: int, end: int | None = None) -> tuple[bytes, int]:
    """(PCM, rate) ``phone`` heard in its call (one per phone) from byte ``start`` to ``end``."""
    (path,) = phone.recordings("dec")
    pcm, rate = heard(path)
    return pcm[start:end], rate


def voiced(pcm: bytes, rate: int) -> list[bool]:
    """Whether each 20 ms frame of ``pcm`` carries speech."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n = rate // 50
    frames = x[:len(x) // n * n].reshape(-1, n)
    return [bool(v) for v in np.sqrt(np.mean(frames**2, axis=1)) > VOICED_RMS]


async def until_heard(phones: list[BaresipPhone], marks: list[int], *, speech_s: float,
                      then_silence_s: float = 0.0, timeout_s: float = 15.0) -> None:
    """Wait until each phone has heard ``speech_s`` of speech since its mark (a byte offset in its
    recording), followed by ``then_silence_s`` of silence. Fails after ``timeout_s``."""
    def done(phone: BaresipPhone, mark: int) -> bool:
        frames = voiced(*heard_since(phone, mark))
        trailing = len(frames) - (max(i for i, v in enumerate(frames) if v) + 1) if any(frames) else 0
        return sum(frames) * 0.02 >= speech_s and trailing * 0.02 >= then_silence_s

    for _ in range(int(timeout_s / 0.05)):  # recordings are files that baresip writes: nothing to await but their growth
        if all(done(p, m) for p, m in zip(phones, marks, strict=True)):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"not heard: {speech_s}s of speech, then {then_silence_s}s of silence")


@pytest_asyncio.fixture
async def party(client: httpx.AsyncClient, admin_token: str, runtime: Any,
                tmp_path: Path) -> AsyncIterator[list[Participant]]:
    """Three auto-answering phones (extensions 3001-3003), silent until told to speak."""
    quiet = silence_wav(tmp_path / "silence.wav", 120)
    phones: list[BaresipPhone] = []
    try:
        for name, ext in (("ann", "3001"), ("ben", "3002"), ("cat", "3003")):
            phones.append(await baresip_extension(client, admin_token, runtime, tmp_path / name, name, ext, quiet,
                                                  auto_answer=True))
        yield [Participant(p) for p in phones]
    finally:
        for p in phones:
            await p.stop()


async def create_conference(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await client.post("/v1.0/conferences", params={"token": token},
                          json={"type": "conference", "name": "standup", "detail": "", "data": {}, "timeout": 0})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def call_into(client: httpx.AsyncClient, token: str, runtime: Any, extension: str,
                    conference_id: str) -> str:
    """``POST /calls`` to ``extension`` with a ``conference_join``; the call's id."""
    r = await client.post("/v1.0/calls", params={"token": token}, json={
        "source": {"type": "tel", "target": runtime.seed.number},
        "destinations": [{"type": "extension", "target_name": extension}],
        "actions": [{"type": "conference_join", "option": {"conference_id": conference_id}}]})
    assert r.status_code == 200, r.text
    return str(r.json()["calls"][0]["id"])


async def joined(events: Events, call_ids: list[str]) -> dict[str, str]:
    """Wait for ``conferencecall_joined`` of every call of ``call_ids``: call id -> conferencecall id."""
    found: dict[str, str] = {}
    while len(found) < len(call_ids):
        e = await events.next("conferencecall_joined",
                              where=lambda e: e.data["reference_id"] in call_ids and e.data["reference_id"] not in found)
        found[e.data["reference_id"]] = e.resource_id
    return found


async def turn(events: Events, transcribe_id: str, speaker: Participant, sentence: Sentence) -> None:
    """``speaker`` says ``sentence`` while the others are silent: the room's ``in`` transcripts, until
    they hold it (a pause may split it in two), all name the speaker's call."""
    said: list[str] = []
    while word_recall(sentence.text, " ".join(said)) < 0.6:
        e = await events.next("transcript_created", transcribe_id, timeout=60, direction="in")
        assert e.data["call_id"] == speaker.call_id, (e.data, speaker.phone.user, sentence.text)
        said.append(e.data["message"])


async def test_three_softphones_in_a_room_hear_the_others_and_are_transcribed_by_name(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, events: Events, tmp_path: Path,
        party: list[Participant]) -> None:
    t = {"token": admin_token}
    ann, ben, cat = party
    conf = await create_conference(client, admin_token)
    r = await client.post(f"/v1.0/conferences/{conf['id']}/transcribe_start", params=t, json={"language": "en-US"})
    assert r.status_code == 200, r.text
    tid = r.json()["transcribe_id"]

    for p in party:
        p.call_id = await call_into(client, admin_token, runtime, p.phone.user, conf["id"])
    rooms = await joined(events, [p.call_id for p in party])
    for p in party:
        p.conferencecall_id = rooms[p.call_id]
        await p.phone.wait_event("CALL_ESTABLISHED")

    # one after the other, each phone says its sentence; the room's transcribe names who spoke it
    for p, sentence in ((ann, YOUNG_MAN), (ben, AMIABLE), (cat, SELFISH)):
        await p.say(tmp_path, sentence)
        await turn(events, tid, p, sentence)
    talk_end = [heard_len(p.phone) for p in party]

    # a speaking on the room: every phone hears it
    r = await client.post("/v1.0/speakings", params=t, json={"reference_type": "confbridge",
                                                             "reference_id": conf["id"], "direction": "both"})
    assert r.status_code == 201, r.text
    speaking_id = r.json()["id"]
    await events.next("speaking_started", speaking_id)
    r = await client.post(f"/v1.0/speakings/{speaking_id}/say", params=t, json={"text": ANNOUNCEMENT})
    assert r.status_code == 200, r.text
    await until_heard([p.phone for p in party], talk_end, speech_s=1.0, then_silence_s=1.0, timeout_s=30)
    announced_end = [heard_len(p.phone) for p in party]
    # the room's "out" stream hears the announcement and the silence after it: transcribed at once
    said = await events.next("transcript_created", tid, direction="out", timeout=10)
    assert said.data["call_id"] == "" and word_recall(ANNOUNCEMENT, said.data["message"]) >= 0.6, said.data

    # cat hangs up in the middle of a sentence (after ann has heard a second of it): it leaves the room
    mark = heard_len(ann.phone)
    await cat.say(tmp_path, DASHWOOD)
    await until_heard([ann.phone], [mark], speech_s=1.0)
    since = len(events.seen)
    await cat.phone.hangup()
    await cat.phone.wait_event("CALL_CLOSED")
    left = await events.next("conferencecall_leaved", cat.conferencecall_id)
    assert left.data["status"] == "leaved"
    await events.next("streaming_stopped", tid, call_id=cat.call_id)  # after its last words were transcribed
    cut = [e.data for e in events.seen[since:] if e.event_type == "transcript_created"]
    assert all(d["call_id"] == cat.call_id for d in cut), cut

    # ann and ben are undisturbed: they hear each other and are still transcribed
    after_leave = [heard_len(ann.phone), heard_len(ben.phone)]
    for p, sentence in ((ann, MARRIED), (ben, YOUNG_MAN)):  # ben says ann's first sentence: call_id follows voice
        await p.say(tmp_path, sentence)
        await turn(events, tid, p, sentence)

    r = await client.post(f"/v1.0/conferences/{conf['id']}/transcribe_stop", params=t)
    assert r.status_code == 200, r.text
    await events.next("transcribe_done", tid, timeout=30)
    announced = [e.data for e in events.seen if e.event_type == "transcript_created" and e.data["direction"] == "out"]
    assert word_recall(ANNOUNCEMENT, " ".join(d["message"] for d in announced)) >= 0.6, announced

    # what each phone heard, through whisper: the two others and the announcement, never itself
    firsts = (YOUNG_MAN, AMIABLE, SELFISH)
    for i, p in enumerate(party):
        pcm, rate = heard_since(p.phone, 0, talk_end[i])
        text = await hear(runtime, pcm, rate)
        for j, other in enumerate(firsts):
            if j != i:
                assert word_recall(other.text, text) >= 0.6, (p.phone.user, other.text, text)
        assert word_recall(firsts[i].own, text) == 0, (p.phone.user, firsts[i].text, text)
        pcm, rate = heard_since(p.phone, talk_end[i], announced_end[i])
        text = await hear(runtime, pcm, rate)
        assert word_recall(ANNOUNCEMENT, text) >= 0.6, (p.phone.user, text)
    for p, start, other in ((ann, after_leave[0], YOUNG_MAN), (ben, after_leave[1], MARRIED)):
        text = await hear(runtime, *heard_since(p.phone, start))
        assert word_recall(other.text, text) >= 0.6, (p.phone.user, other.text, text)
        assert word_recall(DASHWOOD.own, text) == 0, (p.phone.user, text)  # cat's cut-off sentence is gone


# ---------------------------------------------------------------------- a carrier's call in the room


def tone(hz: float) -> BufferPlayer:
    t = np.arange(8000) / 8000
    return BufferPlayer((np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16), 8000, loop=True)


async def test_trunk_caller_and_softphone_in_one_room_hear_each_other(
        client: httpx.AsyncClient, admin_token: str, runtime: Any, events: Events, tmp_path: Path,
        trunk: UserAgent) -> None:
    carrier_hz, phone_hz = 440, 1000
    conf = await create_conference(client, admin_token)
    await number_with_flow(client, admin_token, runtime, [
        {"type": "answer"}, {"type": "conference_join", "option": {"conference_id": conf["id"]}}])
    phone = await baresip_extension(client, admin_token, runtime, tmp_path / "dan", "dan", "3004",
                                    tone_wav(tmp_path / "dan.wav", phone_hz), auto_answer=True)
    call = await place_call(trunk, runtime, runtime.seed.number, tone(carrier_hz))
    try:
        inbound = await events.next("call_created", where=lambda e: e.data["direction"] == "incoming")
        await asyncio.wait_for(call.answered.wait(), 10)
        phone_call = await call_into(client, admin_token, runtime, "dan", conf["id"])
        rooms = await joined(events, [inbound.resource_id, phone_call])
        await phone.wait_event("CALL_ESTABLISHED")

        got = (await client.get(f"/v1.0/conferences/{conf['id']}", params={"token": admin_token})).json()
        assert sorted(got["conferencecall_ids"]) == sorted(rooms.values())

        mark = heard_len(phone)
        carrier_hears, carrier_rms = dominant_hz((await call.next_audio(2.0))[8000:], 8000)  # after 0.5 s
        await until_heard([phone], [mark], speech_s=2.0)  # a tone is "speech" to that level meter
        phone_hears, phone_rms = dominant_hz(*heard_since(phone, mark + 8000))
        assert carrier_rms > 300 and phone_rms > 300, (carrier_rms, phone_rms)
        assert abs(carrier_hears - phone_hz) < 20, carrier_hears
        assert abs(phone_hears - carrier_hz) < 20, phone_hears

        # deleting the room releases both: their flows have nothing left and hang up
        r = await client.delete(f"/v1.0/conferences/{conf['id']}", params={"token": admin_token})
        assert r.status_code == 200, r.text
        left = set(rooms.values())
        while left:
            left.discard((await events.next("conferencecall_leaved", where=lambda e: e.resource_id in left)).resource_id)
        await asyncio.wait_for(call.ended.wait(), 10)
        await phone.wait_event("CALL_CLOSED")
    finally:
        call.rtp.close()
        await phone.stop()

