"""AIs, aicalls and aimessages in the spec's shapes (``AIManagerAI``, ``AIManagerAIcall``,
``AIManagerMessage``): API responses and event bodies alike. Unset ids show as the nil UUID.

``engine_key`` is never shown: an AI with a key shows ``"****"`` + its last 4 characters
(``"****abcd"``), one without (``local`` engines) shows ``""``.
"""

from __future__ import annotations

from typing import Any

from voipbin.ai.options import NIL_UUID
from voipbin.common.clock import format_ts
from voipbin.store.models import Ai, Aicall, Aimessage


def key_shown(key_hint: str) -> str:
    """What ``engine_key`` shows for a key whose last characters are ``key_hint`` ("" for no key)."""
    return f"****{key_hint}" if key_hint else ""


def ai(a: Ai) -> dict[str, Any]:
    return {
        "id": a.id, "customer_id": a.customer_id, "name": a.name, "detail": a.detail, "type": a.type,
        "is_insight_active": False, "engine_model": a.engine_model, "parameter": dict(a.parameter or {}),
        "engine_key": key_shown(a.engine_key_hint), "rag_id": a.rag_id or NIL_UUID, "init_prompt": a.init_prompt,
        "current_prompt_history_id": NIL_UUID, "tts_type": a.tts_type, "tts_voice_id": a.tts_voice_id,
        "stt_type": a.stt_type, "stt_language": a.stt_language, "vad_config": dict(a.vad_config or {}),
        "smart_turn_enabled": a.smart_turn_enabled, "auto_aicall_audit_enabled": a.auto_aicall_audit_enabled,
        "tool_names": list(a.tool_names or []), "direct_hash": "",
        "tm_create": format_ts(a.tm_create), "tm_update": format_ts(a.tm_update), "tm_delete": format_ts(a.tm_delete),
    }


def aicall(c: Aicall) -> dict[str, Any]:
    return {
        "id": c.id, "customer_id": c.customer_id, "assistance_type": c.assistance_type,
        "assistance_id": c.assistance_id or NIL_UUID, "ai_engine_model": c.ai_engine_model,
        "ai_tts_type": c.ai_tts_type, "ai_tts_voice_id": c.ai_tts_voice_id, "ai_stt_type": c.ai_stt_type,
        "ai_vad_config": dict(c.ai_vad_config or {}), "ai_smart_turn_enabled": c.ai_smart_turn_enabled,
        "parameter": dict(c.parameter or {}), "activeflow_id": c.activeflow_id or NIL_UUID,
        "reference_type": c.reference_type, "reference_id": c.reference_id or NIL_UUID,
        "confbridge_id": c.confbridge_id or NIL_UUID, "current_member_id": NIL_UUID, "status": c.status,
        "stt_language": c.stt_language, "metadata": dict(c.meta or {}), "tm_end": format_ts(c.tm_end),
        "tm_create": format_ts(c.tm_create), "tm_update": format_ts(c.tm_update), "tm_delete": format_ts(c.tm_delete),
    }


def aimessage(m: Aimessage) -> dict[str, Any]:
    return {
        "id": m.id, "customer_id": m.customer_id, "aicall_id": m.aicall_id,
        "activeflow_id": m.activeflow_id or NIL_UUID, "active_ai_id": m.active_ai_id or NIL_UUID,
        "role": m.role, "content": m.content, "direction": m.direction,
        "tool_calls": [dict(t) for t in (m.tool_calls or [])], "tool_call_id": m.tool_call_id,
        "tm_create": format_ts(m.tm_create),
    }
