"""The event record and the publishing seam that resource services depend on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from voipbin.common.clock import format_ts, new_id, parse_ts, utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class Event:
    """One event: ``<resource>_<verb>`` about one resource of one customer.

    ``data`` is the resource exactly as the REST API returns it. ``topic`` is
    ``customer_id:<customer_id>:<resource>:<resource_id>`` (DESIGN.md, wire conventions).
    ``agent_ids`` names the agents the event also concerns (an agent's own queue call,
    for instance); each gets the topic ``agent_id:<agent_id>:<resource>:<resource_id>``.
    """

    event_type: str
    customer_id: str
    resource: str
    resource_id: str
    data: dict[str, Any]
    id: str = field(default_factory=new_id)
    timestamp: datetime = field(default_factory=utcnow)
    agent_ids: tuple[str, ...] = ()

    @property
    def topic(self) -> str:
        return f"customer_id:{self.customer_id}:{self.resource}:{self.resource_id}"

    def agent_topic(self, agent_id: str) -> str:
        return f"agent_id:{agent_id}:{self.resource}:{self.resource_id}"

    def to_websocket(self, topic: str | None = None) -> dict[str, Any]:
        """The WebSocket push: ``{"event_type", "timestamp", "topic", "data"}``.

        ``topic`` defaults to the customer topic; the hub passes the agent topic to agent subscribers.
        """
        return {
            "event_type": self.event_type,
            "timestamp": format_ts(self.timestamp),
            "topic": topic or self.topic,
            "data": self.data,
        }

    def to_webhook(self) -> dict[str, Any]:
        """The webhook body: ``{"type", "data"}``."""
        return {"type": self.event_type, "data": self.data}

    def to_json(self) -> bytes:
        """The bus encoding (UTF-8 JSON): ``{"id", "type", "timestamp", "customer_id", "resource",
        "resource_id", "agent_ids", "data"}``; :meth:`from_json` is its inverse."""
        return json.dumps({
            "id": self.id, "type": self.event_type, "timestamp": format_ts(self.timestamp),
            "customer_id": self.customer_id, "resource": self.resource, "resource_id": self.resource_id,
            "agent_ids": list(self.agent_ids), "data": self.data,
        }, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        """Decode :meth:`to_json`. Raises ValueError (or KeyError/TypeError) on a malformed payload."""
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
            raise ValueError("event payload must be an object with an object 'data'")
        return cls(
            event_type=str(doc["type"]), customer_id=str(doc["customer_id"]), resource=str(doc["resource"]),
            resource_id=str(doc["resource_id"]), data=doc["data"], id=str(doc["id"]),
            timestamp=parse_ts(doc["timestamp"]), agent_ids=tuple(str(a) for a in doc.get("agent_ids") or ()),
        )


class EventPublisher(Protocol):
    """What a resource service needs of the bus (``OutboxBus``).

    ``publish(event)`` after a change committed, or ``publish(event, session=s)`` inside the open
    transaction that makes the change: its webhook row is then written in that transaction and the
    live event follows the commit (nothing is published on rollback)."""

    async def publish(self, event: Event, *, session: AsyncSession | None = None) -> None: ...
