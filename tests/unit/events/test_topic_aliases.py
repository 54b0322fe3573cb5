"""Seed 001 subscribes to ``customer_id:<id>:transcription:*``: an alias of the ``transcribe`` resource."""

from __future__ import annotations

from voipbin.events.model import Event
from voipbin.events.topics import parse_topic

C = "5e4a0680-804e-11ec-8477-2fea5968d85b"
TRANSCRIBE = "8c5a9e2a-2a7f-4a6f-9f1d-debd72c279ce"
TRANSCRIPT = Event("transcript_created", C, "transcribe", TRANSCRIBE, {"transcribe_id": TRANSCRIBE})


def test_transcription_is_the_transcribe_resource() -> None:
    for topic in (f"customer_id:{C}:transcription:*", f"customer_id:{C}:transcription",
                  f"customer_id:{C}:transcription:{TRANSCRIBE}"):
        assert parse_topic(topic).match(TRANSCRIPT) == f"customer_id:{C}:transcribe:{TRANSCRIBE}"
    assert str(parse_topic(f"customer_id:{C}:transcription:*")) == f"customer_id:{C}:transcribe"
    assert parse_topic(f"customer_id:{C}:transcription:*").subject() == f"voipbin.events.{C}.transcribe.*"


def test_the_alias_matches_nothing_else() -> None:
    call = Event("call_created", C, "call", TRANSCRIBE, {})
    assert parse_topic(f"customer_id:{C}:transcription:*").match(call) is None
    assert parse_topic(f"customer_id:{C}:transcriptions:*").match(TRANSCRIPT) is None
