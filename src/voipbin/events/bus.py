"""The event bus seam: publish events, subscribe handlers to topic patterns.

Two implementations share the protocol (:class:`~voipbin.events.protocol.EventBus`, import it from
there) and one test suite:

* :class:`~voipbin.events.memory.MemoryBus` (``memory://``): in-process, the embedded default.
* :class:`~voipbin.events.nats_bus.NatsBus` (``nats://host:port``): processes on different machines
  (API, media, worker) see the same events.

Patterns are topic filters (:mod:`voipbin.events.topics`);
:data:`~voipbin.events.topics.ALL_EVENTS` (``customer_id:*``) matches everything. Handlers are plain callables run on the event loop; they must not block
(enqueue and return). A handler that raises is logged and does not affect other subscribers.
"""

from __future__ import annotations

import asyncio

from voipbin.events.memory import MemoryBus
from voipbin.events.model import Event
from voipbin.events.protocol import EventBus, Subscription
from voipbin.events.topics import ALL_EVENTS

__all__ = ["event_queue", "make_bus"]


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
        return MemoryBus()
    if url.startswith(("nats://", "tls://")):
        from voipbin.events.nats_bus import NatsBus  # the NATS client is loaded only when used

        return NatsBus(url)
    raise ValueError(f"bus_url must be memory:// or nats://host:port, not {url!r}")
