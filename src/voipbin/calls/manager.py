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
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.calls import addresses, serialize
from voipbin.calls.activeflow import ActiveflowRunner, CallEnded, FlowContext
from voipbin.calls.controls import MediaControls
from voipbin.calls.digits import DigitBuffer
from voipbin.calls.hangup import (
    FINAL_CALL_STATUSES, LOCAL_BYE, LOCAL_CANCEL, NO_CONTACT, RING_TIMEOUT, RTP_TIMEOUT, TRANSPORT_FAILURE, Hangup,
    reject_code_for,
)
from voipbin.calls.leg import DialTarget, Leg, Originator
from voipbin.common.clock import format_ts, utcnow
from voipbin.common.errors import DomainError, InvalidArgument, NotFound
from voipbin.events.model import Event, EventPublisher
from voipbin.extensions.service import ExtensionService
from voipbin.flows.actions import NIL_UUID, first_action
from voipbin.flows.service import FlowService
from voipbin.media.session import RtpSession
from voipbin.numbers.service import NumberService
from voipbin.sip.location import Binding, LocationService
from voipbin.store.models import Activeflow, Call, Flow, Groupcall
from voipbin.store.pagination import paginate

log = structlog.get_logger(__name__)


class OrphanCalls(Protocol):
    """Ends a stored call that no live process drives (``voipbin.calls.recovery.Reconciler``)."""

    async def end_orphan(self, call: Call) -> bool: ...


class CallsUnavailable(DomainError):
    """The process is draining (SIGTERM): no new calls (-> 503 UNAVAILABLE)."""

    status = "UNAVAILABLE"
    http_status = 503


@dataclass
class CallSettings:
    """What the call manager needs of the process settings."""

    sip_domain: str
    ring_timeout_seconds: float = 60.0
    rtp_timeout_seconds: float = 30.0
    trunk_uri: str = ""
    trunk_username: str = ""
    trunk_password: str = ""
    pod_id: str = ""


@dataclass
class LiveCall:
    """The in-process state of one call this process drives (its leg and flow task)."""

    call_id: str
    customer_id: str
    groupcall_id: str
    activeflow_id: str
    target: DialTarget | None
    leg: Leg | None = None
    status: str = "dialing"
    ring_timer: asyncio.TimerHandle | None = None
    flow_task: asyncio.Task[None] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    pending_hangup: Hangup | None = None
    direction: str = "outgoing"
    master_call_id: str = ""  # a call dialled by ``connect``: no flow of its own, bridged to its master
    ringing: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    digits: DigitBuffer = field(default_factory=DigitBuffer)
    controls: MediaControls | None = None  # hold / mute / music on hold, once answered
    result: Hangup | None = None  # why it ended, once it has


