"""The stored side of calls: ``calls``, ``groupcalls`` and ``activeflows`` rows, built, read and
changed in one place, each change published in the transaction that stores it.

* Rows are built only by :func:`new_call`, :func:`new_activeflow` and :func:`new_groupcall`.
* Reads for the API are owned-or-404 (:func:`voipbin.store.records.owned`).
* ``db`` arguments of the ``publish_*`` methods (a DB session): the open transaction that stored the change
  (the webhook row joins it, the live event follows the commit); without one the event is
  published on its own, after the caller's commit.

Events: ``call_*``, ``groupcall_*``, ``activeflow_*`` with :mod:`voipbin.calls.serialize` bodies.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.calls import serialize
from voipbin.calls.leg import DialTarget
from voipbin.calls.status import FINAL_CALL_STATUSES, ActiveflowStatus, CallOrigin, CallStatus, GroupcallStatus
from voipbin.common.clock import format_ts, utcnow
from voipbin.events.model import Event, EventPublisher
from voipbin.flows.actions import first_action
from voipbin.store.models import Activeflow, Call, Flow, Groupcall
from voipbin.store.pagination import paginate
from voipbin.store.records import owned, soft_delete

#: one destination planned for dialling: (destination, endpoints to ring, is_groupcall)
Plan = tuple[dict[str, str], list[DialTarget], bool]


def new_call(customer_id: str, *, source: dict[str, str], destination: dict[str, str], status: CallStatus,
             direction: CallOrigin, flow_id: str = "", action: dict[str, Any] | None = None, groupcall_id: str = "",
             data: dict[str, Any] | None = None, pod_id: str = "", **extra: Any) -> Call:
    """A new ``calls`` row (not yet added to a session)."""
    return Call(id=str(uuid.uuid4()), customer_id=customer_id, flow_id=flow_id, source=source,
                destination=destination, status=status, direction=direction, action=action or {},
                groupcall_id=groupcall_id, data=dict(data or {}), pod_id=pod_id, **extra)


def new_activeflow(call: Call, flow: Flow) -> Activeflow:
    """The ``running`` activeflow of ``flow`` on ``call`` (sets ``call.activeflow_id``)."""
    start = first_action(flow.actions)
    af = Activeflow(id=str(uuid.uuid4()), customer_id=call.customer_id, flow_id=flow.id, reference_type="call",
                    reference_id=call.id, actions=flow.actions, current_action=start,
                    forward_action_id=start["id"], executed_actions=[], variables={}, status=ActiveflowStatus.RUNNING)
    call.activeflow_id = af.id
    return af


def new_groupcall(customer_id: str, *, flow_id: str, source: dict[str, str], destination: dict[str, str]
                  ) -> Groupcall:
    return Groupcall(id=str(uuid.uuid4()), customer_id=customer_id, flow_id=flow_id, source=source,
                     destinations=[destination], call_ids=[])



def plan_rows(customer_id: str, src: dict[str, str], plans: list[Plan], *, flow_id: str,
              make_call: Callable[[dict[str, str], str, DialTarget | None], Call]
              ) -> tuple[list[tuple[Call, DialTarget | None]], list[Groupcall]]:
    """The rows ``plans`` make (not added to a session): one call per endpoint, built by
    ``make_call(destination, groupcall_id, target)``, and a groupcall per group destination listing
    its calls. Returns ``([(call, target)], groupcalls)`` in the plans' order."""
    out: list[tuple[Call, DialTarget | None]] = []
    groups: list[Groupcall] = []
    for dest, targets, is_group in plans:
        group = new_groupcall(customer_id, flow_id=flow_id, source=src, destination=dest) if is_group else None
        for target in targets or [None]:
            call = make_call(dest, group.id if group else "", target)
            out.append((call, target))
            if group is not None:
                group.call_ids = [*group.call_ids, call.id]
        if group is not None:
            groups.append(group)
    return out, groups

