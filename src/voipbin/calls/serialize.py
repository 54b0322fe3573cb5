"""Calls, groupcalls and activeflows in the spec's shapes (``CallManagerCall``, ``CallManagerGroupcall``,
``FlowManagerActiveflow``). Unset ids are the nil UUID, unset moments null."""

from __future__ import annotations

from typing import Any

from voipbin.common.clock import format_ts
from voipbin.flows.actions import NIL_UUID
from voipbin.store.models import Activeflow, Call, Groupcall


def call(c: Call) -> dict[str, Any]:
    return {
        "id": c.id, "customer_id": c.customer_id, "owner_type": "", "owner_id": NIL_UUID,
        "flow_id": c.flow_id or NIL_UUID, "activeflow_id": c.activeflow_id or NIL_UUID, "type": c.type,
        "master_call_id": (c.data or {}).get("master_call_id") or NIL_UUID,
        "chained_call_ids": list((c.data or {}).get("chained_call_ids", [])), "recording_id": NIL_UUID,
        "recording_ids": [],
        "groupcall_id": c.groupcall_id or NIL_UUID, "source": c.source, "destination": c.destination,
        "status": c.status, "action": c.action or {"id": NIL_UUID, "type": ""}, "direction": c.direction,
        "mute_direction": c.mute_direction, "hangup_by": c.hangup_by, "hangup_reason": c.hangup_reason,
        "metadata": {}, "tm_progressing": format_ts(c.tm_progressing), "tm_ringing": format_ts(c.tm_ringing),
        "tm_hangup": format_ts(c.tm_hangup), "tm_create": format_ts(c.tm_create),
        "tm_update": format_ts(c.tm_update), "tm_delete": format_ts(c.tm_delete),
    }


def groupcall(g: Groupcall) -> dict[str, Any]:
    return {
        "id": g.id, "customer_id": g.customer_id, "owner_type": "", "owner_id": NIL_UUID, "status": g.status,
        "flow_id": g.flow_id or NIL_UUID, "source": g.source, "destinations": g.destinations,
        "master_call_id": NIL_UUID, "master_groupcall_id": NIL_UUID, "ring_method": g.ring_method,
        "answer_method": g.answer_method, "answer_call_id": g.answer_call_id or NIL_UUID,
        "call_ids": list(g.call_ids), "answer_groupcall_id": NIL_UUID, "groupcall_ids": [],
        "call_count": len(g.call_ids), "groupcall_count": 0, "dial_index": 0,
        "tm_create": format_ts(g.tm_create), "tm_update": format_ts(g.tm_update), "tm_delete": format_ts(g.tm_delete),
    }


def activeflow(a: Activeflow) -> dict[str, Any]:
    return {
        "id": a.id, "customer_id": a.customer_id, "flow_id": a.flow_id or NIL_UUID, "status": a.status,
        "reference_type": a.reference_type, "reference_id": a.reference_id or NIL_UUID,
        "reference_activeflow_id": NIL_UUID, "on_complete_flow_id": NIL_UUID, "webhook_uri": "",
        "webhook_method": "", "current_action": a.current_action or {"id": NIL_UUID, "type": ""},
        "forward_action_id": a.forward_action_id or NIL_UUID, "executed_actions": list(a.executed_actions),
        "tm_create": format_ts(a.tm_create), "tm_update": format_ts(a.tm_update), "tm_delete": format_ts(a.tm_delete),
    }