class CallManager:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *,
                 settings: CallSettings, numbers: NumberService, extensions: ExtensionService,
                 flows: FlowService, location: LocationService, originator: Originator,
                 flow_context: FlowContext) -> None:
        self._sessions = sessions
        self._bus = bus
        self.settings = settings
        self._numbers = numbers
        self._extensions = extensions
        self._flows = flows
        self._location = location
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
        if lc is None or lc.status != "progressing" or lc.leg is None:
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
        if src["type"] == "tel" and await self._numbers.find_owned(customer_id, src["target"]) is None:
            raise InvalidArgument(f"source.target {src['target']} is not a number owned by this account",
                                  field="source.target")
        flow = await self._resolve_flow(customer_id, body)
        plans = [await self._plan_destination(customer_id, i, dest, src) for i, dest in enumerate(dests)]

        calls: list[Call] = []
        groupcalls: list[Groupcall] = []
        activeflows: list[Activeflow] = []
        live: list[LiveCall] = []
        async with self._sessions() as session, session.begin():
            if not flow.persist:
                session.add(flow)
            for dest, targets, is_group in plans:
                group: Groupcall | None = None
                if is_group:
                    group = Groupcall(id=str(uuid.uuid4()), customer_id=customer_id, flow_id=flow.id,
                                      source=src, destinations=[dest], call_ids=[])
                    groupcalls.append(group)
                for target in targets or [None]:
                    # before the answer, the call's action is the flow's first (the one it will run)
                    call = Call(id=str(uuid.uuid4()), customer_id=customer_id, flow_id=flow.id, source=src,
                                destination=dest, status="dialing", direction="outgoing",
                                action=first_action(flow.actions),
                                groupcall_id=group.id if group else "", data={}, pod_id=self.settings.pod_id)
                    af = Activeflow(id=str(uuid.uuid4()), customer_id=customer_id, flow_id=flow.id,
                                    reference_type="call", reference_id=call.id, actions=flow.actions,
                                    current_action=first_action(flow.actions),
                                    forward_action_id=first_action(flow.actions)["id"],
                                    executed_actions=[], variables={}, status="running")
                    call.activeflow_id = af.id
                    if target is not None:
                        call.data = {"request_uri": target.request_uri}
                    calls.append(call)
                    activeflows.append(af)
                    live.append(LiveCall(call.id, customer_id, call.groupcall_id, af.id, target))
                    if group is not None:
                        group.call_ids = [*group.call_ids, call.id]
                if group is not None:
                    session.add(group)
            session.add_all(calls)
            session.add_all(activeflows)
            await session.flush()
            for group in groupcalls:
                await self._publish_groupcall(group, "groupcall_created", session)
            for call, af in zip(calls, activeflows, strict=True):
                await self._publish_call(call, "call_created", session)
                await self._publish_activeflow(af, "activeflow_created", session)
        for lc in live:
            self._live[lc.call_id] = lc
            if not flow.actions:  # an empty flow: no action runs, the answered call stays up until hangup
                lc.flow_task = self._spawn(lc.ended.wait())
            self._spawn(self._dial(lc))
        return calls, groupcalls

    async def get(self, customer_id: str, call_id: str) -> Call:
        async with self._sessions() as session:
            row = await session.get(Call, call_id)
        if row is None or row.customer_id != customer_id or row.tm_delete is not None:
            raise NotFound("call not found")
        return row

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None
                   ) -> tuple[Sequence[Call], str]:
        async with self._sessions() as session:
            stmt = select(Call).where(Call.customer_id == customer_id, Call.tm_delete.is_(None))
            return await paginate(session, stmt, Call, page_size, page_token)

    async def get_groupcall(self, customer_id: str, groupcall_id: str) -> Groupcall:
        async with self._sessions() as session:
            row = await session.get(Groupcall, groupcall_id)
        if row is None or row.customer_id != customer_id or row.tm_delete is not None:
            raise NotFound("groupcall not found")
        return row

    async def list_groupcalls(self, customer_id: str, page_size: int | None, page_token: str | None
                              ) -> tuple[Sequence[Groupcall], str]:
        async with self._sessions() as session:
            stmt = select(Groupcall).where(Groupcall.customer_id == customer_id, Groupcall.tm_delete.is_(None))
            return await paginate(session, stmt, Groupcall, page_size, page_token)

    async def get_activeflow(self, customer_id: str, activeflow_id: str) -> Activeflow:
        async with self._sessions() as session:
            row = await session.get(Activeflow, activeflow_id)
        if row is None or row.customer_id != customer_id:
            raise NotFound("activeflow not found")
        return row

    async def list_activeflows(self, customer_id: str, page_size: int | None, page_token: str | None
                               ) -> tuple[Sequence[Activeflow], str]:
        async with self._sessions() as session:
            stmt = select(Activeflow).where(Activeflow.customer_id == customer_id)
            return await paginate(session, stmt, Activeflow, page_size, page_token)

    async def stop_activeflow(self, customer_id: str, activeflow_id: str) -> Activeflow:
        """``POST /activeflows/{id}/stop``: no further action runs (status ``ended``, ``activeflow_updated``)
        and, as when a flow reaches its end, its call is hung up. An ended activeflow is returned unchanged."""
        af = await self.get_activeflow(customer_id, activeflow_id)
        if af.status == "ended":
            return af
        lc = self._live.get(af.reference_id) if af.reference_type == "call" else None
        if lc is not None and lc.flow_task is not None and not lc.flow_task.done():
            lc.flow_task.cancel()
            await asyncio.gather(lc.flow_task, return_exceptions=True)
        async with self._sessions() as session, session.begin():
            af = await session.get(Activeflow, activeflow_id)
            assert af is not None
            af.status = "ended"
            af.tm_update = utcnow()
        await self._publish_activeflow(af, "activeflow_updated")
        if lc is not None:
            await self.hangup(customer_id, lc.call_id)
        return af

    async def delete_activeflow(self, customer_id: str, activeflow_id: str) -> Activeflow:
        """``DELETE /activeflows/{id}``: stop it, then soft-delete (``tm_delete``, ``activeflow_deleted``)."""
        await self.stop_activeflow(customer_id, activeflow_id)
        async with self._sessions() as session, session.begin():
            af = await session.get(Activeflow, activeflow_id)
            assert af is not None
            if af.tm_delete is not None:
                return af
            af.tm_delete = af.tm_update = utcnow()
        await self._publish_activeflow(af, "activeflow_deleted")
        return af

    async def hangup_groupcall(self, customer_id: str, groupcall_id: str) -> Groupcall:
        """``POST /groupcalls/{id}/hangup``: ``hangingup``, then every live call of it is hung up (CANCEL or
        BYE); it turns ``hangup`` once all have ended. Returns the groupcall as it is now."""
        group = await self.get_groupcall(customer_id, groupcall_id)
        live = [cid for cid in group.call_ids if cid in self._live]
        if live and group.status == "progressing":
            async with self._sessions() as session, session.begin():
                group = await session.get(Groupcall, groupcall_id)
                assert group is not None
                group.status = "hangingup"
                group.tm_update = utcnow()
            await self._publish_groupcall(group, "groupcall_updated")
        for call_id in live:
            await self.hangup(customer_id, call_id)
        return await self.get_groupcall(customer_id, groupcall_id)

    async def delete_groupcall(self, customer_id: str, groupcall_id: str) -> Groupcall:
        """``DELETE /groupcalls/{id}``: hang it up, wait for its calls to end, then soft-delete."""
        group = await self.hangup_groupcall(customer_id, groupcall_id)
        for call_id in group.call_ids:
            await self.wait_ended(call_id, 40)
        async with self._sessions() as session, session.begin():
            group = await session.get(Groupcall, groupcall_id)
            assert group is not None
            group.tm_delete = group.tm_update = utcnow()
        await self._publish_groupcall(group, "groupcall_deleted")
        return group

    async def hangup(self, customer_id: str, call_id: str) -> Call:
        """``POST /calls/{id}/hangup``: CANCEL before the answer, BYE after; the call is returned as now.

        A call whose process died (or this process before a restart) is ended here: ``hangup``
        ``local``/``failed``, its activeflow and sessions too."""
        call = await self.get(customer_id, call_id)
        lc = self._live.get(call_id)
        if lc is None and call.status not in FINAL_CALL_STATUSES and self.reconciler is not None:
            if await self.reconciler.end_orphan(call):
                return await self.get(customer_id, call_id)
        if lc is None or call.status in ("hangup", "terminating", "canceling"):
            return call
        await self.end_call(call_id, LOCAL_BYE if lc.status == "progressing" else LOCAL_CANCEL)
        return await self.get(customer_id, call_id)

    async def delete(self, customer_id: str, call_id: str) -> Call:
        """``DELETE /calls/{id}``: hang up if live, then soft-delete."""
        await self.hangup(customer_id, call_id)
        lc = self._live.get(call_id)
        if lc is not None:
            await asyncio.wait_for(lc.ended.wait(), 40)
        async with self._sessions() as session, session.begin():
            row = await session.get(Call, call_id)
            assert row is not None
            row.tm_delete = row.tm_update = utcnow()
            await self._publish_call(row, "call_deleted", session)
        return row

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
        await asyncio.gather(*(self.end_call(call_id, LOCAL_BYE if lc.status == "progressing" else LOCAL_CANCEL)
                               for call_id, lc in lives if lc.status in ("dialing", "ringing", "progressing")),
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

    # ------------------------------------------------------------------ planning (no writes)

    async def _resolve_flow(self, customer_id: str, body: dict[str, Any]) -> Flow:
        flow_id = body.get("flow_id")
        if flow_id and str(flow_id) != NIL_UUID:
            try:
                return await self._flows.get(customer_id, str(uuid.UUID(str(flow_id))))
            except (ValueError, NotFound) as exc:
                raise InvalidArgument("flow_id does not name a flow of this account", field="flow_id") from exc
        # no flow (absent or the nil UUID) and no actions: an empty flow (seed 002 step 1)
        actions = body.get("actions")
        return Flow(id=str(uuid.uuid4()), customer_id=customer_id, type="flow", name="", detail="",
                    persist=False, actions=[] if actions in (None, []) else await self._flows.validate_actions(actions))

    async def _plan_destination(self, customer_id: str, index: int, dest: dict[str, str], src: dict[str, str]
                                ) -> tuple[dict[str, str], list[DialTarget], bool]:
        """The endpoints to ring for one destination: (destination, targets, is_groupcall)."""
        where = f"destinations[{index}]"
        caller = src["target"] or "anonymous"
        from_uri = f"sip:{caller}@{self.settings.sip_domain}"
        if dest["type"] == "extension":
            # target_name is the extension's name (seeds 000/003); the upstream reference dials by the
            # ``extension`` (SIP user) instead, so that matches too when no name does
            ext = None
            if dest["target_name"]:
                ext = (await self._extensions.find(customer_id, name=dest["target_name"])
                       or await self._extensions.find(customer_id, extension=dest["target_name"]))
            if ext is None and dest["target"]:
                try:
                    ext = await self._extensions.get(customer_id, str(uuid.UUID(dest["target"])))
                except (ValueError, NotFound):
                    ext = None
            if ext is None:
                raise InvalidArgument(
                    f"{where}.target_name: no extension named {dest['target_name'] or dest['target']!r}",
                    field=f"{where}.target_name")
            dest = {**dest, "target": ext.id, "target_name": ext.name}
            aor = f"sip:{ext.extension}@{customer_id}.registrar.{self.settings.sip_domain}".lower()
            bindings = await self._location.lookup(aor)
            return dest, [self._binding_target(b, aor, from_uri, src) for b in bindings], True
        if dest["type"] == "sip":
            return dest, [DialTarget(request_uri=dest["target"], to_uri=dest["target"], from_uri=from_uri,
                                     from_display=src.get("name", ""))], False
        # tel: through the configured trunk
        if not self.settings.trunk_uri:
            raise InvalidArgument(f"{where}.type: tel destinations need a SIP trunk (VOIPBIN_TRUNK_URI is not set)",
                                  field=f"{where}.type")
        host = self.settings.trunk_uri.split(":", 1)[1] if ":" in self.settings.trunk_uri else self.settings.trunk_uri
        uri = f"sip:{dest['target']}@{host.split(';')[0]}"
        creds = ((self.settings.trunk_username, self.settings.trunk_password)
                 if self.settings.trunk_username else None)
        return dest, [DialTarget(request_uri=uri, to_uri=uri, from_uri=f"sip:{caller}@{host.split(';')[0]}",
                                 credentials=creds)], True  # a groupcall too: seed 002 reads groupcalls[0].call_ids

    @staticmethod
    def _binding_target(binding: Binding, aor: str, from_uri: str, src: dict[str, str]) -> DialTarget:
        return DialTarget(request_uri=binding.contact, to_uri=aor, from_uri=from_uri,
                          from_display=src.get("name", ""), destination=tuple(binding.received),  # type: ignore[arg-type]
                          transport=binding.transport.upper())

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
        if lc is None or lc.ended.is_set() or lc.status in ("terminating", "canceling"):
            return
        if lc.leg is None:  # the INVITE is still being sent: _dial ends the call once it is
            lc.pending_hangup = hangup
            return
        if lc.status == "progressing":
            lc.status = "terminating"
            lc.pending_hangup = hangup
            await self._update(lc, "call_updated", status="terminating")
            await lc.leg.hangup()
        else:
            if lc.direction == "incoming" and getattr(lc.leg, "reject_code", 0) is None:
                lc.leg.reject_code = reject_code_for(hangup)  # type: ignore[attr-defined]
            lc.status = "canceling"
            lc.pending_hangup = hangup
            await self._update(lc, "call_updated", status="canceling")
            await lc.leg.cancel()

    async def _on_ringing(self, lc: LiveCall) -> None:
        lc.ringing.set()
        if lc.status != "dialing":
            return
        lc.status = "ringing"
        await self._update(lc, "call_ringing", status="ringing", tm_ringing=utcnow())

    async def _on_answered(self, lc: LiveCall) -> None:
        if lc.status not in ("dialing", "ringing"):
            return
        if lc.ring_timer is not None:
            lc.ring_timer.cancel()
        lc.status = "progressing"
        if lc.leg is not None and lc.leg.media is not None:
            media = lc.leg.media
            media.rtp_timeout_s = self.settings.rtp_timeout_seconds
            media.on_timeout = lambda _s: self._spawn(self._rtp_timeout(lc))
            media.on_dtmf = lambda d: self._on_digit(lc, d.digit, d.duration_ms)
            lc.controls = MediaControls(media)
        await self._update(lc, "call_progressing", status="progressing", tm_progressing=utcnow())
        # only now is the answer complete (stored and published): a flow waiting on it may use the call
        lc.answered.set()
        if lc.groupcall_id:
            await self._groupcall_answered(lc)
        if lc.flow_task is None and not lc.master_call_id:  # inbound calls run their flow from the start
            runner = ActiveflowRunner(self._flow_context, self, lc)
            lc.flow_task = self._spawn(runner.run())

    # ------------------------------------------------------------------ inbound calls, DTMF

    async def create_incoming(self, customer_id: str, *, source: dict[str, str], destination: dict[str, str],
                              flow: Flow, leg: Leg, data: dict[str, Any] | None = None) -> LiveCall:
        """Store an ``incoming`` call (status ``ringing``) answered by ``leg`` (the UAS side), and start
        its flow at once: the flow's ``answer`` (or its first media action) answers it.
        ``leg.attach(listener)`` is called with the listener its events must go to."""
        call = Call(id=str(uuid.uuid4()), customer_id=customer_id, flow_id=flow.id, source=source,
                    destination=destination, status="ringing", direction="incoming", action=flow.actions[0],
                    groupcall_id="", data=dict(data or {}), tm_ringing=utcnow(),
                    pod_id=self.settings.pod_id)
        af = Activeflow(id=str(uuid.uuid4()), customer_id=customer_id, flow_id=flow.id, reference_type="call",
                        reference_id=call.id, actions=flow.actions, current_action=flow.actions[0],
                        forward_action_id=flow.actions[0]["id"], executed_actions=[], variables={},
                        status="running")
        call.activeflow_id = af.id
        async with self._sessions() as session, session.begin():
            if not flow.persist:
                session.add(flow)
            session.add(call)
            session.add(af)
            await session.flush()
            await self._publish_call(call, "call_created", session)
            await self._publish_activeflow(af, "activeflow_created", session)
        lc = LiveCall(call.id, customer_id, "", af.id, None, leg=leg, status="ringing", direction="incoming")
        self._live[lc.call_id] = lc
        attach = getattr(leg, "attach", None)
        if attach is not None:
            attach(_Listener(self, lc))
        lc.flow_task = self._spawn(ActiveflowRunner(self._flow_context, self, lc).run())
        return lc

    async def answer_incoming(self, lc: LiveCall) -> None:
        """Answer an inbound call (200 OK with our SDP) and wait until it is ``progressing``.
        Does nothing for an outgoing or already answered call; raises CallEnded if it ends first."""
        if lc.direction != "incoming" or lc.answered.is_set():
            return
        if lc.status != "ringing" or lc.leg is None:
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
        self._spawn(self._bus.publish(Event("dtmf_received", lc.customer_id, "call", lc.call_id, data)))

    async def _rtp_timeout(self, lc: LiveCall) -> None:
        log.info("no RTP from the endpoint; ending the call", call_id=lc.call_id)
        await self.end_call(lc.call_id, RTP_TIMEOUT)

    async def _on_ended(self, lc: LiveCall, hangup: Hangup) -> None:
        await self._finish(lc, lc.pending_hangup if lc.status in ("terminating", "canceling") and
                           lc.pending_hangup is not None else hangup)

    async def _finish(self, lc: LiveCall, hangup: Hangup) -> None:
        if lc.ended.is_set():
            return
        if lc.ring_timer is not None:
            lc.ring_timer.cancel()
        lc.status = "hangup"
        lc.result = hangup
        if lc.flow_task is not None and not lc.flow_task.done() and lc.flow_task is not asyncio.current_task():
            lc.flow_task.cancel()
            await asyncio.gather(lc.flow_task, return_exceptions=True)
        await self._update(lc, "call_hangup", status="hangup", hangup_by=hangup.by, hangup_reason=hangup.reason,
                           tm_hangup=utcnow())
        await self._end_activeflow(lc)
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
            await self._groupcall_member_ended(lc)

    # ------------------------------------------------------------------ groupcalls

    async def _groupcall_answered(self, lc: LiveCall) -> None:
        async with self._sessions() as session, session.begin():
            group = await session.get(Groupcall, lc.groupcall_id)
            assert group is not None
            if group.answer_call_id:
                return
            group.answer_call_id = lc.call_id
            group.tm_update = utcnow()
            others = [cid for cid in group.call_ids if cid != lc.call_id]
            await self._publish_groupcall(group, "groupcall_progressing", session)
        if group.answer_method == "hangup_others":
            for other in others:
                await self.end_call(other, LOCAL_CANCEL)

    async def _groupcall_member_ended(self, lc: LiveCall) -> None:
        async with self._sessions() as session, session.begin():
            group = await session.get(Groupcall, lc.groupcall_id)
            assert group is not None
            statuses = (await session.scalars(select(Call.status).where(Call.id.in_(group.call_ids)))).all()
            if group.status == "hangup" or any(s != "hangup" for s in statuses):
                return
            group.status = "hangup"
            group.tm_update = utcnow()
            await self._publish_groupcall(group, "groupcall_hangup", session)

    # ------------------------------------------------------------------ activeflows

    async def record_action(self, lc: LiveCall, action: dict[str, Any]) -> None:
        """The flow moved to ``action``: store it on the activeflow and the call, publish both."""
        now = utcnow()
        executed = {**action, "tm_execute": format_ts(now)}
        async with self._sessions() as session, session.begin():
            af = await session.get(Activeflow, lc.activeflow_id)
            call = await session.get(Call, lc.call_id)
            assert af is not None and call is not None
            af.current_action = action
            af.forward_action_id = action.get("next_id", "")
            af.executed_actions = [*af.executed_actions, executed]
            af.tm_update = now
            call.action = action
            call.tm_update = now
            await self._publish_activeflow(af, "activeflow_updated", session)
            await self._publish_call(call, "call_updated", session)

    async def action_failed(self, lc: LiveCall, action: dict[str, Any], message: str) -> None:
        """An action could not run: publish ``activeflow_action_failed`` (the activeflow, plus
        ``error: {action_id, action_type, message}``); the flow goes on with the next action."""
        async with self._sessions() as session:
            af = await session.get(Activeflow, lc.activeflow_id)
        if af is None:
            return
        data = {**serialize.activeflow(af), "error": {
            "action_id": action.get("id", ""), "action_type": action.get("type", ""), "message": message[:500]}}
        await self._bus.publish(Event("activeflow_action_failed", af.customer_id, "activeflow", af.id, data))

    async def _end_activeflow(self, lc: LiveCall) -> None:
        async with self._sessions() as session, session.begin():
            af = await session.get(Activeflow, lc.activeflow_id)
            if af is None or af.status == "ended":
                return
            af.status = "ended"
            af.tm_update = af.tm_delete = utcnow()
            await self._publish_activeflow(af, "activeflow_deleted", session)

    # ------------------------------------------------------------------ persistence + events

    async def _update(self, lc: LiveCall, event_type: str, **changes: Any) -> Call:
        async with self._sessions() as session, session.begin():
            call = await session.get(Call, lc.call_id)
            assert call is not None
            for key, value in changes.items():
                setattr(call, key, value)
            call.tm_update = utcnow()
            await self._publish_call(call, event_type, session)
        return call

    # ``session``: the open transaction that stored the change (the webhook row joins it); without,
    # the event is published on its own after the caller's commit
    async def _publish_call(self, call: Call, event_type: str, session: AsyncSession | None = None) -> None:
        await self._bus.publish(Event(event_type, call.customer_id, "call", call.id, serialize.call(call)),
                                session=session)

    async def _publish_groupcall(self, group: Groupcall, event_type: str, session: AsyncSession | None = None
                                 ) -> None:
        await self._bus.publish(Event(event_type, group.customer_id, "groupcall", group.id,
                                      serialize.groupcall(group)), session=session)

    async def _publish_activeflow(self, af: Activeflow, event_type: str, session: AsyncSession | None = None
                                  ) -> None:
        await self._bus.publish(Event(event_type, af.customer_id, "activeflow", af.id, serialize.activeflow(af)),
                                session=session)

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
