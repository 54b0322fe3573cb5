"""One-to-three-word utterances through a call: the phone says each of Asterisk's short prompts
(Allison Smith's recordings, tests_support/short_utterances.py) over G.711 RTP into a call with a
transcribe running; the transcripts are scored against the prompts' text.

Each prompt is followed by 0.5 s of silence (the VAD ends an utterance after 288 ms). All the
prompts play as one recording; the transcripts, in order, are joined and aligned with the joined
prompt texts, so an utterance split or merged by the VAD is still scored word by word.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from st_support import Events, LiveCall
from tests_support.short_utterances import SAMPLE_RATE_HZ, normalize, short_utterances, wer
from voipbin.media.codecs import Codec
from voipbin.media.players import BufferPlayer
from voipbin.speech.repetition import ends_in_repeat

pytestmark = pytest.mark.slow

GAP_S = 0.5


class _Recording(BufferPlayer):
    """A BufferPlayer whose `done` is set once its last frame was read."""

    def __init__(self, pcm: bytes) -> None:
        super().__init__(pcm, SAMPLE_RATE_HZ)
        self.done = asyncio.Event()

    def read_frame(self) -> bytes | None:
        frame = super().read_frame()
        if self.finished:
            self.done.set()
        return frame

    def read_payload(self, codec: Codec) -> bytes | None:
        payload = super().read_payload(codec)
        if self.finished:
            self.done.set()
        return payload


async def test_short_utterances_through_a_call(client: httpx.AsyncClient, admin_token: str,
                                               live_call: LiveCall, events: Events) -> None:
    corpus = short_utterances()
    assert len(corpus) >= 50
    r = await client.post("/v1.0/transcribes", params={"token": admin_token}, json={
        "reference_type": "call", "reference_id": live_call.call["id"], "language": "en-US", "direction": "in"})
    assert r.status_code == 200, r.text
    tid = r.json()["id"]
    gap = b"\0\0" * int(GAP_S * SAMPLE_RATE_HZ)
    recording = _Recording(gap + b"".join(u.pcm + gap for u in corpus))
    assert live_call.leg.phone is not None
    live_call.leg.phone.outbound.add(recording)
    await asyncio.wait_for(recording.done.wait(), 300)

    texts = await _transcripts(events, tid)
    print("\n".join(texts))
    score = wer([" ".join(u.text for u in corpus)], [" ".join(texts)])
    print(f"short utterances through a call: {len(corpus)} prompts, "
          f"{sum(len(normalize(u.text).split()) for u in corpus)} words, {len(texts)} transcripts, WER {score:.3f}")
    assert not [t for t in texts if ends_in_repeat(t)], texts
    assert len(normalize(" ".join(texts)).split()) <= sum(len(normalize(u.text).split()) for u in corpus) + 10
    assert score <= 0.45, texts  # 0.28 before the ONNX VAD (8dac062), 0.41 after: see test_short_utterances.py


async def _transcripts(events: Events, tid: str) -> list[str]:
    """The ``transcript_created`` texts of `tid`, once every utterance the VAD started has its
    transcript (one whose text is empty publishes none: after 10 s it is given up on)."""
    while not events.queue.empty():
        events.seen.append(events.queue.get_nowait())

    def count(kind: str) -> int:
        return sum(1 for e in events.seen if e.resource_id == tid and e.event_type == kind)

    while count("transcript_created") < count("transcribe_speech_started"):
        try:
            await events.next("transcript_created", tid, timeout=10)
        except TimeoutError:
            break
    return [e.data["message"] for e in events.seen if e.resource_id == tid and e.event_type == "transcript_created"]
