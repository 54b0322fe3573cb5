"""The registrar's ports to the application: credentials and the location service (RFC 3261 §10.2).

``sip/`` never touches a database. The application implements :class:`CredentialStore` (extensions
and their passwords) and :class:`LocationService` (the binding table); the in-memory versions here
serve tests and the single-process sandbox.

Domain model: the registrar domain ``<domain_id>.registrar.<sip_domain>`` selects a *domain id*
(the customer id); the user part of the AOR is the extension. An AOR is the string
``sip:<user>@<domain_id>.registrar.<sip_domain>`` (lower-case host, no port or params).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Credential:
    """A SIP user's secret: ``password`` (plain text, needed for Digest) and ``owner_id``, an
    opaque id the application gives back in binding events (e.g. the extension id)."""

    password: str
    owner_id: str


class CredentialStore(Protocol):
    """Looks up SIP credentials. Implemented by the application (extensions table)."""

    async def lookup(self, domain_id: str, user: str) -> Credential | None:
        """The credential of ``user`` in ``domain_id``, or None when there is no such user."""
        ...


@dataclass(frozen=True)
class Binding:
    """One Contact bound to an AOR (RFC 3261 §10.3).

    ``contact``: the Contact URI as sent; ``received``: (host, port) the REGISTER came from and
    ``transport`` ("UDP"/"TCP") - where to send requests for a UA behind NAT (RFC 3581, RFC 5626);
    ``expires_at``: epoch seconds; ``call_id``/``cseq``: refresh ordering (§10.3 step 7);
    ``domain_id``/``user``/``owner_id``: who it belongs to. ``path``: the REGISTER's Path header values
    in order (RFC 3327: the proxies between us and the UA, the nearest first); a request to the contact
    carries them as its pre-loaded route set (RFC 3261 §8.1.2), so it goes through the edge proxy that
    the UA registered through (Kamailio: NAT pinhole, Record-Route for the dialog).
    """

    aor: str
    contact: str
    expires_at: float
    received: tuple[str, int]
    transport: str
    call_id: str
    cseq: int
    user_agent: str | None = None
    domain_id: str = ""
    user: str = ""
    owner_id: str = ""
    q: float | None = None
    path: tuple[str, ...] = ()
    params: dict[str, str | None] = field(default_factory=dict, compare=False)

    def expires_in(self, now: float | None = None) -> int:
        """Seconds left (>= 0)."""
        return max(0, int(round(self.expires_at - (time.time() if now is None else now))))


class LocationService(Protocol):
    """Stores bindings (the location table). Implemented by the application (database) and by
    :class:`InMemoryLocationService`. Every method is keyed by AOR and Contact URI."""

    async def save(self, binding: Binding) -> None:
        """Insert or replace the binding for ``(binding.aor, binding.contact)``."""
        ...

    async def remove(self, aor: str, contact: str | None = None) -> list[Binding]:
        """Remove one binding (``contact`` given) or all bindings of ``aor``; return the removed."""
        ...

    async def lookup(self, aor: str, now: float | None = None) -> list[Binding]:
        """The unexpired bindings of ``aor`` (at ``now``, epoch seconds; default: current time)."""
        ...

    async def expire(self, now: float | None = None) -> list[Binding]:
        """Delete every binding that expired before ``now``; return them."""
        ...

    async def flush(self) -> None:
        """Write now whatever is held back for a batched write (the registrar's ``stop`` calls it);
        nothing to do for a store that writes through."""
        ...


class InMemoryCredentialStore:
    """:class:`CredentialStore` over a dict ``{(domain_id, user): Credential}``."""

    def __init__(self) -> None:
        self._users: dict[tuple[str, str], Credential] = {}

    def add(self, domain_id: str, user: str, password: str, owner_id: str | None = None) -> None:
        self._users[(domain_id, user)] = Credential(password, owner_id or f"{domain_id}/{user}")

    async def lookup(self, domain_id: str, user: str) -> Credential | None:
        return self._users.get((domain_id, user))


class InMemoryLocationService:
    """:class:`LocationService` in a dict; for tests and the embedded deployment."""

    def __init__(self) -> None:
        self._table: dict[str, dict[str, Binding]] = {}

    async def save(self, binding: Binding) -> None:
        self._table.setdefault(binding.aor, {})[binding.contact] = binding

    async def remove(self, aor: str, contact: str | None = None) -> list[Binding]:
        bindings = self._table.get(aor, {})
        if contact is None:
            removed = list(bindings.values())
            self._table.pop(aor, None)
            return removed
        one = bindings.pop(contact, None)
        if not bindings:
            self._table.pop(aor, None)
        return [one] if one is not None else []

    async def lookup(self, aor: str, now: float | None = None) -> list[Binding]:
        now = time.time() if now is None else now
        return [b for b in self._table.get(aor, {}).values() if b.expires_at > now]

    async def expire(self, now: float | None = None) -> list[Binding]:
        now = time.time() if now is None else now
        gone: list[Binding] = []
        for aor in list(self._table):
            for contact, binding in list(self._table[aor].items()):
                if binding.expires_at <= now:
                    gone.append(binding)
                    del self._table[aor][contact]
            if not self._table[aor]:
                del self._table[aor]
        return gone

    async def flush(self) -> None:
        """Nothing is held back: every change is in the table at once."""


__all__ = [
    "Binding",
    "Credential",
    "CredentialStore",
    "InMemoryCredentialStore",
    "InMemoryLocationService",
    "LocationService",
]
