"""In-process event bus (embedded deployment): publish calls every matching subscriber's queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from voipbin.events.model import Event

Handler = Callable[[Event], None]


class MemoryBus:
    """Synchronous fan-out to handlers registered with :meth:`subscribe_all`.

    A handler must not block: it should enqueue and return.
    """

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    async def publish(self, event: Event) -> None:
        for handler in list(self._handlers):
            handler(event)

    def subscribe_all(self, handler: Handler) -> Callable[[], None]:
        """Receive every event; returns a function that unsubscribes."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    def queue(self) -> tuple[asyncio.Queue[Event], Callable[[], None]]:
        """A queue receiving every event from now on, and its unsubscribe function (for tests/tools)."""
        q: asyncio.Queue[Event] = asyncio.Queue()
        return q, self.subscribe_all(q.put_nowait)

    async def close(self) -> None:
        self._handlers.clear()
