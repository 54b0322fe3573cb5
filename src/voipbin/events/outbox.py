"""The durable webhook outbox: one ``event_outbox`` row per event of a customer with a ``webhook_uri``.

Publishing writes the row (:class:`OutboxBus`); the delivery worker (:mod:`voipbin.events.webhooks`)
claims due rows, sends them and records the outcome here. A row's life::

    pending --claim--> sending --2xx--> delivered
                         |  \\--5xx/timeout/transport error--> pending (backoff) ... --> failed (attempts used up)
                         \\--other status / refused address--> failed (permanent)

A claim is a lease: ``tm_next_attempt`` moves to now + lease, so a row whose worker died is claimed
again once the lease ends (at-least-once delivery). On PostgreSQL claims use
``SELECT ... FOR UPDATE SKIP LOCKED`` so several workers share the table; SQLite serves one process.

Order: the events of one resource (``resource_key``, the event's topic) are delivered in the order
they were written (``seq``): a row is claimed only when no row of the same resource with a lower
``seq`` is still ``pending`` or ``sending``, so a retried event holds back the later ones until it
is delivered or fails for good.

Atomicity: ``OutboxBus.publish(event, session=s)`` inside an open transaction writes the row in that
transaction and publishes on the live bus only after it commits (nothing on rollback), so a crash
or an error between the change and its event can neither lose the webhook nor invent one.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import BigInteger, ColumnElement, event as sa_event, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, aliased
from sqlalchemy.types import Integer, String, Text

from voipbin.common.clock import utcnow
from voipbin.events.model import Event
from voipbin.events.protocol import EventBus, Handler, Subscription
from voipbin.events.retry import Outcome, RetryPolicy
from voipbin.store.models import Customer, OutboxEntry
from voipbin.store.types import UTCDateTime

log = structlog.get_logger(__name__)

PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"
ERROR_MAX_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row claimed for one attempt (``attempt`` counts from 1); ``secret`` signs ``body``."""

    id: str
    customer_id: str
    event_type: str
    method: str
    uri: str
    body: bytes
    attempt: int
    secret: str


@dataclass(frozen=True, slots=True)
class Transition:
    """What an attempt's outcome does to a row: its new status and next due time (None when final)."""

    status: str
    tm_next_attempt: datetime | None


def transition(attempt: int, outcome: Outcome, policy: RetryPolicy, now: datetime,
               rng: random.Random | None = None) -> Transition:
    """The state after attempt number ``attempt`` ended with ``outcome`` (pure; unit-tested)."""
    if outcome is Outcome.DELIVERED:
        return Transition(DELIVERED, None)
    if outcome is Outcome.PERMANENT or policy.gives_up(attempt):
        return Transition(FAILED, None)
    return Transition(PENDING, now + timedelta(seconds=policy.delay(attempt, rng)))


_last_seq = 0


