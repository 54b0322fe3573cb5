"""The ``conference_join`` action (and upstream's older name ``confbridge_join``): put the call
into a conference room until it leaves, then go on with the flow.

The room, its participants and their lifecycle are conferences/' (through
:class:`~voipbin.calls.actions.base.ConferenceControl`); this module only reads the option:
``conference_id`` (``FlowManagerActionOptionConferenceJoin``) or ``confbridge_id``
(``FlowManagerActionOptionConfbridgeJoin``).
"""

from __future__ import annotations

from typing import Any

from voipbin.calls.actions.base import ActionRun
from voipbin.calls.live import CallEnded

JOIN_ACTIONS = ("conference_join", "confbridge_join")


def conference_of(option: dict[str, Any]) -> tuple[str, str]:
    """``(option key, conference id)`` of a validated join option."""
    key = "confbridge_id" if "confbridge_id" in option else "conference_id"
    return key, str(option.get(key, ""))


async def conference_join(run: ActionRun) -> bool:
    conferences = run.context.conferences
    if conferences is None:
        raise RuntimeError("conferences are not available in this process")
    await conferences.join(run.control, run.call, conference_of(run.option)[1])
    if run.call.ended.is_set():
        raise CallEnded(run.call.call_id)
    return False
