"""The ``connect`` action: dial destinations for a call and bridge the first that answers to it.

The dialled calls are *chained* to the *master* (the call running the flow): they run no flow
of their own (``master_call_id`` on each, ``chained_call_ids`` on the master). While they ring,
an unanswered inbound master gets 180; when one answers, the master is answered (inbound), the
others are cancelled and media is bridged (:mod:`voipbin.calls.bridge`: audio, and DTMF as RFC 4733).
Either side hanging up ends the other. If none answers, an unanswered inbound master gets the
callee's final response (486 Busy Here, 603 Decline, ...) and the flow stops; an answered
master's flow goes on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from voipbin.calls.actions.base import ActionRun, CallControl
from voipbin.calls.bridge import Bridge
from voipbin.calls.hangup import BY_LOCAL, LOCAL_BYE, LOCAL_CANCEL, Hangup, reject_code_for
from voipbin.calls.live import LiveCall
from voipbin.calls.status import CallOrigin

log = structlog.get_logger(__name__)


async def connect(run: ActionRun) -> bool:
    control, master, opt = run.control, run.call, run.option
    src = opt.get("source") or await _default_source(control, master)
    if src.get("type") == "tel" and not await control.owns_number(master.customer_id, src["target"]):
        log.warning("connect: source number not owned; skipped", call_id=master.call_id)
        return False
    chained = await control.dial_chained(master, src, opt["destinations"])
    winner: LiveCall | None = None
    try:
        winner = await _first_answer(master, chained)
        if master.ended.is_set():
            return True
        if winner is None:
            code, hangup = _relayed_failure(chained)
            if master.origin == CallOrigin.INCOMING and not master.answered.is_set():
                master.leg.reject_code = code  # type: ignore[union-attr]
                await control.end_call(master.call_id, hangup)
                return True
            return False
        for other in chained:
            if other is not winner and not other.ended.is_set():
                await control.end_call(other.call_id, LOCAL_CANCEL)
        await control.answer_incoming(master)
        await _bridge_until_one_ends(master, winner)
        if not master.ended.is_set():
            await control.end_call(master.call_id, LOCAL_BYE)
        return True
    finally:
        for lc in chained:  # however connect ends (master hung up, cancelled, failed), no chained call outlives it
            if not lc.ended.is_set():
                control.end_call_soon(lc.call_id, LOCAL_BYE if lc.answered.is_set() else LOCAL_CANCEL)


async def _first_answer(master: LiveCall, chained: list[LiveCall]) -> LiveCall | None:
    """The first chained call to answer; None when all ended unanswered or the master ended."""
    waits: dict[asyncio.Future[Any], tuple[str, LiveCall]] = {}
    for lc in chained:
        waits[asyncio.ensure_future(lc.answered.wait())] = ("answered", lc)
        waits[asyncio.ensure_future(lc.ended.wait())] = ("ended", lc)
        waits[asyncio.ensure_future(lc.ringing.wait())] = ("ringing", lc)
    waits[asyncio.ensure_future(master.ended.wait())] = ("master", master)
    open_calls = {lc.call_id for lc in chained}
    try:
        while waits:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                kind, lc = waits.pop(fut)
                if kind == "answered":
                    return lc
                if kind == "master":
                    return None
                if kind == "ringing" and master.origin == CallOrigin.INCOMING and not master.answered.is_set():
                    ringing = getattr(master.leg, "ringing", None)
                    if ringing is not None:
                        ringing()
                if kind == "ended":
                    open_calls.discard(lc.call_id)
            if not open_calls:
                return None
        return None
    finally:
        for fut in waits:
            fut.cancel()


def _relayed_failure(chained: list[LiveCall]) -> tuple[int, Hangup]:
    """The final response and hangup to give the master when no chained call answered."""
    for lc in chained:
        status = getattr(lc.leg, "sip_status", None)
        if status is not None and 400 <= status < 700 and status != 487:
            reason = lc.result.reason if lc.result is not None else "failed"
            return status, Hangup(BY_LOCAL, reason)
    result = next((lc.result for lc in chained if lc.result is not None), Hangup(BY_LOCAL, "failed"))
    if result.reason in ("dialout", "cancel"):
        result = Hangup(BY_LOCAL, "noanswer")
    return reject_code_for(result), Hangup(BY_LOCAL, result.reason)


async def _bridge_until_one_ends(master: LiveCall, peer: LiveCall) -> None:
    a, b = master.leg.media, peer.leg.media  # type: ignore[union-attr]
    if a is None or b is None:
        return
    mc, pc = master.controls, peer.controls
    bridge = Bridge(a, b,
                    a_sends=lambda: mc is None or mc.sends_to_peer, b_sends=lambda: pc is None or pc.sends_to_peer,
                    a_hears=lambda: mc is None or mc.hears_peer, b_hears=lambda: pc is None or pc.hears_peer,
                    a_digits=master.digits, b_digits=peer.digits)
    ends = [asyncio.ensure_future(master.ended.wait()), asyncio.ensure_future(peer.ended.wait())]
    try:
        await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for fut in ends:
            fut.cancel()
        bridge.close()


async def _default_source(control: CallControl, master: LiveCall) -> dict[str, str]:
    """Without ``option.source``: an inbound call's dialled number, else the master's own source."""
    row = await control.get(master.customer_id, master.call_id)
    if master.origin == CallOrigin.INCOMING and row.destination.get("type") == "tel":
        return dict(row.destination)
    return dict(row.source)