def next_seq() -> int:
    """A strictly increasing number in this process (microseconds since the epoch, bumped on ties)."""
    global _last_seq
    _last_seq = max(time.time_ns() // 1000, _last_seq + 1)
    return _last_seq


def _unblocked() -> ColumnElement[bool]:
    """Rows with no unfinished earlier row of the same resource (rows without a key are never held)."""
    earlier = aliased(OutboxEntry)
    return or_(OutboxEntry.resource_key == "", ~exists().where(
        earlier.resource_key == OutboxEntry.resource_key, earlier.seq < OutboxEntry.seq,
        earlier.status.in_((PENDING, SENDING))))


def webhook_body(event: Event) -> bytes:
    """The exact bytes POSTed (and signed): compact JSON of ``{"type", "data"}``."""
    return json.dumps(event.to_webhook(), separators=(",", ":"), ensure_ascii=False).encode()


class Outbox:
    """Outbox rows in the database behind ``sessions`` (SQLite or PostgreSQL)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, policy: RetryPolicy | None = None,
                 rng: random.Random | None = None) -> None:
        self._sessions = sessions
        self.policy = policy or RetryPolicy()
        self._rng = rng or random.Random()
        self._recorded: list[Callable[[Claimed, str], None]] = []

    def on_recorded(self, listener: Callable[[Claimed, str], None]) -> Callable[[], None]:
        """Call ``listener(claimed, new_status)`` after each recorded attempt (metrics, tests, the
        shutdown drain); returns a function that removes the listener."""
        self._recorded.append(listener)
        return lambda: self._recorded.remove(listener)

    async def enqueue(self, event: Event, db: AsyncSession | None = None) -> bool:
        """Add the event's delivery if its customer has a ``webhook_uri``; True when a row was written.

        One ``INSERT ... SELECT`` (no row for customers without a webhook). With ``db`` (an open
        transaction) the row is part of that transaction; without, it is committed on its own and
        publishing the same event twice writes it once.
        """
        now = utcnow()
        body = webhook_body(event).decode()
        method = func.coalesce(func.nullif(Customer.webhook_method, ""), "POST")
        source = select(
            literal(event.id, String), Customer.id, literal(event.event_type, String), method,
            Customer.webhook_uri, literal(body, Text), literal(PENDING, String), literal(0, Integer),
            literal("", Text), literal(now, UTCDateTime), literal(now, UTCDateTime),
            literal(event.topic, String), literal(next_seq(), BigInteger),
        ).where(Customer.id == event.customer_id, Customer.webhook_uri != "", Customer.tm_delete.is_(None))
        stmt = insert(OutboxEntry).from_select(
            ["id", "customer_id", "event_type", "method", "uri", "body", "status", "attempts", "last_error",
             "tm_next_attempt", "tm_create", "resource_key", "seq"], source)
        if db is not None:
            result = await db.execute(stmt)
            return bool(result.rowcount)  # type: ignore[attr-defined]
        try:
            async with self._sessions() as db, db.begin():
                result = await db.execute(stmt)
        except IntegrityError:
            return False  # already in the outbox
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def claim_due(self, limit: int, lease_seconds: float) -> list[Claimed]:
        """Claim up to ``limit`` due rows (oldest due first) for ``lease_seconds``; counts the attempt.

        Only the oldest unfinished row of each resource is claimable (per-resource order)."""
        now = utcnow()
        async with self._sessions() as db, db.begin():
            rows = (await db.scalars(
                select(OutboxEntry)
                .where(OutboxEntry.status.in_((PENDING, SENDING)), OutboxEntry.tm_next_attempt <= now,
                       _unblocked())
                .order_by(OutboxEntry.tm_next_attempt, OutboxEntry.seq).limit(limit)
                .with_for_update(skip_locked=True))).all()
            if not rows:
                return []
            secrets = dict((await db.execute(
                select(Customer.id, Customer.webhook_secret).where(
                    Customer.id.in_({r.customer_id for r in rows})))).all())
            for row in rows:
                row.status = SENDING
                row.attempts += 1
                row.tm_next_attempt = now + timedelta(seconds=lease_seconds)
                row.tm_update = now
            return [Claimed(r.id, r.customer_id, r.event_type, r.method, r.uri, r.body.encode(), r.attempts,
                            secrets.get(r.customer_id, "")) for r in rows]

    async def record(self, claimed: Claimed, outcome: Outcome, *, status_code: int | None = None,
                     error: str = "") -> str | None:
        """Store the outcome of ``claimed``'s attempt; returns the new status.

        Returns None (and changes nothing) when the lease was lost: another worker claimed the row again.
        """
        now = utcnow()
        step = transition(claimed.attempt, outcome, self.policy, now, self._rng)
        values: dict[str, object] = {
            "status": step.status, "last_status_code": status_code, "last_error": error[:ERROR_MAX_CHARS],
            "tm_update": now, "tm_next_attempt": step.tm_next_attempt or now,
        }
        if step.tm_next_attempt is None:
            values["tm_finish"] = now
        async with self._sessions() as db, db.begin():
            result = await db.execute(update(OutboxEntry).where(
                OutboxEntry.id == claimed.id, OutboxEntry.status == SENDING,
                OutboxEntry.attempts == claimed.attempt).values(**values))
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        for listener in self._recorded:
            listener(claimed, step.status)
        if step.status == FAILED:
            log.warning("webhook delivery failed", event_id=claimed.id, attempts=claimed.attempt,
                        status_code=status_code, error=error)
        return step.status

    async def release_leases(self) -> int:
        """Make every ``sending`` row due now (a single-process deployment at start: no one holds them)."""
        now = utcnow()
        async with self._sessions() as db, db.begin():
            result = await db.execute(update(OutboxEntry).where(OutboxEntry.status == SENDING)
                                           .values(status=PENDING, tm_next_attempt=now, tm_update=now))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def next_due(self) -> datetime | None:
        """The earliest ``tm_next_attempt`` among claimable unfinished rows, or None when there are none."""
        async with self._sessions() as db:
            return await db.scalar(select(func.min(OutboxEntry.tm_next_attempt))
                                        .where(OutboxEntry.status.in_((PENDING, SENDING)), _unblocked()))

    async def unfinished(self) -> int:
        """How many rows are still ``pending`` or ``sending`` (the drain waits for 0)."""
        async with self._sessions() as db:
            return int(await db.scalar(select(func.count()).select_from(OutboxEntry)
                                            .where(OutboxEntry.status.in_((PENDING, SENDING)))) or 0)

    async def get(self, entry_id: str) -> OutboxEntry | None:
        async with self._sessions() as db:
            return await db.get(OutboxEntry, entry_id)

    async def counts(self) -> dict[str, int]:
        """Rows per status."""
        async with self._sessions() as db:
            rows = await db.execute(select(OutboxEntry.status, func.count()).group_by(OutboxEntry.status))
            return {status: int(n) for status, n in rows}


_STAGED = "voipbin.outbox.staged"


class OutboxBus:
    """An :class:`~voipbin.events.protocol.EventBus` that also writes each published event to the outbox.

    This is what the Runtime hands to services as ``runtime.bus``. ``publish(event)`` first makes the
    webhook delivery durable (when the customer has a ``webhook_uri``, in its own transaction), then
    publishes on the inner bus for WebSocket subscribers. ``publish(event, session=s)`` inside an open
    transaction writes the row in that transaction and queues the live publish for after its commit
    (dropped on rollback). Live publishes leave in one FIFO, in the order of their commits, so the
    events of one resource reach subscribers in the order they happened.
    """

    def __init__(self, inner: EventBus, outbox: Outbox) -> None:
        self.inner = inner
        self.outbox = outbox
        self._listeners: list[Handler] = []
        self._fifo: deque[tuple[Event, bool, asyncio.Future[None] | None]] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def on_enqueued(self, listener: Handler) -> None:
        """Call ``listener(event)`` after an event was written to the outbox (wakes the local worker)."""
        self._listeners.append(listener)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.inner.start()

    async def publish(self, event: Event, *, session: AsyncSession | None = None) -> None:
        """Publish ``event``; with ``session``, as part of that open transaction (see the class)."""
        self._loop = asyncio.get_running_loop()
        if session is not None:
            written = await self.outbox.enqueue(event, session)
            session.sync_session.info.setdefault(_STAGED, []).append((self, event, written))
            return
        try:
            written = await self.outbox.enqueue(event)
        except Exception:
            log.exception("outbox write failed; webhook not queued", event_id=event.id, event_type=event.event_type)
            written = False
        done = self._loop.create_future()
        self._push(event, written, done)
        await done

    def _push(self, event: Event, written: bool, done: asyncio.Future[None] | None) -> None:
        self._fifo.append((event, written, done))
        if self._sender is None and self._loop is not None:
            self._sender = self._loop.create_task(self._send())

    async def _send(self) -> None:
        try:
            while self._fifo:
                event, written, done = self._fifo.popleft()
                try:
                    if written:
                        for listener in self._listeners:
                            listener(event)
                    await self.inner.publish(event)
                except Exception:
                    log.exception("live publish failed", event_id=event.id, event_type=event.event_type)
                finally:
                    if done is not None and not done.done():
                        done.set_result(None)
        finally:
            self._sender = None

    async def flush(self) -> None:
        """Wait until every committed event has been handed to the inner bus."""
        while self._sender is not None:
            await asyncio.shield(self._sender)

    async def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        return await self.inner.subscribe(pattern, handler)

    async def close(self) -> None:
        await self.flush()
        await self.inner.close()


@sa_event.listens_for(Session, "after_commit")
def _publish_staged(db: Session) -> None:
    for bus, event, written in db.info.pop(_STAGED, ()):
        bus._push(event, written, None)


@sa_event.listens_for(Session, "after_rollback")
def _drop_staged(db: Session) -> None:
    db.info.pop(_STAGED, None)
