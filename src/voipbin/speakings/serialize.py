"""Speakings in the spec's shape (``TtsManagerSpeaking``, plus ``pod_id`` as seed 004 shows)."""

from __future__ import annotations

from typing import Any

from voipbin.common.clock import format_ts
from voipbin.store.models import Speaking


def speaking(s: Speaking) -> dict[str, Any]:
    return {
        "id": s.id, "customer_id": s.customer_id, "reference_type": s.reference_type,
        "reference_id": s.reference_id, "language": s.language, "provider": s.provider, "voice_id": s.voice_id,
        "direction": s.direction, "status": s.status, "pod_id": s.pod_id,
        "tm_create": format_ts(s.tm_create), "tm_update": format_ts(s.tm_update), "tm_delete": format_ts(s.tm_delete),
    }
