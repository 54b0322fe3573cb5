"""The event bus protocol: what a bus implementation provides and what a subscriber hands it.

Kept apart from :mod:`voipbin.events.bus` (which picks an implementation in ``make_bus``) so the
implementations (:mod:`~voipbin.events.memory`, :mod:`~voipbin.events.nats_bus`) depend on the
protocol only, never on the module that chooses between them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from voipbin.events.model import Event

Handler = Callable[[Event], None]
"""A subscriber: called on the event loop for each matching event; must not block."""


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
