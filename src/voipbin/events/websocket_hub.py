"""WebSocket hub: live connections, their topic subscriptions, and fan-out of bus events to them.

No web framework here: the router (``api/routers/ws.py``) authenticates, registers a
:class:`Connection`, feeds it the client's text messages and writes what its queue yields.

Client messages (JSON text)::

    {"type": "subscribe",   "topics": ["customer_id:<id>:call:*", "customer_id:<id>:transcribe"]}
    {"type": "unsubscribe", "topics": ["customer_id:<id>:call:*"]}

There is no acknowledgment (as upstream). A malformed message, a topic of another customer, an
``agent_id`` topic of another agent, or a ``customer_id`` topic without admin/manager permission
closes the connection with 1008 (policy violation). Pushed messages are
``{"event_type", "timestamp", "topic", "data"}``.

Each connection's send queue holds at most ``queue_size`` messages and ``queue_bytes`` bytes
(8 MiB by default; one frame larger than that is still accepted into an empty queue); a consumer too
slow to keep up is disconnected with 1013 (try again later) instead of growing memory. Keepalive (a ping every
10 s, a connection silent for 60 s dropped) is done by the WebSocket server at protocol level:
run uvicorn with :data:`UVICORN_WS_OPTIONS`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import structlog

from voipbin.events.model import Event
from voipbin.events.protocol import EventBus, Subscription
from voipbin.events.topics import ALL_EVENTS, SCOPE_AGENT, SCOPE_CUSTOMER, InvalidTopic, TopicFilter, parse_topic

log = structlog.get_logger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013
PING_INTERVAL_SECONDS = 10.0
IDLE_TIMEOUT_SECONDS = 60.0
SEND_QUEUE_SIZE = 1024
SEND_QUEUE_BYTES = 8 * 1024 * 1024
MAX_TOPICS_PER_CONNECTION = 1000
MAX_MESSAGE_CHARS = 64 * 1024

# Protocol-level keepalive in uvicorn: a ping every 10 s; a connection whose pong has not come
# 50 s after a ping (60 s of silence at most) is closed.
UVICORN_WS_OPTIONS: dict[str, Any] = {
    "ws_ping_interval": PING_INTERVAL_SECONDS,
    "ws_ping_timeout": IDLE_TIMEOUT_SECONDS - PING_INTERVAL_SECONDS,
    "ws_max_size": MAX_MESSAGE_CHARS,
}


class PolicyViolation(Exception):
    """A client message the connection is closed for (1008); the message is the close reason."""


_ids = itertools.count(1)


class FrameQueue(asyncio.Queue[str]):
    """A queue of text frames that also counts the bytes it holds (``nbytes``).

    Frames are ASCII JSON (``json.dumps`` escapes the rest), so a frame's length is its size in bytes.
    """

    nbytes = 0

    def _put(self, item: str) -> None:
        self.nbytes += len(item)
        super()._put(item)  # type: ignore[misc]

    def _get(self) -> str:
        item: str = super()._get()  # type: ignore[misc]
        self.nbytes -= len(item)
        return item


@dataclass(eq=False)
class Connection:
    """One client. ``queue`` yields the JSON text frames to send; ``closed`` is set when it must go."""

    customer_id: str
    agent_id: str | None
    customer_scope_allowed: bool
    queue: FrameQueue
    max_bytes: int = SEND_QUEUE_BYTES
    id: int = field(default_factory=lambda: next(_ids))
    filters: set[TopicFilter] = field(default_factory=set)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    close_reason: str = ""

    def offer(self, text: str) -> bool:
        """Queue one frame; a full queue (frames or bytes) disconnects the connection (1013).
        False when not queued."""
        if self.closed.is_set():
            return False
        try:
            if self.queue.nbytes and self.queue.nbytes + len(text) > self.max_bytes:
                raise asyncio.QueueFull
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.kick(CLOSE_TRY_AGAIN_LATER, "send queue full: consumer too slow")
            return False
        return True

    def kick(self, code: int, reason: str) -> None:
        """Ask the connection's owner to close it with ``code`` (first call wins)."""
        if not self.closed.is_set():
            self.close_code, self.close_reason = code, reason[:120]
            self.closed.set()

    def match(self, event: Event) -> str | None:
        """The topic of ``event`` the connection subscribed to, or None."""
        for topic_filter in self.filters:
            topic = topic_filter.match(event)
            if topic is not None:
                return topic
        return None


