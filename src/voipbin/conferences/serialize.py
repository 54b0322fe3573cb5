"""Conferences and conferencecalls in the spec's shapes (``ConferenceManagerConference``,
``ConferenceManagerConferencecall``); unset ids show as the nil UUID, as upstream."""

from __future__ import annotations

from typing import Any

from voipbin.common.clock import format_ts
from voipbin.flows.actions import NIL_UUID
from voipbin.store.models import Conference, Conferencecall


def conference(c: Conference) -> dict[str, Any]:
    return {
        "id": c.id, "customer_id": c.customer_id, "type": c.type, "status": c.status, "name": c.name,
        "detail": c.detail, "data": dict(c.data or {}), "timeout": c.timeout,
        "pre_flow_id": c.pre_flow_id or NIL_UUID, "post_flow_id": c.post_flow_id or NIL_UUID,
        "conferencecall_ids": list(c.conferencecall_ids or []),
        "recording_id": c.recording_id or NIL_UUID, "recording_ids": list(c.recording_ids or []),
        "transcribe_id": c.transcribe_id or NIL_UUID, "transcribe_ids": list(c.transcribe_ids or []),
        "direct_hash": "", "tm_end": format_ts(c.tm_end),
        "tm_create": format_ts(c.tm_create), "tm_update": format_ts(c.tm_update), "tm_delete": format_ts(c.tm_delete),
    }


def conferencecall(c: Conferencecall) -> dict[str, Any]:
    return {
        "id": c.id, "customer_id": c.customer_id, "activeflow_id": c.activeflow_id or NIL_UUID,
        "conference_id": c.conference_id, "reference_type": c.reference_type, "reference_id": c.reference_id,
        "status": c.status,
        "tm_create": format_ts(c.tm_create), "tm_update": format_ts(c.tm_update), "tm_delete": format_ts(c.tm_delete),
    }
