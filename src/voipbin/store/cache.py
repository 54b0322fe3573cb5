"""A per-process read cache for hot resource lookups (by id), as upstream fronts its DB with a cache.

Entries live ``ttl_seconds`` at most; a service invalidates the entries it writes, and
``invalidate`` is also driven by ``<resource>_updated/_deleted`` events so that other processes'
writes drop stale entries (the TTL bounds staleness if an event is missed).
"""

from __future__ import annotations

from typing import Any

from cachetools import TTLCache


class ResourceCache:
    def __init__(self, ttl_seconds: float = 5.0, maxsize: int = 50_000) -> None:
        self._entries: TTLCache[tuple[str, str], Any] = TTLCache(maxsize=maxsize, ttl=ttl_seconds)

    def get(self, kind: str, key: str) -> Any | None:
        return self._entries.get((kind, key))

    def put(self, kind: str, key: str, value: Any) -> None:
        self._entries[(kind, key)] = value

    def invalidate(self, kind: str, key: str) -> None:
        self._entries.pop((kind, key), None)

    def clear(self) -> None:
        self._entries.clear()