class WebSocketHub:
    """The registry of connections of this process, fed by one bus subscription to every event."""

    def __init__(self, bus: EventBus, *, queue_size: int = SEND_QUEUE_SIZE,
                 queue_bytes: int = SEND_QUEUE_BYTES) -> None:
        self._bus = bus
        self.queue_size = queue_size
        self.queue_bytes = queue_bytes
        self._subscription: Subscription | None = None
        self._connections: set[Connection] = set()
        self._by_customer: dict[str, set[Connection]] = defaultdict(set)
        self._by_agent: dict[str, set[Connection]] = defaultdict(set)
        self.stats: dict[str, int] = {"events": 0, "deliveries": 0, "slow_consumer_drops": 0}

    async def start(self) -> None:
        if self._subscription is None:
            self._subscription = await self._bus.subscribe(ALL_EVENTS, self.dispatch)

    async def stop(self) -> None:
        sub, self._subscription = self._subscription, None
        if sub is not None:
            await sub.unsubscribe()
        for conn in list(self._connections):
            conn.kick(CLOSE_GOING_AWAY, "server shutting down")

    @property
    def connections(self) -> frozenset[Connection]:
        return frozenset(self._connections)

    def connect(self, customer_id: str, *, agent_id: str | None = None,
                customer_scope_allowed: bool = True) -> Connection:
        """Register a new connection of an authenticated caller."""
        conn = Connection(customer_id, agent_id, customer_scope_allowed, FrameQueue(self.queue_size),
                          max_bytes=self.queue_bytes)
        self._connections.add(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        """Forget ``conn`` and its subscriptions (idempotent)."""
        self._connections.discard(conn)
        for topic_filter in conn.filters:
            index = self._index_of(topic_filter)
            index.get(topic_filter.scope_id, set()).discard(conn)
            if not index.get(topic_filter.scope_id, True):
                del index[topic_filter.scope_id]
        conn.filters.clear()
        conn.kick(CLOSE_GOING_AWAY, "disconnected")

    def handle_message(self, conn: Connection, text: str) -> None:
        """Apply one client message. Raises PolicyViolation (close 1008) on a bad or forbidden one."""
        try:
            message = json.loads(text)
        except ValueError:
            raise PolicyViolation("message must be JSON") from None
        if not isinstance(message, dict):
            raise PolicyViolation("message must be a JSON object")
        kind, topics = message.get("type"), message.get("topics")
        if kind not in ("subscribe", "unsubscribe"):
            raise PolicyViolation("type must be subscribe or unsubscribe")
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise PolicyViolation("topics must be an array of strings")
        try:
            filters = [parse_topic(t) for t in topics]
        except InvalidTopic as exc:
            raise PolicyViolation(str(exc)) from None
        for topic_filter in filters:
            self._authorize(conn, topic_filter)
        if kind == "subscribe":
            self.subscribe(conn, filters)
        else:
            self.unsubscribe(conn, filters)

    @staticmethod
    def _authorize(conn: Connection, topic_filter: TopicFilter) -> None:
        if topic_filter.scope == SCOPE_CUSTOMER:
            if topic_filter.scope_id != conn.customer_id:
                raise PolicyViolation("topic of another customer")
            if not conn.customer_scope_allowed:
                raise PolicyViolation("customer_id topics need admin or manager permission")
        elif topic_filter.scope == SCOPE_AGENT and topic_filter.scope_id != conn.agent_id:
            raise PolicyViolation("agent_id topic of another agent")

    def subscribe(self, conn: Connection, filters: list[TopicFilter]) -> None:
        if len(conn.filters | set(filters)) > MAX_TOPICS_PER_CONNECTION:
            raise PolicyViolation(f"at most {MAX_TOPICS_PER_CONNECTION} topics per connection")
        for topic_filter in filters:
            if topic_filter not in conn.filters:
                conn.filters.add(topic_filter)
                self._index(conn, topic_filter)

    def unsubscribe(self, conn: Connection, filters: list[TopicFilter]) -> None:
        for topic_filter in filters:
            if topic_filter in conn.filters:
                conn.filters.discard(topic_filter)
                self._unindex(conn, topic_filter)

    def _index_of(self, topic_filter: TopicFilter) -> dict[str, set[Connection]]:
        return self._by_customer if topic_filter.scope == SCOPE_CUSTOMER else self._by_agent

    def _index(self, conn: Connection, topic_filter: TopicFilter) -> None:
        self._index_of(topic_filter)[topic_filter.scope_id].add(conn)

    def _unindex(self, conn: Connection, topic_filter: TopicFilter) -> None:
        index = self._index_of(topic_filter)
        if not any(f.scope == topic_filter.scope and f.scope_id == topic_filter.scope_id for f in conn.filters):
            index[topic_filter.scope_id].discard(conn)
            if not index[topic_filter.scope_id]:
                del index[topic_filter.scope_id]

    def dispatch(self, event: Event) -> int:
        """Queue ``event`` on every subscribed connection (a bus handler); returns how many got it."""
        self.stats["events"] += 1
        candidates = set(self._by_customer.get(event.customer_id, ()))
        for agent_id in event.agent_ids:
            candidates |= self._by_agent.get(agent_id, set())
        if not candidates:
            return 0
        frames: dict[str, str] = {}
        delivered = 0
        for conn in candidates:
            topic = conn.match(event)
            if topic is None:
                continue
            frame = frames.get(topic)
            if frame is None:
                frame = frames[topic] = json.dumps(event.to_websocket(topic), separators=(",", ":"))
            if conn.offer(frame):
                delivered += 1
            elif conn.close_code == CLOSE_TRY_AGAIN_LATER:
                self.stats["slow_consumer_drops"] += 1
                log.warning("websocket consumer too slow, disconnecting", customer_id=conn.customer_id,
                            queued_frames=conn.queue.qsize(), queued_bytes=conn.queue.nbytes)
                self.disconnect(conn)
        self.stats["deliveries"] += delivered
        return delivered
