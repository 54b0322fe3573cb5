"""Flow actions for DTMF and the cursor: ``digits_receive``, ``digits_send``, ``goto``, ``branch``.

``digits_receive`` stores what it gathered in the activeflow variable ``voipbin.call.digits``
(the terminating ``key`` included, as the upstream docs say); ``branch`` reads a variable
(default that one) and jumps to ``target_ids[value]``, else ``default_target_id``, else goes on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog

from voipbin.calls.digits import VARIABLE_DIGITS
from voipbin.common.clock import utcnow
from voipbin.store.models import Activeflow

if TYPE_CHECKING:
    from voipbin.calls.activeflow import ActionRun
    from voipbin.calls.manager import CallManager, LiveCall

log = structlog.get_logger(__name__)

DEFAULT_DIGITS_DURATION_MS = 5000
DTMF_SEND_DEFAULT_DURATION_MS = 250
DTMF_SEND_DEFAULT_INTERVAL_MS = 100


async def set_variables(manager: CallManager, lc: LiveCall, values: dict[str, str]) -> None:
    """Merge ``values`` into the call's activeflow variables; publishes ``activeflow_updated``."""
    async with manager._sessions() as session, session.begin():
        af = await session.get(Activeflow, lc.activeflow_id)
        if af is None:
            return
        af.variables = {**(af.variables or {}), **values}
        af.tm_update = utcnow()
    await manager._publish_activeflow(af, "activeflow_updated")


async def get_variable(manager: CallManager, lc: LiveCall, name: str) -> str:
    async with manager._sessions() as session:
        af = await session.get(Activeflow, lc.activeflow_id)
    return str((af.variables or {}).get(name, "")) if af is not None else ""


async def _digits_receive(run: ActionRun) -> bool:
    opt = run.option
    digits = await run.call.digits.collect(duration_s=opt.get("duration", DEFAULT_DIGITS_DURATION_MS) / 1000,
                                           length=opt.get("length", 1), key=opt.get("key", ""))
    await set_variables(run.manager, run.call, {VARIABLE_DIGITS: digits})
    return False


async def _digits_send(run: ActionRun) -> bool:
    opt = run.option
    duration = opt.get("duration", DTMF_SEND_DEFAULT_DURATION_MS)
    interval = opt.get("interval", DTMF_SEND_DEFAULT_INTERVAL_MS)
    try:
        done = run.media.send_dtmf(opt["digits"], duration_ms=duration, pause_ms=interval)
    except RuntimeError:
        log.warning("digits_send: the endpoint negotiated no telephone-event", call_id=run.call.call_id)
        return False
    await done
    return False


async def _goto(run: ActionRun) -> bool:
    opt = run.option
    counts = run.goto_counts if run.goto_counts is not None else {}
    used = counts.get(run.action["id"], 0)
    if used >= opt.get("loop_count", 0):
        return False  # exhausted: go on with the next action (docs)
    counts[run.action["id"]] = used + 1
    run.jump_to = opt["target_id"]
    return False


async def _branch(run: ActionRun) -> bool:
    opt = run.option
    value = await get_variable(run.manager, run.call, opt.get("variable") or VARIABLE_DIGITS)
    target: Any = (opt.get("target_ids") or {}).get(value) or opt.get("default_target_id") or None
    run.jump_to = target
    return False


EXECUTORS: dict[str, Callable[[ActionRun], Awaitable[bool]]] = {
    "digits_receive": _digits_receive,
    "digits_send": _digits_send,
    "goto": _goto,
    "branch": _branch,
}
