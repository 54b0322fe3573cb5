"""The event record and the publishing seam that resource services depend on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from voipbin.common.clock import format_ts, new_id, utcnow


@dataclass(frozen=True, slots=True)
class Event:
    """One event: ``<resource>_<verb>`` about one resource of one customer.

    ``data`` is the resource exactly as the REST API returns it. ``topic`` is
    ``customer_id:<customer_id>:<resource>:<resource_id>`` (DESIGN.md, wire conventions).
    """

    event_type: str
    customer_id: str
    resource: str
    resource_id: str
    data: dict[str, Any]
    id: str = field(default_factory=new_id)
    timestamp: datetime = field(default_factory=utcnow)

    @property
    def topic(self) -> str:
        return f"customer_id:{self.customer_id}:{self.resource}:{self.resource_id}"

    def to_websocket(self) -> dict[str, Any]:
        """The WebSocket push: ``{"event_type", "timestamp", "topic", "data"}``."""
        return {
            "event_type": self.event_type,
            "timestamp": format_ts(self.timestamp),
            "topic": self.topic,
            "data": self.data,
        }

    def to_webhook(self) -> dict[str, Any]:
        """The webhook body: ``{"type", "data"}``."""
        return {"type": self.event_type, "data": self.data}


class EventPublisher(Protocol):
    """What a resource service needs of the bus: fire-and-forget publish."""

    async def publish(self, event: Event) -> None: ...
