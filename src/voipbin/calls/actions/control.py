"""Actions on the call and its flow: ``hangup``, DTMF (``digits_receive``, ``digits_send``), the
cursor (``goto``, ``branch``) and transcription (``transcribe_start``, ``transcribe_stop``).

``digits_receive`` stores what it gathered in the activeflow variable ``voipbin.call.digits``
(the terminating ``key`` included, as the upstream docs say); ``branch`` reads a variable
(default that one) and jumps to ``target_ids[value]``, else ``default_target_id``, else goes on.
``goto`` jumps to ``target_id`` at most ``loop_count`` times, then goes on.
"""

from __future__ import annotations

from typing import Any

import structlog

from voipbin.calls.actions.base import ActionRun
from voipbin.calls.digits import VARIABLE_DIGITS
from voipbin.calls.hangup import BY_LOCAL, Hangup

log = structlog.get_logger(__name__)

DEFAULT_DIGITS_DURATION_MS = 5000
DTMF_SEND_DEFAULT_DURATION_MS = 250
DTMF_SEND_DEFAULT_INTERVAL_MS = 100


async def hangup(run: ActionRun) -> bool:
    reason = run.option.get("reason") or "normal"
    await run.control.end_call(run.call.call_id, Hangup(BY_LOCAL, reason))
    return True


async def digits_receive(run: ActionRun) -> bool:
    opt = run.option
    digits = await run.call.digits.collect(duration_s=opt.get("duration", DEFAULT_DIGITS_DURATION_MS) / 1000,
                                           length=opt.get("length", 1), key=opt.get("key", ""))
    await run.control.set_variables(run.call, {VARIABLE_DIGITS: digits})
    return False


async def digits_send(run: ActionRun) -> bool:
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


async def goto(run: ActionRun) -> bool:
    opt = run.option
    counts = run.goto_counts if run.goto_counts is not None else {}
    used = counts.get(run.action["id"], 0)
    if used >= opt.get("loop_count", 0):
        return False  # exhausted: go on with the next action (docs)
    counts[run.action["id"]] = used + 1
    run.jump_to = opt["target_id"]
    return False


async def branch(run: ActionRun) -> bool:
    opt = run.option
    value = await run.control.get_variable(run.call, opt.get("variable") or VARIABLE_DIGITS)
    target: Any = (opt.get("target_ids") or {}).get(value) or opt.get("default_target_id") or None
    run.jump_to = target
    return False


async def transcribe_start(run: ActionRun) -> bool:
    if run.context.transcribes is None:
        raise RuntimeError("transcribe_start: no transcribe service in this process")
    opt = run.option
    await run.context.transcribes.start_for_call(run.call.customer_id, run.call.call_id,
                                                 language=opt["language"], direction=opt["direction"],
                                                 provider=opt.get("provider"))
    return False


async def transcribe_stop(run: ActionRun) -> bool:
    if run.context.transcribes is not None:
        await run.context.transcribes.stop_for_call(run.call.customer_id, run.call.call_id)
    return False
