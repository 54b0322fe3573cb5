"""Which stream events a transcribe publishes: speech started / interim / ended, not the pause events a
stream also emits for consumers that prepare a reply (ai_talk)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from voipbin.speech.stt.base import SpeechEnded, SpeechInterim, SpeechPaused, SpeechResumed, SpeechStarted
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


async def test_pause_events_are_not_published_and_do_not_fail() -> None:
    bus = Bus()
    service = TranscribeService(None, bus, calls=None, conferences=None, stt=None, pod_id="pod-1")  # type: ignore[arg-type]
    for event in (SpeechStarted(0.1), SpeechPaused("so far", 0.9), SpeechResumed(1.1), SpeechInterim("so far", 0.1),
                  SpeechEnded(2.0)):
        await service._on_speech(Live(), Stream(), event)  # type: ignore[arg-type]
    assert [e.event_type for e in bus.published] == [
        "transcribe_speech_started", "transcribe_speech_interim", "transcribe_speech_ended"]
