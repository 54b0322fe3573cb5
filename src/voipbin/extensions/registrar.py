"""The registrar's ports implemented over the store: extension credentials and the location table.

``sip/`` defines :class:`~voipbin.sip.location.CredentialStore` and
:class:`~voipbin.sip.location.LocationService`; these implementations keep bindings in the
``sip_bindings`` table so that any process (another media pod) can find a registered softphone.

Both serve the REGISTER path from memory (issue 21: an ORM statement and an aiosqlite hop per request
capped the registrar at ~50/s):

* :class:`ExtensionCredentials` keeps each answer (password and extension id, or "no such user") for
  ``ttl_s``; ``extension_*`` events (from any process) drop an extension's answer through
  :meth:`ExtensionCredentials.invalidate`.
* :class:`DatabaseLocationService` keeps the bindings it saved or read in memory. A new contact, a changed
  source/transport/User-Agent, a removal and an expiry are written before the call returns; a refresh that
  changes only the expiry, Call-ID and CSeq is written by a background flush within ``flush_interval_s``
  (default 1 s), all pending refreshes in one transaction. Staleness, for other processes reading the
  table: a refreshed expiry lags by at most ``flush_interval_s`` plus the write. For this process: an AOR
  is read from the table the first time it is looked up, and again when this process holds no live
  binding of it (read-through on a miss, at most every 0.5 s per AOR: behind the SIP edge a phone
  registers through one media pod and is called from another, which must find it at once); later lookups answer from memory, and one that
  finds the copy older than ``reload_s`` (default 30 s) has it re-read in the background (one query for
  all such AORs per ``flush_interval_s``), so a binding another process added to an AOR this one already
  holds (a second phone of the same extension registering elsewhere) is seen within about ``reload_s`` +
  ``flush_interval_s`` of active lookups; a re-read that overlapped a change made here keeps the change,
  refreshes not yet written win.
* The background work never holds the event loop for long: the refreshes are written and the stale AORs
  re-read ``BATCH_ROWS`` at a time, each batch its own statement (and transaction), with SQLAlchemy Core
  rather than the ORM (the ORM's bulk path cost ~26 us of loop time per row; one flush of 1,000 refreshes
  was a 30-50 ms stall once a second, most of the registrar's p99 at 2,000 REGISTER/s, issue 21).
* A binding's Path (RFC 3327) is stored one value per line in ``sip_bindings.path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voipbin.common.clock import format_ts, new_id
from voipbin.extensions.service import ExtensionService
from voipbin.sip.location import Binding, Credential
from voipbin.sip.registrar import BindingChange
from voipbin.store.models import SipBinding

log = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL_S = 1.0
DEFAULT_RELOAD_S = 30.0
MISS_RELOAD_S = 0.5  # a miss re-reads the table at most this often per AOR (failed digests of an unbound AOR)
DEFAULT_CREDENTIAL_TTL_S = 5.0
DEFAULT_NEGATIVE_TTL_S = 1.0
TTL_JITTER = 0.2  # an account's answer lasts ttl_s * (1 - up to this), so answers read together expire apart
MAX_REMEMBERED_ACCOUNTS = 200_000
BATCH_ROWS = 100  # rows per statement of the background work (each batch ~2 ms of event-loop time)


class ExtensionCredentials:
    """``CredentialStore``: the domain id is the customer id, the user the extension's ``extension``.

    Answers are kept in memory, unknown users included, for ``ttl_s`` seconds (at most ``max_accounts``
    of them, the oldest forgotten first). :meth:`invalidate` drops what one extension's answer came from;
    the runtime calls it on every ``extension_*`` event (any process), so a changed password or a deleted
    extension is seen by the next REGISTER after the event, and within ``ttl_s`` if an event is missed.
    A new extension is seen within ``negative_ttl_s`` (its number may have been tried before it existed).

    An account's answer lasts ``ttl_s`` less up to ``TTL_JITTER`` of it (drawn per answer), and a lookup
    that finds its account's answer expired gets that answer at once while one read in the background
    replaces it (an unknown user's answer is read again before answering). So the accounts that phones
    registered together (a start-up, a burst) do not all expire together and queue a read each in front
    of their REGISTERs (issue 21: p99 of the whole REGISTER load)."""

    def __init__(self, extensions: ExtensionService, *, ttl_s: float = DEFAULT_CREDENTIAL_TTL_S,
                 negative_ttl_s: float = DEFAULT_NEGATIVE_TTL_S, max_accounts: int = MAX_REMEMBERED_ACCOUNTS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._extensions = extensions
        self.ttl_s, self.negative_ttl_s, self._max_accounts = ttl_s, negative_ttl_s, max_accounts
        self._monotonic = monotonic
        self._answers: dict[tuple[str, str], tuple[Credential | None, float]] = {}  # -> (answer, valid until)
        self._keys: dict[str, tuple[str, str]] = {}  # extension id -> its key in _answers
        self._versions: dict[str, tuple[str | None, str | None]] = {}  # extension id -> (tm_update, tm_delete) read
        self._reading: dict[tuple[str, str], asyncio.Future[Credential | None]] = {}
        self._epoch = 0  # invalidations so far

    async def lookup(self, domain_id: str, user: str) -> Credential | None:
        key = (domain_id, user)
        hit = self._answers.get(key)
        if hit is not None and hit[1] > self._monotonic():
            return hit[0]
        reading = self._reading.get(key)
        if reading is None:  # one read per account, however many REGISTERs wait for it (a burst)
            reading = self._reading[key] = asyncio.ensure_future(self._read(key))
            reading.add_done_callback(self._read_done(key))
        if hit is not None and hit[0] is not None:
            return hit[0]  # expired: answered as before while the read replaces it
        return await asyncio.shield(reading)

    def _read_done(self, key: tuple[str, str]) -> Callable[[asyncio.Future[Credential | None]], None]:
        def done(read: asyncio.Future[Credential | None]) -> None:
            if self._reading.get(key) is read:
                self._reading.pop(key)
            if not read.cancelled() and read.exception() is not None:  # a background read: nobody awaits it
                log.warning("reading the credentials of %s failed: %r", key, read.exception())
        return done

    async def _read(self, key: tuple[str, str]) -> Credential | None:
        epoch = self._epoch
        ext = await self._extensions.find(key[0], extension=key[1])
        answer = None if ext is None else Credential(password=ext.password, owner_id=ext.id)
        version = None if ext is None else _row_version(ext)
        if epoch != self._epoch:  # an extension changed while reading: the answer may predate it
            return answer
        now = self._monotonic()
        self._forget(key)
        if len(self._answers) >= self._max_accounts:
            self._forget(next(iter(self._answers)))
        ttl = self.ttl_s * (1.0 - TTL_JITTER * random.random()) if answer is not None else self.negative_ttl_s
        self._answers[key] = (answer, now + ttl)
        if answer is not None:
            self._keys[answer.owner_id] = key
            if version is not None:
                self._versions[answer.owner_id] = version
        return answer

    def invalidate(self, extension_id: str, seen: Mapping[str, Any] | None = None) -> None:
        """Forget the answer that came from extension ``extension_id`` (its password changed, it was
        deleted); the next lookup reads the extensions table. ``seen``: the extension as the event carries
        it; when its ``tm_update`` and ``tm_delete`` are those of the row the answer was read from, the
        row has not changed since (a softphone's registration republishes its extension, issue 21: at a
        mass registration every new binding dropped its account's answer and, bumping the epoch, every
        read in progress) and nothing is forgotten."""
        if (seen is not None and extension_id in self._versions
                and self._versions[extension_id] == (seen.get("tm_update"), seen.get("tm_delete"))):
            return
        self._epoch += 1  # reads in progress may predate the change: not remembered, not joined
        self._reading.clear()
        key = self._keys.get(extension_id)
        if key is not None:
            self._forget(key)

    def _forget(self, key: tuple[str, str]) -> None:
        answer, _ = self._answers.pop(key, (None, 0.0))
        if answer is not None:
            self._keys.pop(answer.owner_id, None)
            self._versions.pop(answer.owner_id, None)


def _row_version(ext: Any) -> tuple[str | None, str | None] | None:
    """``(tm_update, tm_delete)`` of an extension row as its events carry them; None when not known."""
    if not hasattr(ext, "tm_update"):
        return None
    return format_ts(ext.tm_update), format_ts(getattr(ext, "tm_delete", None))


def _to_binding(row: SipBinding) -> Binding:
    return Binding(aor=row.aor, contact=row.contact, expires_at=row.expires_at,
                   received=(row.received_host, row.received_port), transport=row.transport,
                   call_id=row.call_id, cseq=row.cseq, user_agent=row.user_agent or None,
                   domain_id=row.customer_id, user=row.user, owner_id=row.extension_id,
                   q=float(row.q) if row.q else None, path=tuple(row.path.splitlines()) if row.path else ())


def _row_values(binding: Binding) -> dict[str, Any]:
    return {
        "aor": binding.aor, "contact": binding.contact, "customer_id": binding.domain_id,
        "extension_id": binding.owner_id, "user": binding.user, "received_host": binding.received[0],
        "received_port": binding.received[1], "transport": binding.transport, "call_id": binding.call_id,
        "cseq": binding.cseq, "user_agent": binding.user_agent or "",
        "q": "" if binding.q is None else str(binding.q), "expires_at": binding.expires_at,
        "path": "\n".join(binding.path),
    }


def _only_refreshed(old: Binding, new: Binding) -> bool:
    """Whether ``new`` differs from ``old`` in nothing the table's readers route by (only expiry,
    Call-ID, CSeq): such a refresh may be written late."""
    return (old.received == new.received and old.transport == new.transport and old.user_agent == new.user_agent
            and old.owner_id == new.owner_id and old.domain_id == new.domain_id and old.q == new.q
            and old.path == new.path)


@dataclass
class _Aor:
    """This process's copy of one AOR's bindings; ``loaded_at``: monotonic time of the last table read
    (None: never read, the next lookup reads it)."""

    bindings: dict[str, Binding] = field(default_factory=dict)
    loaded_at: float | None = None
    version: int = 0  # bumped by every save/remove here: a re-read that overlapped one is discarded


class DatabaseLocationService:
    """``LocationService`` over the ``sip_bindings`` table (SQLite or PostgreSQL), served from memory
    with batched write-behind of refreshes (see the module docstring for what is written when and the
    staleness other processes see). :meth:`flush` does the background work now (the registrar's ``stop``
    calls it)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *,
                 flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S, reload_s: float = DEFAULT_RELOAD_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self.flush_interval_s, self.reload_s = flush_interval_s, reload_s
        self._monotonic = monotonic
        self._aors: dict[str, _Aor] = {}
        self._pending: dict[tuple[str, str], Binding] = {}
        self._stale: set[str] = set()  # AORs looked up after reload_s: re-read in the background
        self._flusher: asyncio.Task[None] | None = None
        self._upserts: dict[str, Any] = {}  # dialect name -> the upsert statement

    async def save(self, binding: Binding) -> None:
        entry = self._aors.setdefault(binding.aor, _Aor())
        old = entry.bindings.get(binding.contact)
        entry.bindings[binding.contact] = binding
        entry.version += 1
        key = (binding.aor, binding.contact)
        if old is not None and _only_refreshed(old, binding):
            self._pending[key] = binding
            self._wake()
            return
        self._pending.pop(key, None)
        await self._upsert([binding])

    async def remove(self, aor: str, contact: str | None = None) -> list[Binding]:
        entry = self._aors.get(aor)
        async with self._sessions() as db, db.begin():
            stmt = select(SipBinding).where(SipBinding.aor == aor)
            if contact is not None:
                stmt = stmt.where(SipBinding.contact == contact)
            rows = list((await db.scalars(stmt)).all())
            for row in rows:
                await db.delete(row)
        removed = {r.contact: _to_binding(r) for r in rows}
        if entry is not None:
            entry.version += 1
            for uri in [contact] if contact is not None else list(entry.bindings):
                binding = entry.bindings.pop(uri, None)
                self._pending.pop((aor, uri), None)
                if binding is not None:
                    removed[uri] = binding  # this process's copy is the newer one
        return list(removed.values())

    async def lookup(self, aor: str, now: float | None = None) -> list[Binding]:
        now = time.time() if now is None else now
        entry = self._aors.get(aor)
        if entry is None or entry.loaded_at is None or (
                self._monotonic() - entry.loaded_at > MISS_RELOAD_S
                and not any(b.expires_at > now for b in entry.bindings.values())):
            entry = await self._load(aor)  # never read, or a miss: another pod may have it
        elif self._monotonic() - entry.loaded_at > self.reload_s:
            self._stale.add(aor)  # answered from memory now; re-read with the other stale AORs
            self._wake()
        return [b for b in entry.bindings.values() if b.expires_at > now]

    async def expire(self, now: float | None = None) -> list[Binding]:
        now = time.time() if now is None else now
        gone: dict[tuple[str, str], Binding] = {}
        stale_before = self._monotonic() - self.reload_s
        for aor, entry in list(self._aors.items()):
            for uri, binding in list(entry.bindings.items()):
                if binding.expires_at <= now:
                    gone[(aor, uri)] = binding
                    del entry.bindings[uri]
                    self._pending.pop((aor, uri), None)
            if not entry.bindings and (entry.loaded_at is None or entry.loaded_at < stale_before):
                del self._aors[aor]
        async with self._sessions() as db, db.begin():
            rows = list((await db.scalars(select(SipBinding).where(SipBinding.expires_at <= now))).all())
            # a row whose refresh is still pending here is alive: the flush rewrites its expiry
            rows = [r for r in rows if (r.aor, r.contact) not in self._pending]
            if rows:
                await db.execute(delete(SipBinding).where(SipBinding.id.in_([r.id for r in rows])))
        for row in rows:
            gone.setdefault((row.aor, row.contact), _to_binding(row))
        return list(gone.values())

    async def flush(self) -> None:
        """Do the background work now: write every pending refresh (one transaction), re-read the
        stale AORs; the background task stops (the next deferred refresh or stale lookup starts it)."""
        task, self._flusher = self._flusher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._write_pending()
        await self._reload_stale()

    def _wake(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._background())

    async def _background(self) -> None:
        """Every ``flush_interval_s`` while there is work: write pending refreshes, re-read stale AORs."""
        while self._pending or self._stale:
            await asyncio.sleep(self.flush_interval_s)
            try:
                await self._write_pending()
            except Exception:
                log.exception("writing refreshed bindings failed; retrying")
            try:
                await self._reload_stale()
            except Exception:
                log.exception("re-reading bindings failed")

    async def _reload_stale(self) -> None:
        stale, self._stale = list(self._stale), set()
        table = SipBinding.__table__
        for i in range(0, len(stale), BATCH_ROWS):
            chunk = stale[i:i + BATCH_ROWS]
            versions = {aor: self._aors[aor].version for aor in chunk if aor in self._aors}
            async with self._sessions() as db:
                rows = (await db.execute(select(table).where(table.c.aor.in_(chunk))
                                         .order_by(table.c.tm_create))).all()
            loaded_at = self._monotonic()
            fresh: dict[str, dict[str, Binding]] = {aor: {} for aor in versions}
            for row in rows:
                if row.aor in fresh:
                    fresh[row.aor][row.contact] = _to_binding(row)
            for (aor, uri), binding in self._pending.items():  # not written yet (a failed flush)
                if aor in fresh:
                    fresh[aor][uri] = binding
            for aor, bindings in fresh.items():
                entry = self._aors.get(aor)
                if entry is not None and entry.version == versions[aor]:  # else changed meanwhile: next time
                    entry.bindings, entry.loaded_at = bindings, loaded_at

    async def _write_pending(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            await self._upsert(list(pending.values()))
        except BaseException:
            for key, binding in pending.items():  # written at the next flush, unless a newer one is pending
                self._pending.setdefault(key, binding)
            raise

    async def _load(self, aor: str) -> _Aor:
        before = self._aors.get(aor)
        version = before.version if before is not None else 0
        async with self._sessions() as db:
            rows = (await db.scalars(select(SipBinding).where(SipBinding.aor == aor)
                                     .order_by(SipBinding.tm_create))).all()
        fresh = {r.contact: _to_binding(r) for r in rows}
        current = self._aors.get(aor)
        if current is not None and current.version != version:  # saved or removed here meanwhile: theirs win
            current.loaded_at = self._monotonic()
            return current
        entry = _Aor(bindings=fresh, loaded_at=self._monotonic(), version=version)
        for (pending_aor, uri), binding in self._pending.items():
            if pending_aor == aor:
                entry.bindings[uri] = binding
        self._aors[aor] = entry
        return entry

    async def _upsert(self, bindings: list[Binding]) -> None:
        """Insert or update ``bindings`` (by AOR and contact), ``BATCH_ROWS`` per statement and transaction."""
        for i in range(0, len(bindings), BATCH_ROWS):
            async with self._sessions() as db, db.begin():
                stmt = self._upsert_statement(db.bind.dialect.name)  # type: ignore[union-attr]
                await db.execute(stmt, [{"id": new_id(), **_row_values(b)} for b in bindings[i:i + BATCH_ROWS]])

    def _upsert_statement(self, dialect: str) -> Any:
        """The Core ``INSERT .. ON CONFLICT (aor, contact) DO UPDATE`` of every column, built once per dialect."""
        stmt = self._upserts.get(dialect)
        if stmt is None:
            table = SipBinding.__table__
            stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
            stmt = self._upserts[dialect] = stmt.on_conflict_do_update(
                index_elements=["aor", "contact"],
                set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in ("id", "aor", "contact",
                                                                                            "tm_create")})
        return stmt


class RegistrationEvents:
    """``on_binding_change`` hook: a registration change republishes the extension (``extension_updated``)."""

    def __init__(self, extensions: ExtensionService) -> None:
        self._extensions = extensions

    async def __call__(self, change: BindingChange) -> None:
        if change.event == "refreshed":
            return
        binding = change.binding
        if binding.owner_id and binding.domain_id:
            await self._extensions.registration_changed(binding.domain_id, binding.owner_id, change.event)
