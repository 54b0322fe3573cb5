"""The bus events of one customer, as tests read them: in publish order, awaiting the next match."""

from __future__ import annotations

import asyncio
from typing import Any

from voipbin.events.model import Event


class Events:
    """``next(type, resource_id, where=..., **data)`` awaits the next matching event (``timeout``
    seconds, default the one given at construction); every event read is kept in ``seen``."""

    def __init__(self, queue: asyncio.Queue[Event], timeout: float = 15) -> None:
        self.queue = queue
        self.timeout = timeout
        self.seen: list[Event] = []

    async def next(self, event_type: str, resource_id: str | None = None, timeout: float | None = None,
                   where: Any = None, **data: Any) -> Event:
        async def find() -> Event:
            while True:
                event = await self.queue.get()
                self.seen.append(event)
                if (event.event_type == event_type and resource_id in (None, event.resource_id)
                        and (where is None or where(event))
                        and all(event.data.get(k) == v for k, v in data.items())):
                    return event
        return await asyncio.wait_for(find(), self.timeout if timeout is None else timeout)

    def types(self, resource_id: str) -> list[str]:
        return [e.event_type for e in self.seen if e.resource_id == resource_id]
