"""Mid-call changes asked over the API: hold, mute and music on hold (``/calls/{id}/hold|mute|moh``).

Each applies to the call's RTP session in this process (:mod:`voipbin.calls.controls`; hold also
re-INVITEs the endpoint, see :func:`hold`), then the
call is stored and published (``call_updated``): ``mute_direction`` is the spec's field; hold and
MOH states are kept in the call's internal data. A call that is not answered (or has ended) is a
409 FAILED_PRECONDITION; a call of another customer 404.
"""

from __future__ import annotations

from typing import Any

from voipbin.calls.controls import MUTE_DIRECTIONS, MediaControls
from voipbin.calls.live import LiveCall
from voipbin.calls.manager import CallManager
from voipbin.calls.status import CallStatus
from voipbin.common.errors import FailedPrecondition, InvalidArgument
from voipbin.media.sdp import Direction
from voipbin.store.models import Call


async def _controls(manager: CallManager, customer_id: str, call_id: str) -> tuple[LiveCall, MediaControls]:
    await manager.get(customer_id, call_id)  # 404 for a missing or foreign call
    lc = manager.live(call_id)
    if lc is None or lc.status != CallStatus.PROGRESSING or lc.controls is None:
        raise FailedPrecondition("the call is not answered (or not handled by this process)", field="id")
    return lc, lc.controls


async def _store(manager: CallManager, lc: LiveCall, controls: MediaControls, **changes: Any) -> Call:
    data = await manager.records.call_data(lc.call_id)
    data.update(hold=controls.held, moh=controls.moh is not None)
    return await manager.records.update_call(lc.call_id, "call_updated", data=data, **changes)


async def hold(manager: CallManager, customer_id: str, call_id: str, on: bool) -> Call:
    """Hold (the endpoint and the call it is bridged to no longer hear each other) or unhold.

    The audio is gated at once; then, when the hold state changes, the leg re-offers its media
    (``Leg.update_media``: a re-INVITE with ``a=sendonly`` to hold, RFC 3264 §8.4, ``sendrecv`` to
    resume) and applies the endpoint's answer. Returns once the endpoint answered; a refused
    re-INVITE leaves the SIP session as it was (the audio stays held as asked); a 408/481 or no
    answer ends the call (remote, failed) and the ended call is returned, unchanged."""
    lc, controls = await _controls(manager, customer_id, call_id)
    changed = controls.held != on
    controls.hold(on)
    update = getattr(lc.leg, "update_media", None)
    if changed and update is not None:
        await update(Direction.SENDONLY if on else Direction.SENDRECV)
        if lc.status != CallStatus.PROGRESSING:  # the re-INVITE found the dialog gone: the call ended meanwhile
            return await manager.get(customer_id, call_id)
    return await _store(manager, lc, controls)


async def mute(manager: CallManager, customer_id: str, call_id: str, direction: Any, on: bool) -> Call:
    """Mute ``direction`` (``in``: the endpoint is not heard; ``out``: it hears nothing; ``both``),
    or unmute it (DELETE; without a direction everything is unmuted)."""
    if direction in (None, "") and not on:
        direction = "both"
    if direction not in MUTE_DIRECTIONS:
        raise InvalidArgument("direction must be one of in, out, both", field="direction")
    lc, controls = await _controls(manager, customer_id, call_id)
    current = {"": set(), "in": {"in"}, "out": {"out"}, "both": {"in", "out"}}[controls.mute_direction]
    change = {"in"} if direction == "in" else {"out"} if direction == "out" else {"in", "out"}
    muted = current | change if on else current - change
    new = "both" if muted == {"in", "out"} else next(iter(muted), "")
    controls.mute(new)
    return await _store(manager, lc, controls, mute_direction=new)


async def music_on_hold(manager: CallManager, customer_id: str, call_id: str, on: bool) -> Call:
    """Start or stop music on hold: the endpoint hears a generated melody instead of the call."""
    lc, controls = await _controls(manager, customer_id, call_id)
    controls.music_on_hold(on)
    return await _store(manager, lc, controls)