class CallRecords:
    """Reads and writes of call, groupcall and activeflow rows, with their events."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *, pod_id: str = "") -> None:
        self.sessions = sessions
        self._bus = bus
        self._pod_id = pod_id

    # ------------------------------------------------------------------ owned reads (404 otherwise)

    async def call(self, customer_id: str, call_id: str) -> Call:
        async with self.sessions() as db:
            return await owned(db, Call, call_id, customer_id, what="call")

    async def groupcall(self, customer_id: str, groupcall_id: str) -> Groupcall:
        async with self.sessions() as db:
            return await owned(db, Groupcall, groupcall_id, customer_id, what="groupcall")

    async def activeflow(self, customer_id: str, activeflow_id: str) -> Activeflow:
        """An activeflow of ``customer_id``; a deleted one is still returned (``tm_delete`` set)."""
        async with self.sessions() as db:
            return await owned(db, Activeflow, activeflow_id, customer_id, what="activeflow", deleted_ok=True)

    async def list_calls(self, customer_id: str, page_size: int | None, page_token: str | None
                         ) -> tuple[Sequence[Call], str]:
        async with self.sessions() as db:
            stmt = select(Call).where(Call.customer_id == customer_id, Call.tm_delete.is_(None))
            return await paginate(db, stmt, Call, page_size, page_token)

    async def list_groupcalls(self, customer_id: str, page_size: int | None, page_token: str | None
                              ) -> tuple[Sequence[Groupcall], str]:
        async with self.sessions() as db:
            stmt = select(Groupcall).where(Groupcall.customer_id == customer_id, Groupcall.tm_delete.is_(None))
            return await paginate(db, stmt, Groupcall, page_size, page_token)

    async def list_activeflows(self, customer_id: str, page_size: int | None, page_token: str | None
                               ) -> tuple[Sequence[Activeflow], str]:
        async with self.sessions() as db:
            stmt = select(Activeflow).where(Activeflow.customer_id == customer_id)
            return await paginate(db, stmt, Activeflow, page_size, page_token)

    # ------------------------------------------------------------------ creating calls

    async def store_outgoing(self, customer_id: str, flow: Flow, src: dict[str, str], plans: list[Plan]
                             ) -> tuple[list[tuple[Call, DialTarget | None]], list[Groupcall]]:
        """Store one ``dialing`` call (and its activeflow) per endpoint of ``plans``, a groupcall per
        group destination, and ``flow`` when it is not persisted; publish ``*_created`` in that
        transaction. Returns ``([(call, target)], groupcalls)``."""
        def make_call(dest: dict[str, str], groupcall_id: str, target: DialTarget | None) -> Call:
            # before the answer, the call's action is the flow's first (the one it will run)
            return new_call(customer_id, source=src, destination=dest, status=CallStatus.DIALING,
                            direction=CallOrigin.OUTGOING, flow_id=flow.id, action=first_action(flow.actions),
                            groupcall_id=groupcall_id, pod_id=self._pod_id,
                            data={"request_uri": target.request_uri} if target is not None else {})

        out, groupcalls = plan_rows(customer_id, src, plans, flow_id=flow.id, make_call=make_call)
        activeflows = [new_activeflow(call, flow) for call, _ in out]
        async with self.sessions() as db, db.begin():
            if not flow.persist:
                db.add(flow)
            db.add_all(groupcalls)
            db.add_all([call for call, _ in out])
            db.add_all(activeflows)
            await db.flush()
            for group in groupcalls:
                await self.publish_groupcall(group, "groupcall_created", db)
            for (call, _), af in zip(out, activeflows, strict=True):
                await self.publish_call(call, "call_created", db)
                await self.publish_activeflow(af, "activeflow_created", db)
        return out, groupcalls

    async def store_incoming(self, customer_id: str, flow: Flow, *, source: dict[str, str],
                             destination: dict[str, str], data: dict[str, Any] | None) -> Call:
        """Store a ``ringing`` incoming call and its activeflow (and a non-persisted ``flow``); publish."""
        call = new_call(customer_id, source=source, destination=destination, status=CallStatus.RINGING,
                        direction=CallOrigin.INCOMING,
                        flow_id=flow.id, action=flow.actions[0], data=data, pod_id=self._pod_id,
                        tm_ringing=utcnow())
        af = new_activeflow(call, flow)
        async with self.sessions() as db, db.begin():
            if not flow.persist:
                db.add(flow)
            db.add(call)
            db.add(af)
            await db.flush()
            await self.publish_call(call, "call_created", db)
            await self.publish_activeflow(af, "activeflow_created", db)
        return call

    async def store_chained(self, customer_id: str, master_call_id: str, src: dict[str, str], plans: list[Plan]
                            ) -> list[tuple[Call, DialTarget | None]]:
        """Store the calls ``connect`` dials for ``master_call_id`` (no flow of their own, ``master_call_id``
        in their data; groupcalls for group destinations) and add them to the master's
        ``chained_call_ids``; publish ``groupcall_created``, ``call_created``, the master's ``call_updated``."""
        def make_call(dest: dict[str, str], groupcall_id: str, target: DialTarget | None) -> Call:
            data: dict[str, Any] = {"master_call_id": master_call_id}
            if target is not None:
                data["request_uri"] = target.request_uri
            return new_call(customer_id, source=src, destination=dest, status=CallStatus.DIALING,
                            direction=CallOrigin.OUTGOING, groupcall_id=groupcall_id, data=data, pod_id=self._pod_id)

        out, groups = plan_rows(customer_id, src, plans, flow_id="", make_call=make_call)
        async with self.sessions() as db, db.begin():
            db.add_all(groups)
            db.add_all([call for call, _ in out])
            master = await db.get(Call, master_call_id)
            if master is not None:
                chained = list((master.data or {}).get("chained_call_ids", []))
                master.data = {**(master.data or {}), "chained_call_ids": chained + [c.id for c, _ in out]}
                master.tm_update = utcnow()
        for group in groups:
            await self.publish_groupcall(group, "groupcall_created")
        for call, _ in out:
            await self.publish_call(call, "call_created")
        if master is not None:
            await self.publish_call(master, "call_updated")
        return out

    # ------------------------------------------------------------------ changes

    async def update_call(self, call_id: str, event_type: str, **changes: Any) -> Call:
        """Set ``changes`` on the call, stamp ``tm_update``, publish ``event_type``; returns the row."""
        async with self.sessions() as db, db.begin():
            call = await self._change_call(db, call_id, event_type, changes)
        return call

    async def _change_call(self, db: AsyncSession, call_id: str, event_type: str, changes: dict[str, Any]) -> Call:
        """In ``db``'s transaction: set ``changes`` on the call, stamp ``tm_update``, publish ``event_type``."""
        call = await db.get(Call, call_id)
        assert call is not None
        for key, value in changes.items():
            setattr(call, key, value)
        call.tm_update = utcnow()
        await self.publish_call(call, event_type, db)
        return call

    async def call_data(self, call_id: str) -> dict[str, Any]:
        """A copy of the call's internal ``data`` ({} for a missing call)."""
        async with self.sessions() as db:
            row = await db.get(Call, call_id)
        return dict(row.data or {}) if row is not None else {}

    async def delete_call(self, call_id: str) -> Call:
        async with self.sessions() as db, db.begin():
            row = await db.get(Call, call_id)
            assert row is not None
            soft_delete(row)
            await self.publish_call(row, "call_deleted", db)
        return row

    async def set_groupcall_status(self, groupcall_id: str, status: GroupcallStatus, event_type: str) -> Groupcall:
        async with self.sessions() as db, db.begin():
            group = await db.get(Groupcall, groupcall_id)
            assert group is not None
            group.status = status
            group.tm_update = utcnow()
        await self.publish_groupcall(group, event_type)
        return group

    async def delete_groupcall(self, groupcall_id: str) -> Groupcall:
        async with self.sessions() as db, db.begin():
            group = await db.get(Groupcall, groupcall_id)
            assert group is not None
            soft_delete(group)
        await self.publish_groupcall(group, "groupcall_deleted")
        return group

    async def groupcall_answered(self, groupcall_id: str, call_id: str) -> list[str] | None:
        """Record ``call_id`` as the group's answer (the first one only; ``groupcall_progressing``).
        Returns the other calls to hang up (``answer_method`` ``hangup_others``), else None."""
        async with self.sessions() as db, db.begin():
            group = await db.get(Groupcall, groupcall_id)
            assert group is not None
            if group.answer_call_id:
                return None
            group.answer_call_id = call_id
            group.tm_update = utcnow()
            others = [cid for cid in group.call_ids if cid != call_id]
            await self.publish_groupcall(group, "groupcall_progressing", db)
        return others if group.answer_method == "hangup_others" else None

    async def groupcall_member_ended(self, groupcall_id: str) -> None:
        """The group turns ``hangup`` (``groupcall_hangup``) once every call of it has."""
        async with self.sessions() as db, db.begin():
            group = await db.get(Groupcall, groupcall_id)
            assert group is not None
            statuses = (await db.scalars(select(Call.status).where(Call.id.in_(group.call_ids)))).all()
            if group.status == GroupcallStatus.HANGUP or any(s not in FINAL_CALL_STATUSES for s in statuses):
                return
            group.status = GroupcallStatus.HANGUP
            group.tm_update = utcnow()
            await self.publish_groupcall(group, "groupcall_hangup", db)

    # ------------------------------------------------------------------ activeflows

    async def flow_actions(self, activeflow_id: str) -> list[dict[str, Any]]:
        async with self.sessions() as db:
            af = await db.get(Activeflow, activeflow_id)
        return list(af.actions) if af is not None else []

    async def record_action(self, activeflow_id: str, call_id: str, action: dict[str, Any]) -> None:
        """The flow moved to ``action``: store it on the activeflow and the call, publish both."""
        now = utcnow()
        executed = {**action, "tm_execute": format_ts(now)}
        async with self.sessions() as db, db.begin():
            af = await db.get(Activeflow, activeflow_id)
            call = await db.get(Call, call_id)
            assert af is not None and call is not None
            af.current_action = action
            af.forward_action_id = action.get("next_id", "")
            af.executed_actions = [*af.executed_actions, executed]
            af.tm_update = now
            call.action = action
            call.tm_update = now
            await self.publish_activeflow(af, "activeflow_updated", db)
            await self.publish_call(call, "call_updated", db)

    async def action_failed(self, activeflow_id: str, action: dict[str, Any], message: str) -> None:
        """Publish ``activeflow_action_failed``: the activeflow plus
        ``error: {action_id, action_type, message}`` (message cut at 500 characters)."""
        async with self.sessions() as db:
            af = await db.get(Activeflow, activeflow_id)
        if af is None:
            return
        data = {**serialize.activeflow(af), "error": {
            "action_id": action.get("id", ""), "action_type": action.get("type", ""), "message": message[:500]}}
        await self._bus.publish(Event("activeflow_action_failed", af.customer_id, "activeflow", af.id, data))

    async def set_variables(self, activeflow_id: str, values: dict[str, str]) -> None:
        """Merge ``values`` into the activeflow's variables; publishes ``activeflow_updated``."""
        async with self.sessions() as db, db.begin():
            af = await db.get(Activeflow, activeflow_id)
            if af is None:
                return
            af.variables = {**(af.variables or {}), **values}
            af.tm_update = utcnow()
        await self.publish_activeflow(af, "activeflow_updated")

    async def get_variable(self, activeflow_id: str, name: str) -> str:
        async with self.sessions() as db:
            af = await db.get(Activeflow, activeflow_id)
        return str((af.variables or {}).get(name, "")) if af is not None else ""

    async def stop_activeflow(self, activeflow_id: str) -> Activeflow:
        """Status ``ended`` (``activeflow_updated``)."""
        async with self.sessions() as db, db.begin():
            af = await db.get(Activeflow, activeflow_id)
            assert af is not None
            af.status = ActiveflowStatus.ENDED
            af.tm_update = utcnow()
        await self.publish_activeflow(af, "activeflow_updated")
        return af

    async def delete_activeflow(self, activeflow_id: str) -> Activeflow:
        """Soft-delete (``activeflow_deleted``); an already deleted one is returned unchanged."""
        async with self.sessions() as db, db.begin():
            af = await db.get(Activeflow, activeflow_id)
            assert af is not None
            if af.tm_delete is not None:
                return af
            soft_delete(af)
        await self.publish_activeflow(af, "activeflow_deleted")
        return af

    async def hangup_call(self, call_id: str, activeflow_id: str, **changes: Any) -> Call:
        """The call ended: store ``changes`` (status ``hangup``, ``hangup_by``, ...) and end its
        activeflow (``ended`` and deleted, once) in one transaction; publishes ``call_hangup`` then
        ``activeflow_deleted`` in it, so whoever sees ``call_hangup`` finds the activeflow ended."""
        async with self.sessions() as db, db.begin():
            call = await self._change_call(db, call_id, "call_hangup", changes)
            af = await db.get(Activeflow, activeflow_id) if activeflow_id else None
            if af is not None and af.status != ActiveflowStatus.ENDED:
                af.status = ActiveflowStatus.ENDED
                soft_delete(af)
                await self.publish_activeflow(af, "activeflow_deleted", db)
        return call

    # ------------------------------------------------------------------ events

    async def publish_call(self, call: Call, event_type: str, db: AsyncSession | None = None) -> None:
        await self._bus.publish(Event(event_type, call.customer_id, "call", call.id, serialize.call(call)),
                                session=db)

    async def publish_groupcall(self, group: Groupcall, event_type: str, db: AsyncSession | None = None
                                ) -> None:
        await self._bus.publish(Event(event_type, group.customer_id, "groupcall", group.id,
                                      serialize.groupcall(group)), session=db)

    async def publish_activeflow(self, af: Activeflow, event_type: str, db: AsyncSession | None = None
                                 ) -> None:
        await self._bus.publish(Event(event_type, af.customer_id, "activeflow", af.id, serialize.activeflow(af)),
                                session=db)

    async def publish(self, event: Event) -> None:
        await self._bus.publish(event)
