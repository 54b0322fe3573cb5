"""The event bus seam: publish events, subscribe handlers to topic patterns.

Two implementations share this protocol and one test suite:

* :class:`~voipbin.events.memory.MemoryBus` (``memory://``): in-process, the embedded default.
* :class:`~voipbin.events.nats_bus.NatsBus` (``nats://host:port``): processes on different machines
  (API, media, worker) see the same events.

Patterns are topic filters (:mod:`voipbin.events.topics`); :data:`ALL_EVENTS` (``customer_id:*``)
matches everything. Handlers are plain callables run on the event loop; they must not block
(enqueue and return). A handler that raises is logged and does not affect other subscribers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from voipbin.events.model import Event
from voipbin.events.topics import ALL_EVENTS

Handler = Callable[[Event], None]

__all__ = ["ALL_EVENTS", "EventBus", "Handler", "Subscription", "event_queue", "make_bus"]


class Subscription(Protocol):
    """A live subscription; ``unsubscribe`` is idempotent."""

    async def unsubscribe(self) -> None: ...


class EventBus(Protocol):
    """Publish/subscribe of :class:`Event`. ``start`` before use, ``close`` at the end."""

    async def start(self) -> None: ...

    async def publish(self, event: Event) -> None: ...

    async def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Call ``handler`` for every event matching ``pattern`` published from now on.

        Raises :class:`~voipbin.events.topics.InvalidTopic` for a malformed pattern.
        """
        ...

    async def close(self) -> None: ...


async def event_queue(bus: EventBus, pattern: str = ALL_EVENTS,
                      maxsize: int = 0) -> tuple[asyncio.Queue[Event], Subscription]:
    """A queue receiving every event matching ``pattern`` from now on (tests, tools, the bench)."""
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
    return queue, await bus.subscribe(pattern, queue.put_nowait)


def make_bus(url: str) -> EventBus:
    """The bus for ``Settings.bus_url``: ``memory://`` or ``nats://host:port[,nats://...]``.

    Raises ValueError for another scheme. Nothing connects until ``start()``.
    """
    if url in ("", "memory", "memory://") or url.startswith("memory://"):
        from voipbin.events.memory import MemoryBus

        return MemoryBus()
    if url.startswith(("nats://", "tls://")):
        from voipbin.events.nats_bus import NatsBus

        return NatsBus(url)
    raise ValueError(f"bus_url must be memory:// or nats://host:port, not {url!r}")
