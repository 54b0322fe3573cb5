"""Events: what happened to a resource, published on a bus and fanned out to WebSockets and webhooks."""

from voipbin.events.model import Event, EventPublisher

__all__ = ["Event", "EventPublisher"]
