"""The call manager: creates outgoing calls and groupcalls, drives each call's lifecycle.

Lifecycle (``CallManagerCallStatus``): ``dialing`` → ``ringing`` → ``progressing`` →
``terminating`` → ``hangup``; ``canceling`` when we hang up before the answer. Every change is
published in the transaction that stores it (``call_created``, ``call_ringing``, ``call_progressing``,
``call_updated``, ``call_hangup``: the webhook row commits with the change, the live event follows
the commit). Each call carries the ``pod_id`` of the process that drives it (see
:mod:`voipbin.calls.recovery` for calls whose process died). A call never rings forever (``ring_timeout_seconds`` →
``dialout``) and a call whose endpoint vanished is ended by the RTP inactivity timeout.

``POST /calls`` validates everything before writing anything: a bad source, destination,
flow or action is a 400 and leaves no row behind.

Collaborators: :mod:`voipbin.calls.planning` (flows and destinations, no writes),
:mod:`voipbin.calls.records` (rows and their events), :mod:`voipbin.calls.activeflow` (the flow
runner; its actions reach calls only through :class:`~voipbin.calls.actions.base.CallControl`,
which this class implements), :mod:`voipbin.calls.live` (the in-process :class:`LiveCall`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.calls.actions.base import FlowContext
from voipbin.calls.actions.conference import JOIN_ACTIONS, conference_of
from voipbin.calls.activeflow import ActiveflowRunner
from voipbin.calls.controls import MediaControls
from voipbin.calls.hangup import (
    LOCAL_BYE, LOCAL_CANCEL, NO_CONTACT, RING_TIMEOUT, RTP_TIMEOUT, TRANSPORT_FAILURE, Hangup,
    reject_code_for,
)
from voipbin.calls.leg import Leg, Originator
from voipbin.calls.live import CallEnded, LiveCall
from voipbin.calls.planning import CallPlanner, CallSettings
from voipbin.calls.records import CallRecords
from voipbin.calls.status import (
    ENDING_CALL_STATUSES, FINAL_CALL_STATUSES, ActiveflowStatus, CallOrigin, CallStatus, GroupcallStatus,
)
from voipbin.common.clock import format_ts, utcnow
from voipbin.common.errors import DomainError, InvalidArgument
from voipbin.events.model import Event, EventPublisher
from voipbin.extensions.service import ExtensionService
from voipbin.flows import addresses
from voipbin.flows.service import FlowService
from voipbin.media.session import RtpSession
from voipbin.numbers.service import NumberService
from voipbin.sip.location import LocationService
from voipbin.store.models import Activeflow, Call, Flow, Groupcall

__all__ = ["CallManager", "CallSettings", "CallsUnavailable", "LiveCall", "OrphanCalls"]

log = structlog.get_logger(__name__)


class OrphanCalls(Protocol):
    """Ends a stored call that no live process drives (``voipbin.calls.recovery.Reconciler``)."""

    async def end_orphan(self, call: Call) -> bool: ...


class CallsUnavailable(DomainError):
    """The process is draining (SIGTERM): no new calls (-> 503 UNAVAILABLE)."""

    status = "UNAVAILABLE"
    http_status = 503


class CallManager:
    """Every call this process drives, from ``POST /calls`` or an inbound INVITE to ``hangup``.

    Holds the :class:`LiveCall` of each (``live(call_id)``), turns leg events (ringing, answered,
    ended, DTMF) into stored and published status changes, runs each answered call's flow
    (:class:`~voipbin.calls.activeflow.ActiveflowRunner`) and serves the API's call, groupcall and
    activeflow operations (reads are owned-or-404: another customer's call is NotFound).
    Implements :class:`~voipbin.calls.actions.base.CallControl` for the flow actions.
    ``accepting`` is False while the process drains (new calls: 503); ``reconciler`` ends calls
    whose process died (set by the runtime).
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *,
                 settings: CallSettings, numbers: NumberService, extensions: ExtensionService,
                 flows: FlowService, location: LocationService, originator: Originator,
                 flow_context: FlowContext) -> None:
        self.settings = settings
        self.records = CallRecords(sessions, bus, pod_id=settings.pod_id)
        self._planner = CallPlanner(settings, numbers=numbers, extensions=extensions, flows=flows,
                                    location=location)
        self._originator = originator
        self._flow_context = flow_context
        self._live: dict[str, LiveCall] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._end_listeners: list[Callable[[str, str], Awaitable[None]]] = []
        self.accepting = True  # False while draining: new calls are refused (503)
        self.reconciler: OrphanCalls | None = None  # ends calls held by a dead process (set by the runtime)

    def add_end_listener(self, listener: Callable[[str, str], Awaitable[None]]) -> None:
        """Await ``listener(customer_id, call_id)`` when a call this process drives hangs up
        (after ``call_hangup`` is stored, before its media closes): sessions on the call stop there."""
        self._end_listeners.append(listener)

    def media_of(self, call_id: str) -> RtpSession | None:
        """The RTP session of a live, answered call in this process, else None."""
        lc = self._live.get(call_id)
        if lc is None or lc.status != CallStatus.PROGRESSING or lc.leg is None:
            return None
        return lc.leg.media

    # ------------------------------------------------------------------ API operations

    async def create_outgoing(self, customer_id: str, body: dict[str, Any]
                              ) -> tuple[list[Call], list[Groupcall]]:
        """``POST /calls``: one call per resolved endpoint; an extension destination makes a groupcall.

        Returns ``(calls, groupcalls)``; the calls of groupcalls are in ``calls`` too, so both
        ``calls[0].id`` (seed 000) and ``groupcalls[0].call_ids`` (seed 003) work.
        Raises InvalidArgument (400) for any bad field; nothing is written then; CallsUnavailable
        (503) while the process drains.
        """
        if not self.accepting:
            raise CallsUnavailable("the server is shutting down; no new calls", reason="DRAINING")
        src = addresses.source(body.get("source"))
        dests = addresses.destinations(body.get("destinations"))
        if src["type"] == "tel" and not await self._planner.owns_number(customer_id, src["target"]):
            raise InvalidArgument(f"source.target {src['target']} is not a number owned by this account",
                                  field="source.target")
        flow = await self._planner.resolve_flow(customer_id, body)
        await self._check_references(customer_id, flow.actions)
        plans = [await self._planner.plan(customer_id, i, dest, src) for i, dest in enumerate(dests)]
        stored, groupcalls = await self.records.store_outgoing(customer_id, flow, src, plans)
        for call, target in stored:
            lc = LiveCall(call.id, customer_id, call.groupcall_id, call.activeflow_id, target)
            self._live[lc.call_id] = lc
            if not flow.actions:  # an empty flow: no action runs, the answered call stays up until hangup
                lc.flow_task = self._spawn(lc.ended.wait())
            self._spawn(self._dial(lc))
        return [call for call, _ in stored], groupcalls

    async def get(self, customer_id: str, call_id: str) -> Call:
        return await self.records.call(customer_id, call_id)

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None
                   ) -> tuple[Sequence[Call], str]:
        return await self.records.list_calls(customer_id, page_size, page_token)

    async def get_groupcall(self, customer_id: str, groupcall_id: str) -> Groupcall:
        return await self.records.groupcall(customer_id, groupcall_id)

    async def list_groupcalls(self, customer_id: str, page_size: int | None, page_token: str | None
                              ) -> tuple[Sequence[Groupcall], str]:
        return await self.records.list_groupcalls(customer_id, page_size, page_token)

    async def get_activeflow(self, customer_id: str, activeflow_id: str) -> Activeflow:
        return await self.records.activeflow(customer_id, activeflow_id)

    async def list_activeflows(self, customer_id: str, page_size: int | None, page_token: str | None
                               ) -> tuple[Sequence[Activeflow], str]:
        return await self.records.list_activeflows(customer_id, page_size, page_token)

    async def stop_activeflow(self, customer_id: str, activeflow_id: str) -> Activeflow:
        """``POST /activeflows/{id}/stop``: no further action runs (status ``ended``, ``activeflow_updated``)
        and, as when a flow reaches its end, its call is hung up. An ended activeflow is returned unchanged."""
        af = await self.get_activeflow(customer_id, activeflow_id)
        if af.status == ActiveflowStatus.ENDED:
            return af
        lc = self._live.get(af.reference_id) if af.reference_type == "call" else None
        if lc is not None and lc.flow_task is not None and not lc.flow_task.done():
            lc.flow_task.cancel()
            await asyncio.gather(lc.flow_task, return_exceptions=True)
        af = await self.records.stop_activeflow(activeflow_id)
        if lc is not None:
            await self.hangup(customer_id, lc.call_id)
        return af

    async def delete_activeflow(self, customer_id: str, activeflow_id: str) -> Activeflow:
        """``DELETE /activeflows/{id}``: stop it, then soft-delete (``tm_delete``, ``activeflow_deleted``)."""
        await self.stop_activeflow(customer_id, activeflow_id)
        return await self.records.delete_activeflow(activeflow_id)

    async def hangup_groupcall(self, customer_id: str, groupcall_id: str) -> Groupcall:
        """``POST /groupcalls/{id}/hangup``: ``hangingup``, then every live call of it is hung up (CANCEL or
        BYE); it turns ``hangup`` once all have ended. Returns the groupcall as it is now."""
        group = await self.get_groupcall(customer_id, groupcall_id)
        live = [cid for cid in group.call_ids if cid in self._live]
        if live and group.status == GroupcallStatus.PROGRESSING:
            await self.records.set_groupcall_status(groupcall_id, GroupcallStatus.HANGINGUP, "groupcall_updated")
        for call_id in live:
            await self.hangup(customer_id, call_id)
        return await self.get_groupcall(customer_id, groupcall_id)

    async def delete_groupcall(self, customer_id: str, groupcall_id: str) -> Groupcall:
        """``DELETE /groupcalls/{id}``: hang it up, wait for its calls to end, then soft-delete."""
        group = await self.hangup_groupcall(customer_id, groupcall_id)
        for call_id in group.call_ids:
            await self.wait_ended(call_id, 40)
        return await self.records.delete_groupcall(groupcall_id)
    async def hangup(self, customer_id: str, call_id: str) -> Call:
        """``POST /calls/{id}/hangup``: CANCEL before the answer, BYE after; the call is returned as now.

        A call whose process died (or this process before a restart) is ended here: ``hangup``
        ``local``/``failed``, its activeflow and sessions too."""
        call = await self.get(customer_id, call_id)
        lc = self._live.get(call_id)
        if lc is None and call.status not in FINAL_CALL_STATUSES and self.reconciler is not None:
            if await self.reconciler.end_orphan(call):
                return await self.get(customer_id, call_id)
        if lc is None or call.status in FINAL_CALL_STATUSES | ENDING_CALL_STATUSES:
            return call
        await self.end_call(call_id, LOCAL_BYE if lc.status == CallStatus.PROGRESSING else LOCAL_CANCEL)
        return await self.get(customer_id, call_id)

    async def delete(self, customer_id: str, call_id: str) -> Call:
        """``DELETE /calls/{id}``: hang up if live, then soft-delete."""
        await self.hangup(customer_id, call_id)
        lc = self._live.get(call_id)
        if lc is not None:
            await asyncio.wait_for(lc.ended.wait(), 40)
        return await self.records.delete_call(call_id)

    def live(self, call_id: str) -> LiveCall | None:
        return self._live.get(call_id)

    async def wait_ended(self, call_id: str, timeout: float) -> None:
        lc = self._live.get(call_id)
        if lc is not None:
            await asyncio.wait_for(lc.ended.wait(), timeout)

    @property
    def live_count(self) -> int:
        return len(self._live)

    async def hangup_all(self, timeout: float = 5.0) -> int:
        """Hang up every live call (BYE after the answer, CANCEL before) and wait up to ``timeout``
        seconds for them to end; returns how many were still live after the wait."""
        lives = list(self._live.items())
        live = (CallStatus.DIALING, CallStatus.RINGING, CallStatus.PROGRESSING)
        await asyncio.gather(*(self.end_call(call_id, LOCAL_BYE if lc.status == CallStatus.PROGRESSING
                                             else LOCAL_CANCEL) for call_id, lc in lives if lc.status in live),
                             return_exceptions=True)
        waits = [asyncio.wait_for(lc.ended.wait(), timeout) for _, lc in lives]
        await asyncio.gather(*waits, return_exceptions=True)
        return len(self._live)

    async def stop(self) -> None:
        """Hang up every live call (process shutdown) and wait for the legs to end."""
        self.accepting = False
        await self.hangup_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


    # ------------------------------------------------------------------ lifecycle

    async def _dial(self, lc: LiveCall) -> None:
        if lc.target is None:
            await self._finish(lc, NO_CONTACT)
            return
        listener = _Listener(self, lc)
        try:
            lc.leg = await self._originator.originate(lc.target, listener)
        except OSError as exc:
            log.warning("INVITE could not be sent", call_id=lc.call_id, error=str(exc))
            await self._finish(lc, TRANSPORT_FAILURE)
            return
        loop = asyncio.get_running_loop()
        lc.ring_timer = loop.call_later(self.settings.ring_timeout_seconds,
                                        lambda: self._spawn(self.end_call(lc.call_id, RING_TIMEOUT)))
        if lc.pending_hangup is not None:  # hung up while the INVITE was being sent
            await self.end_call(lc.call_id, lc.pending_hangup)

    async def end_call(self, call_id: str, hangup: Hangup) -> None:
        """End a live call for a local reason (API hangup, ring timeout, flow ``hangup``, shutdown)."""
        lc = self._live.get(call_id)
        if lc is None or lc.ended.is_set() or lc.status in FINAL_CALL_STATUSES | ENDING_CALL_STATUSES:
            return
        if lc.leg is None:  # the INVITE is still being sent: _dial ends the call once it is
            lc.pending_hangup = hangup
            return
        if lc.status == CallStatus.PROGRESSING:
            lc.pending_hangup = hangup
            await self._move(lc, CallStatus.TERMINATING)
            await lc.leg.hangup()
        else:
            if lc.origin == CallOrigin.INCOMING and getattr(lc.leg, "reject_code", 0) is None:
                lc.leg.reject_code = reject_code_for(hangup)  # type: ignore[attr-defined]
            lc.pending_hangup = hangup
            await self._move(lc, CallStatus.CANCELING)
            await lc.leg.cancel()

    async def _on_ringing(self, lc: LiveCall) -> None:
        lc.ringing.set()
        if lc.status != CallStatus.DIALING:
            return
        await self._move(lc, CallStatus.RINGING, "call_ringing", tm_ringing=utcnow())

    async def _on_answered(self, lc: LiveCall) -> None:
        if lc.status not in (CallStatus.DIALING, CallStatus.RINGING):
            return
        if lc.ring_timer is not None:
            lc.ring_timer.cancel()
        if lc.leg is not None and lc.leg.media is not None:
            media = lc.leg.media
            media.rtp_timeout_s = self.settings.rtp_timeout_seconds
            media.on_timeout = lambda _s: self._spawn(self._rtp_timeout(lc))
            media.on_dtmf = lambda d: self._on_digit(lc, d.digit, d.duration_ms)
            lc.controls = MediaControls(media)
        await self._move(lc, CallStatus.PROGRESSING, "call_progressing", tm_progressing=utcnow())
        # only now is the answer complete (stored and published): a flow waiting on it may use the call
        lc.answered.set()
        if lc.groupcall_id:
            for other in await self.records.groupcall_answered(lc.groupcall_id, lc.call_id) or []:
                await self.end_call(other, LOCAL_CANCEL)
        if lc.flow_task is None and not lc.master_call_id:  # inbound calls run their flow from the start
            runner = ActiveflowRunner(self._flow_context, self, lc)
            lc.flow_task = self._spawn(runner.run())

    # ------------------------------------------------------------------ inbound calls, DTMF

    async def create_incoming(self, customer_id: str, *, source: dict[str, str], destination: dict[str, str],
                              flow: Flow, leg: Leg, data: dict[str, Any] | None = None) -> LiveCall:
        """Store an ``incoming`` call (status ``ringing``) answered by ``leg`` (the UAS side), and start
        its flow at once: the flow's ``answer`` (or its first media action) answers it.
        ``leg.attach(listener)`` is called with the listener its events must go to."""
        call = await self.records.store_incoming(customer_id, flow, source=source, destination=destination,
                                                 data=data)
        lc = LiveCall(call.id, customer_id, "", call.activeflow_id, None, leg=leg, status=CallStatus.RINGING,
                      origin=CallOrigin.INCOMING)
        self._live[lc.call_id] = lc
        attach = getattr(leg, "attach", None)
        if attach is not None:
            attach(_Listener(self, lc))
        lc.flow_task = self._spawn(ActiveflowRunner(self._flow_context, self, lc).run())
        return lc

    async def answer_incoming(self, lc: LiveCall) -> None:
        """Answer an inbound call (200 OK with our SDP) and wait until it is ``progressing``.
        Does nothing for an outgoing or already answered call; raises CallEnded if it ends first."""
        if lc.origin != CallOrigin.INCOMING or lc.answered.is_set():
            return
        if lc.status != CallStatus.RINGING or lc.leg is None:
            raise CallEnded(lc.call_id)
        await lc.leg.answer()  # type: ignore[attr-defined]
        ended = asyncio.ensure_future(lc.ended.wait())
        answered = asyncio.ensure_future(lc.answered.wait())
        try:
            await asyncio.wait({ended, answered}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            answered.cancel()
        if not lc.answered.is_set():
            raise CallEnded(lc.call_id)

    def _on_digit(self, lc: LiveCall, digit: str, duration_ms: int) -> None:
        """A DTMF digit from the endpoint (RFC 4733 or SIP INFO): buffered for ``digits_receive``
        and published as ``dtmf_received`` (the upstream event name)."""
        if lc.ended.is_set():
            return
        lc.digits.push(digit)
        data = {"id": str(uuid.uuid4()), "customer_id": lc.customer_id, "call_id": lc.call_id, "digit": digit,
                "duration": duration_ms, "tm_create": format_ts(utcnow())}
        self._spawn(self.records.publish(Event("dtmf_received", lc.customer_id, "call", lc.call_id, data)))

    async def _rtp_timeout(self, lc: LiveCall) -> None:
        log.info("no RTP from the endpoint; ending the call", call_id=lc.call_id)
        await self.end_call(lc.call_id, RTP_TIMEOUT)

    async def _on_ended(self, lc: LiveCall, hangup: Hangup) -> None:
        await self._finish(lc, lc.pending_hangup if lc.status in ENDING_CALL_STATUSES and
                           lc.pending_hangup is not None else hangup)

    async def _finish(self, lc: LiveCall, hangup: Hangup) -> None:
        if lc.ended.is_set() or lc.status == CallStatus.HANGUP:  # ended, or ending in another task
            return
        if lc.ring_timer is not None:
            lc.ring_timer.cancel()
        lc.move_to(CallStatus.HANGUP)
        lc.result = hangup
        if lc.flow_task is not None and not lc.flow_task.done() and lc.flow_task is not asyncio.current_task():
            lc.flow_task.cancel()
            await asyncio.gather(lc.flow_task, return_exceptions=True)
        await self.records.hangup_call(lc.call_id, lc.activeflow_id, status=CallStatus.HANGUP, hangup_by=hangup.by,
                                       hangup_reason=hangup.reason, tm_hangup=utcnow())
        for listener in list(self._end_listeners):
            try:
                await listener(lc.customer_id, lc.call_id)
            except Exception:
                log.exception("call end listener failed", call_id=lc.call_id)
        if lc.leg is not None and lc.leg.media is not None:
            lc.leg.media.close()
        lc.ended.set()
        self._live.pop(lc.call_id, None)
        if lc.groupcall_id:
            await self.records.groupcall_member_ended(lc.groupcall_id)

    # ------------------------------------------------------------------ CallControl (what flow actions use)

    def end_call_soon(self, call_id: str, hangup: Hangup) -> None:
        self._spawn(self.end_call(call_id, hangup))

    async def owns_number(self, customer_id: str, number: str) -> bool:
        return await self._planner.owns_number(customer_id, number)

    async def dial_chained(self, master: LiveCall, source: dict[str, str],
                           destinations: list[dict[str, str]]) -> list[LiveCall]:
        """Store and dial one call per endpoint of ``destinations`` (groupcalls for extensions),
        chained to ``master``. Raises InvalidArgument for a destination that cannot be dialled
        (nothing written)."""
        plans = [await self._planner.plan(master.customer_id, i, d, source) for i, d in enumerate(destinations)]
        stored = await self.records.store_chained(master.customer_id, master.call_id, source, plans)
        live = [LiveCall(call.id, master.customer_id, call.groupcall_id, "", target, master_call_id=master.call_id)
                for call, target in stored]
        for lc in live:
            self._live[lc.call_id] = lc
            self._spawn(self._dial(lc))
        return live

    async def set_variables(self, call: LiveCall, values: dict[str, str]) -> None:
        await self.records.set_variables(call.activeflow_id, values)

    async def get_variable(self, call: LiveCall, name: str) -> str:
        return await self.records.get_variable(call.activeflow_id, name)

    async def flow_actions(self, call: LiveCall) -> list[dict[str, Any]]:
        return await self.records.flow_actions(call.activeflow_id)

    async def record_action(self, call: LiveCall, action: dict[str, Any]) -> None:
        """The flow moved to ``action``: store it on the activeflow and the call, publish both."""
        await self.records.record_action(call.activeflow_id, call.call_id, action)

    async def action_failed(self, call: LiveCall, action: dict[str, Any], message: str) -> None:
        """An action could not run: publish ``activeflow_action_failed`` (the activeflow, plus
        ``error: {action_id, action_type, message}``); the flow goes on with the next action."""
        await self.records.action_failed(call.activeflow_id, action, message)

    async def run_flow(self, call: LiveCall, flow_id: str) -> None:
        """Run a stored flow's actions on ``call`` (a conference's pre/post flow); raises CallEnded
        when they end the call (a ``hangup`` action), NotFound for a missing flow."""
        flow = await self._planner.flow(call.customer_id, flow_id)
        if await ActiveflowRunner(self._flow_context, self, call).run_actions(flow.actions):
            raise CallEnded(call.call_id)

    async def _check_references(self, customer_id: str, actions: list[dict[str, Any]]) -> None:
        """What the actions of a new call name exists for the account: a ``conference_join``'s
        progressing conference (NotFound / InvalidArgument naming ``actions[i].option.conference_id``),
        an ``ai_talk``'s AI (InvalidArgument naming ``actions[i].option.assistance_id``); nothing written."""
        context = self._flow_context
        for i, action in enumerate(actions):
            option = action.get("option") or {}
            if action["type"] in JOIN_ACTIONS and context.conferences is not None:
                key, conference_id = conference_of(option)
                await context.conferences.check_join(customer_id, conference_id, f"actions[{i}].option.{key}")
            elif action["type"] == "ai_talk" and context.ai is not None:
                await context.ai.check_talk(customer_id, option, f"actions[{i}].option")

    # ------------------------------------------------------------------ persistence, tasks

    async def _move(self, lc: LiveCall, status: CallStatus, event_type: str = "call_updated", **changes: Any) -> None:
        """Move the live call to ``status`` (checked: :meth:`LiveCall.move_to`), store and publish it."""
        lc.move_to(status)
        await self.records.update_call(lc.call_id, event_type, status=status, **changes)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call task failed", exc_info=task.exception())


class _Listener:
    """Adapts leg callbacks (plain calls from the SIP layer) to the manager's coroutines, in order."""

    def __init__(self, manager: CallManager, lc: LiveCall) -> None:
        self._manager = manager
        self._lc = lc
        self._queue: asyncio.Queue[tuple[str, Hangup | None]] = asyncio.Queue()
        self._task = manager._spawn(self._drain())

    def leg_ringing(self) -> None:
        self._queue.put_nowait(("ringing", None))

    def leg_answered(self) -> None:
        self._queue.put_nowait(("answered", None))

    def leg_ended(self, hangup: Hangup) -> None:
        self._queue.put_nowait(("ended", hangup))

    def leg_digit(self, digit: str, duration_ms: int) -> None:
        """A DTMF digit signalled out of the RTP stream (SIP INFO)."""
        self._manager._on_digit(self._lc, digit, duration_ms)

    async def _drain(self) -> None:
        while True:
            kind, hangup = await self._queue.get()
            if kind == "ringing":
                await self._manager._on_ringing(self._lc)
            elif kind == "answered":
                await self._manager._on_answered(self._lc)
            else:
                assert hangup is not None
                await self._manager._on_ended(self._lc, hangup)
                return
