"""Which stream events a transcribe publishes: speech started / interim / ended, not the pause events a
stream also emits for consumers that prepare a reply (ai_talk)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from voipbin.speech.stt.base import (
    FinalTranscript,
    SpeechEnded,
    SpeechInterim,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from voipbin.transcribes.service import TranscribeService


class Bus:
    def __init__(self) -> None:
        self.published: list[Any] = []

    async def publish(self, event: Any, **_: Any) -> None:
        self.published.append(event)


class Live:
    id = "tr-1"
    customer_id = "cu-1"
    started = datetime(2026, 12, 3, tzinfo=UTC)


class Stream:
    streaming_id = "st-1"
    direction = "in"
    call_id = "ca-1"


async def test_pause_events_are_not_published_and_do_not_fail() -> None:
    bus = Bus()
    service = TranscribeService(None, bus, calls=None, conferences=None, stt=None, pod_id="pod-1")  # type: ignore[arg-type]
    for event in (SpeechStarted(0.1), SpeechPaused("so far", 0.9), SpeechResumed(1.1), SpeechInterim("so far", 0.1),
                  SpeechEnded(2.0)):
        await service._on_speech(Live(), Stream(), event)  # type: ignore[arg-type]
    assert [e.event_type for e in bus.published] == [
        "transcribe_speech_started", "transcribe_speech_interim", "transcribe_speech_ended"]


async def test_an_utterance_heard_as_no_words_is_a_transcript_dropped_no_speech() -> None:
    """Every utterance ends in a transcript_created or a transcript_dropped: one whose final text is empty
    (noise the VAD took for speech) is dropped with reason ``no_speech``, its times as a transcript's."""
    bus = Bus()
    service = TranscribeService(None, bus, calls=None, conferences=None, stt=None, pod_id="pod-1")  # type: ignore[arg-type]
    for event in (SpeechStarted(0.5), SpeechEnded(1.25), FinalTranscript("", 0.5, 1.25, "en-US")):
        await service._on_speech(Live(), Stream(), event)  # type: ignore[arg-type]
    assert [e.event_type for e in bus.published] == [
        "transcribe_speech_started", "transcribe_speech_ended", "transcript_dropped"]
    dropped = bus.published[-1].data
    assert dropped["reason"] == "no_speech" and dropped["call_id"] == "ca-1" and dropped["direction"] == "in"
    assert dropped["tm_transcript"] == "2026-12-03T00:00:00.500000Z"
    assert "message" not in dropped
