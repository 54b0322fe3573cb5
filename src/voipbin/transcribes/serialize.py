"""Transcribes, transcripts and speech events in the spec's shapes (``TranscribeManagerTranscribe``,
``TranscribeManagerTranscript``, ``TranscribeManagerSpeechWebhookMessage``)."""

from __future__ import annotations

from typing import Any

from voipbin.common.clock import format_ts
from voipbin.flows.actions import NIL_UUID
from voipbin.store.models import Transcribe, Transcript

#: providers the spec's enum knows; the local engine (whisper) shows as "" ("selected automatically")
SPEC_PROVIDERS = ("gcp", "aws")


def transcribe(t: Transcribe) -> dict[str, Any]:
    return {
        "id": t.id, "customer_id": t.customer_id, "activeflow_id": t.activeflow_id or NIL_UUID,
        "on_end_flow_id": t.on_end_flow_id or NIL_UUID, "reference_type": t.reference_type,
        "reference_id": t.reference_id, "status": t.status, "language": t.language, "direction": t.direction,
        "provider": t.provider if t.provider in SPEC_PROVIDERS else "",
        "tm_create": format_ts(t.tm_create), "tm_update": format_ts(t.tm_update), "tm_delete": format_ts(t.tm_delete),
    }


def transcript(t: Transcript) -> dict[str, Any]:
    return {
        "id": t.id, "customer_id": t.customer_id, "transcribe_id": t.transcribe_id, "direction": t.direction,
        "call_id": t.call_id or "", "message": t.message, "tm_transcript": format_ts(t.tm_transcript), "tm_create": format_ts(t.tm_create),
    }
