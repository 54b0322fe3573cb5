"""Conferences: rooms whose participants (calls) hear each other (``/v1.0/conferences``,
``/v1.0/conferencecalls``, the ``conference_join`` / ``confbridge_join`` flow actions).

Lifecycle (upstream ``conference_overview``): ``POST /conferences`` stores the room ``starting``
and makes it ``progressing`` before it returns. ``DELETE`` (or the ``timeout``) makes it
``terminating``: its speakings and transcribes stop, every participant is released (its call goes
on with the next action of its flow, as upstream), then ``terminated`` (``tm_end``) and deleted.
A ``connect`` room takes two participants; when one leaves, the other is released and the room
terminates.

A participant joins through the flow action: ``joining`` (the room's ``pre_flow_id`` runs on the
call), ``joined`` (audio connected), then, on hangup, ``DELETE /conferencecalls/{id}`` or the
room ending, ``leaving`` → ``leaved``; the room's ``post_flow_id`` runs on a call that is still
up, then the call's own flow goes on. Joining a conference that is missing, another customer's
or not ``progressing``, or with a call already in a room, fails with an error naming the field
(a 400/404 when ``POST /calls`` carries the action; ``activeflow_action_failed`` for a flow of a
number or a stored flow) and leaves the call as it was.

Scale-out (issue 19): a conference lives on one media pod, the one whose ``pod_id`` its row
carries (where ``POST /conferences`` was placed); its room is mixed there, its ``timeout`` timer
runs there, and the API routes its commands there (``POST /calls`` with an inline
``conference_join`` is placed on that pod, so its call is local). A call held by another live pod
(a phone's or a trunk's call that Kamailio gave to that pod) joins through a **pod leg**
(:mod:`voipbin.pods.legs`): its pod writes the ``joining`` conferencecall (reference_id = the
call), runs the room's pre-flow on the call, then places a SIP leg to the room's pod, which checks
the participant, answers and mixes the leg as that call (:meth:`take_pod_leg`); the holding pod
bridges the call's RTP to the leg (:class:`~voipbin.calls.bridge.Bridge`, hold and mute applied
there). Either side ending ends both: the call's hangup BYEs the leg, a kick or the room ending
BYEs it from the room's pod (the call goes on with its flow, post-flow first). Both pods close the
conferencecall (whichever comes second changes nothing), so the leave is recorded even when the
room's pod went away: the leg's RTP stops (none for the pod expiry), a BYE or the INVITE goes
unanswered; the call's pod then closes the row and the call goes on with its flow as after a kick,
also when another pod took the room over before restart recovery reaped the dead one. Cost: one extra RTP hop per remote participant (see
:mod:`voipbin.pods.legs`). Without SIP between pods (no pod legs) such a join fails (400 naming
``option.conference_id``) instead of opening a second, silent room. A conference whose pod died
is taken over by the first pod that joins a call to it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.calls.actions.base import CallControl
from voipbin.calls.bridge import Bridge
from voipbin.calls.live import LiveCall
from voipbin.common.clock import new_id, utcnow
from voipbin.common.errors import InvalidArgument, NotFound
from voipbin.conferences.records import ConferenceRecords
from voipbin.conferences.room import Participant, Room
from voipbin.conferences.status import ConferencecallStatus, ConferenceStatus, ConferenceType
from voipbin.events.model import EventPublisher
from voipbin.pods.legs import PodLeg, PodLegFailed, PodLegs
from voipbin.store.models import Conference, Conferencecall

log = structlog.get_logger(__name__)

#: how long a terminating room waits for its participants to leave
RELEASE_TIMEOUT_S = 10.0

EndListener = Callable[[str, str], Awaitable[None]]


class ConferenceService:
    """Conference rows and the rooms of this process; implements the flow actions' ``ConferenceControl``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], bus: EventPublisher, *, pod_id: str,
                 release_timeout_s: float = RELEASE_TIMEOUT_S,
                 pod_alive: Callable[[str], Awaitable[bool]] | None = None) -> None:
        """``pod_alive(pod_id)``: whether another pod is live (scale-out); None in one process."""
        self.records = ConferenceRecords(sessions, bus, pod_id=pod_id)
        self._pod_id = pod_id
        self._pod_alive = pod_alive
        self._pod_legs: PodLegs | None = None
        self._release_timeout_s = release_timeout_s
        self._rooms: dict[str, Room] = {}
        self._room_of_call: dict[str, str] = {}
        self._left: dict[str, asyncio.Event] = {}  # conferencecall id -> set once it is leaved
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._ending: dict[str, asyncio.Task[None]] = {}
        self._end_listeners: list[EndListener] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def use_pod_legs(self, legs: PodLegs) -> None:
        """Join calls to rooms of other live pods through ``legs``, and take the legs of other pods' calls."""
        self._pod_legs = legs
        legs.take = self.take_pod_leg

    def add_end_listener(self, listener: EndListener) -> None:
        """Await ``listener(customer_id, conference_id)`` when a room starts terminating (its
        speakings and transcribes stop there, before participants are released)."""
        self._end_listeners.append(listener)

    # ------------------------------------------------------------------ API operations

    async def create(self, customer_id: str, body: dict[str, Any]) -> Conference:
        """``POST /conferences``: the room, ``progressing``. InvalidArgument (400) naming a bad field."""
        row = await self.records.create(customer_id, body)
        self._arm_timeout(row)
        return row

    async def get(self, customer_id: str, conference_id: str) -> Conference:
        return await self.records.get(customer_id, conference_id)

    async def list(self, customer_id: str, page_size: int | None, page_token: str | None
                   ) -> tuple[Sequence[Conference], str]:
        return await self.records.list(customer_id, page_size, page_token)

    async def update(self, customer_id: str, conference_id: str, body: dict[str, Any]) -> Conference:
        """``PUT /conferences/{id}``; a new ``timeout`` counts from the room's creation."""
        row = await self.records.update(customer_id, conference_id, body)
        if row.status in (ConferenceStatus.STARTING, ConferenceStatus.PROGRESSING):
            self._arm_timeout(row)
        return row

    async def delete(self, customer_id: str, conference_id: str) -> Conference:
        """``DELETE /conferences/{id}``: terminate (participants released), then ``conference_deleted``."""
        row = await self.records.get(customer_id, conference_id)
        await self.terminate(row.id)
        return await self.records.soft_delete(row.id)

    async def get_conferencecall(self, customer_id: str, conferencecall_id: str) -> Conferencecall:
        return await self.records.conferencecall(customer_id, conferencecall_id)

    async def list_conferencecalls(self, customer_id: str, page_size: int | None, page_token: str | None,
                                   conference_id: str | None = None) -> tuple[Sequence[Conferencecall], str]:
        return await self.records.list_conferencecalls(customer_id, page_size, page_token, conference_id)

    async def kick(self, customer_id: str, conferencecall_id: str) -> Conferencecall:
        """``DELETE /conferencecalls/{id}``: the participant leaves (its call goes on with its flow);
        returns it ``leaved``. One ``leaving`` or ``leaved`` already is returned as it is, nothing
        changed or published (upstream ``conference_tutorial``: "a no-op: it returns 200 with the
        conferencecall's current (unchanged) state rather than an error"). NotFound (404) for a
        missing or foreign one."""
        row = await self.records.conferencecall(customer_id, conferencecall_id)
        if row.status not in (ConferencecallStatus.JOINING, ConferencecallStatus.JOINED):
            return row
        room = self._rooms.get(row.conference_id)
        participant = room.participants.get(row.reference_id) if room is not None else None
        left = self._left.get(row.id)
        if participant is not None and left is not None:
            participant.released.set()
            await left.wait()
        elif left is None:  # nobody in this process holds it (its process died): close the row
            await self.records.close_conferencecall(row.conference_id, row.id)
        else:  # still joining (its pre-flow runs): it will not connect
            room.joining.pop(row.reference_id, None)  # type: ignore[union-attr]
            await left.wait()
        return await self.records.conferencecall(customer_id, conferencecall_id)

    # ------------------------------------------------------------------ rooms (speakings, transcribes)

    async def room(self, customer_id: str, conference_id: str, *, field: str = "reference_id") -> Room:
        """The live room of a ``progressing`` conference of ``customer_id`` (made on first use).

        Raises NotFound (404) for a missing or foreign conference, InvalidArgument (400, naming
        ``field``) for one that is not progressing."""
        return self._open_room(await self.records.get(customer_id, conference_id), field)

    def _open_room(self, row: Conference, field: str) -> Room:
        """The room of ``row`` if it is progressing (made on first use), else InvalidArgument naming ``field``."""
        if row.status != ConferenceStatus.PROGRESSING or row.id in self._ending:
            raise InvalidArgument(f"{field}: the conference is {row.status}, not progressing", field=field)
        return self._room(row)

    def live_room(self, conference_id: str) -> Room | None:
        """The room of ``conference_id`` mixed in this process, if it is open."""
        room = self._rooms.get(conference_id)
        return None if room is None or room.closed or conference_id in self._ending else room

    def _room(self, row: Conference) -> Room:
        room = self._rooms.get(row.id)
        if room is None:
            room = self._rooms[row.id] = Room(row.id, row.customer_id, row.type)
        return room

    # ------------------------------------------------------------------ ConferenceControl (flow actions)

    async def check_join(self, customer_id: str, conference_id: str, field: str) -> None:
        """A ``conference_join`` of ``POST /calls``: the conference must be this account's and
        progressing. NotFound (404) / InvalidArgument (400) naming ``field``."""
        try:
            row = await self.records.get(customer_id, str(uuid.UUID(conference_id)))
        except (ValueError, NotFound) as exc:
            raise NotFound(f"{field}: conference {conference_id} not found", field=field) from exc
        if row.status != ConferenceStatus.PROGRESSING:
            raise InvalidArgument(f"{field}: the conference is {row.status}, not progressing", field=field)

    async def join(self, control: CallControl, call: LiveCall, conference_id: str) -> None:
        """Run ``call`` (answered) through the room until it leaves; see the module docstring.

        Raises NotFound / InvalidArgument (field ``option.conference_id``) before anything changes."""
        field = "option.conference_id"
        conference = await self.records.get(call.customer_id, conference_id)
        remote = await self._check_pod(conference, field)
        if remote:
            await self._join_remote(control, call, conference, remote)
            return
        # from here to the reservation below nothing awaits: two joins cannot both pass the checks
        if call.call_id in self._room_of_call:
            raise InvalidArgument(f"{field}: the call is already in conference {self._room_of_call[call.call_id]}",
                                  field=field)
        room = self._open_room(conference, field)
        if room.kind == ConferenceType.CONNECT and len(room) >= 2:
            raise InvalidArgument(f"{field}: a connect conference takes two participants", field=field)
        media = call.leg.media if call.leg is not None else None
        if media is None:
            raise InvalidArgument(f"{field}: the call has no media (not answered)", field=field)
        self._room_of_call[call.call_id] = room.conference_id
        cc_id = new_id()  # known before the row is written: a hangup at any point still closes it
        room.joining[call.call_id] = cc_id
        left = self._left[cc_id] = asyncio.Event()
        try:
            await self.records.new_conferencecall(conference, call.call_id, call.activeflow_id, conferencecall_id=cc_id)
            if conference.pre_flow_id:
                await control.run_flow(call, conference.pre_flow_id)
            if call.call_id in room.joining and not room.closed and not call.ended.is_set():
                participant = Participant(cc_id, call.call_id, media, call.controls)
                room.connect(participant)
                await self.records.move_conferencecall(cc_id, ConferencecallStatus.JOINED)
                await _first_of(call.ended, participant.released)
        finally:
            room.disconnect(call.call_id)
            self._room_of_call.pop(call.call_id, None)
            leaving = self._spawn(self._leave(room, cc_id, left))
        await asyncio.shield(leaving)
        if conference.post_flow_id and not call.ended.is_set():
            await control.run_flow(call, conference.post_flow_id)

    async def _check_pod(self, conference: Conference, field: str) -> str:
        """``""`` when the room is mixed here (one held by a dead pod is taken over here), else the
        live pod that mixes it, joined through a pod leg. Without pod legs such a join is an
        InvalidArgument naming ``field`` and both pods (see the module docstring)."""
        holder = conference.pod_id
        if self._pod_alive is None or holder in ("", self._pod_id):
            return ""
        if await self._pod_alive(holder):
            if self._pod_legs is not None:
                return holder
            raise InvalidArgument(f"{field}: conference {conference.id} is mixed on pod {holder} and this call is "
                                  f"held by pod {self._pod_id}; this pod has no SIP leg to it", field=field)
        if not await self.records.claim(conference.id, holder):
            return await self._check_pod(await self.records.get(conference.customer_id, conference.id), field)
        conference.pod_id = self._pod_id
        self._arm_timeout(conference)
        return ""

    async def _join_remote(self, control: CallControl, call: LiveCall, conference: Conference, pod_id: str) -> None:
        """``call`` (held here) joins the room mixed on ``pod_id`` through a pod leg, until either
        ends; then it leaves (:meth:`_leave_remote`) and the post-flow runs, as after a kick.
        InvalidArgument naming ``option.conference_id`` when the room's pod refuses the leg (its row
        closed, the call as it was); a leg it does not answer at all (the pod went away) is a leave."""
        field = "option.conference_id"
        assert self._pod_legs is not None
        if call.call_id in self._room_of_call:
            raise InvalidArgument(f"{field}: the call is already in conference {self._room_of_call[call.call_id]}",
                                  field=field)
        if conference.status != ConferenceStatus.PROGRESSING:
            raise InvalidArgument(f"{field}: the conference is {conference.status}, not progressing", field=field)
        media = call.leg.media if call.leg is not None else None
        if media is None:
            raise InvalidArgument(f"{field}: the call has no media (not answered)", field=field)
        self._room_of_call[call.call_id] = conference.id
        cc_id = new_id()
        leg: PodLeg | None = None
        bridge: Bridge | None = None
        leaving: asyncio.Task[None] | None = None
        written = False
        try:
            await self.records.new_conferencecall(conference, call.call_id, call.activeflow_id, conferencecall_id=cc_id)
            written = True
            if conference.pre_flow_id:
                await control.run_flow(call, conference.pre_flow_id)
            if call.ended.is_set():
                return
            try:
                leg = await self._pod_legs.dial(pod_id, conference.id, cc_id)
            except PodLegFailed as exc:
                if exc.status is not None:  # the room's pod refused it: the join failed
                    written = False
                    if await self._close_if_joining(conference.id, cc_id):
                        raise InvalidArgument(f"{field}: conference {conference.id} is mixed on pod {pod_id}, which "
                                              f"did not take this call's leg: {exc}", field=field) from None
                    return  # kicked, or the room ended, while the pre-flow ran: the flow goes on
                # no SIP address, no answer: the room's pod went away; the call leaves as below
                log.warning("the room's pod did not answer the pod leg; the call leaves the room",
                            conference_id=conference.id, pod_id=pod_id, reason=str(exc))
            else:
                controls = call.controls
                bridge = Bridge(media, leg.media, a_sends=lambda: controls is None or controls.sends_to_peer,
                                a_hears=lambda: controls is None or controls.hears_peer)
                await _first_of(call.ended, leg.ended)
        finally:
            if bridge is not None:
                bridge.close()
            self._room_of_call.pop(call.call_id, None)
            if written:
                leaving = self._spawn(self._leave_remote(conference.id, cc_id, leg))
        if leaving is not None:
            await asyncio.shield(leaving)
        if conference.post_flow_id and not call.ended.is_set():
            await control.run_flow(call, conference.post_flow_id)

    async def _leave_remote(self, conference_id: str, conferencecall_id: str, leg: PodLeg | None) -> None:
        """The call's side of a pod leg's leave: the leg is hung up (BYE) if still up (the call
        ended), then the participant is closed here as a local leave closes it (``leaving``,
        ``leaved``, out of ``conferencecall_ids``). The room's pod closes it too on the BYE it gets
        or sends (a kick, the room ending); closing it here as well makes the leave certain when that
        pod went away (the leg's RTP stopped, a BYE or INVITE went unanswered) and a live pod took the
        room over before restart recovery reaped the dead one, which then no longer sees the room as
        dead. Whichever close comes second changes nothing (:meth:`ConferenceRecords.close_conferencecall`)."""
        if leg is not None and not leg.ended.is_set():
            await leg.hangup()
        await self.records.close_conferencecall(conference_id, conferencecall_id)

    async def _close_if_joining(self, conference_id: str, conferencecall_id: str) -> bool:
        """Close a participant whose pod leg never connected, unless the room's pod closed it already
        (a kick, the room ending); True when it was closed here."""
        row = await self.records.load_conferencecall(conferencecall_id)
        if row is None or row.status != ConferencecallStatus.JOINING:
            return False
        return await self.records.close_conferencecall(conference_id, conferencecall_id)

    async def take_pod_leg(self, conference_id: str, conferencecall_id: str,
                           answer: Callable[[], Awaitable[PodLeg]]) -> None:
        """The room's side of a pod leg (:meth:`PodLegs.on_invite <voipbin.pods.legs.PodLegs.on_invite>`):
        ``conferencecall_id`` must be ``joining`` ``conference_id``, a progressing conference mixed
        here (NotFound / InvalidArgument otherwise, before ``answer``). Answers, mixes the leg as
        the conferencecall's call and returns; the participant leaves when the leg ends (the call's
        pod hung up) or is released (kick, the room ending: the leg is hung up), as a local one."""
        field = "conference_id"
        cc = await self.records.load_conferencecall(conferencecall_id)
        conference = await self.records.load(conference_id)
        if (cc is None or conference is None or cc.conference_id != conference_id
                or cc.status != ConferencecallStatus.JOINING or conference.pod_id != self._pod_id):
            raise NotFound(f"no participant {conferencecall_id} joining a conference mixed on pod {self._pod_id}")
        call_id = cc.reference_id
        if call_id in self._room_of_call:
            raise InvalidArgument(f"the call is already in conference {self._room_of_call[call_id]}", field=field)
        room = self._open_room(conference, field)
        if room.kind == ConferenceType.CONNECT and len(room) >= 2:
            raise InvalidArgument("a connect conference takes two participants", field=field)
        self._room_of_call[call_id] = conference_id
        room.joining[call_id] = conferencecall_id
        left = self._left[conferencecall_id] = asyncio.Event()
        try:
            leg = await answer()
        except BaseException:
            room.joining.pop(call_id, None)
            self._room_of_call.pop(call_id, None)
            self._left.pop(conferencecall_id, None)
            left.set()
            raise
        if call_id not in room.joining or room.closed or leg.ended.is_set():  # kicked or ended meanwhile
            participant = None
        else:
            participant = Participant(conferencecall_id, call_id, leg.media)
            room.connect(participant)
        self._spawn(self._keep_pod_leg(room, conferencecall_id, call_id, leg, participant, left))

    async def _keep_pod_leg(self, room: Room, conferencecall_id: str, call_id: str, leg: PodLeg,
                            participant: Participant | None, left: asyncio.Event) -> None:
        try:
            if participant is not None:
                await self.records.move_conferencecall(conferencecall_id, ConferencecallStatus.JOINED)
                await _first_of(leg.ended, participant.released)
        finally:
            room.disconnect(call_id)
            self._room_of_call.pop(call_id, None)
            if not leg.ended.is_set():
                await leg.hangup()
            await self._leave(room, conferencecall_id, left)

    async def on_call_end(self, customer_id: str, call_id: str) -> None:
        """Call end listener: the call's audio leaves its room at once (before its media closes)."""
        conference_id = self._room_of_call.get(call_id)
        room = self._rooms.get(conference_id) if conference_id else None
        if room is not None:
            room.disconnect(call_id)

    async def _leave(self, room: Room, conferencecall_id: str, left: asyncio.Event) -> None:
        """``leaving`` → ``leaved``, out of ``conferencecall_ids``; a ``connect`` room then releases
        the other party and, once empty, terminates. Nothing for a participant whose row was never written."""
        written = False
        try:
            written = await self.records.close_conferencecall(room.conference_id, conferencecall_id)
        finally:
            self._left.pop(conferencecall_id, None)
            left.set()
        if room.kind == ConferenceType.CONNECT and written:
            room.release_all()
            if not len(room) and room.conference_id not in self._ending:
                self._spawn(self.terminate(room.conference_id))

    # ------------------------------------------------------------------ terminating

    async def terminate(self, conference_id: str) -> None:
        """End a room (once; concurrent callers await the same end). See the module docstring."""
        task = self._ending.get(conference_id)
        if task is None:
            task = self._ending[conference_id] = asyncio.get_running_loop().create_task(self._terminate(conference_id))
            task.add_done_callback(lambda _: self._ending.pop(conference_id, None))
        await asyncio.shield(task)

    async def _terminate(self, conference_id: str) -> None:
        timer = self._timers.pop(conference_id, None)
        if timer is not None:
            timer.cancel()
        row = await self.records.load(conference_id)
        if row is None or row.status == ConferenceStatus.TERMINATED:
            return
        await self.records.change(conference_id, "conference_updated", status=ConferenceStatus.TERMINATING)
        for listener in self._end_listeners:
            try:
                await listener(row.customer_id, conference_id)
            except Exception:
                log.exception("conference end listener failed", conference_id=conference_id)
        room = self._rooms.pop(conference_id, None)
        if room is not None:
            waits = [self._left[p.conferencecall_id].wait() for p in room.participants.values()
                     if p.conferencecall_id in self._left]
            waits += [self._left[cc].wait() for cc in room.joining.values() if cc in self._left]
            room.joining.clear()  # a participant still in its pre-flow will not connect
            room.release_all()
            try:
                async with asyncio.timeout(self._release_timeout_s):
                    await asyncio.gather(*waits)
            except TimeoutError:
                log.warning("participants did not leave in time", conference_id=conference_id)
            room.close()
        await self.records.change(conference_id, "conference_updated", status=ConferenceStatus.TERMINATED)

    def _arm_timeout(self, row: Conference) -> None:
        """(Re)start the room's ``timeout`` timer, counted from its creation."""
        old = self._timers.pop(row.id, None)
        if old is not None:
            old.cancel()
        if not row.timeout:
            return
        loop = asyncio.get_running_loop()
        age = max(0.0, (utcnow() - row.tm_create).total_seconds())
        delay = max(0.0, row.timeout - age)
        self._timers[row.id] = loop.call_later(delay, lambda: self._spawn(self.terminate(row.id)))

    async def close(self) -> None:
        """Process shutdown: timers cancelled, rooms closed (their calls are being hung up)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for room in list(self._rooms.values()):
            room.release_all()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for room in list(self._rooms.values()):
            room.close()
        self._rooms.clear()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
