"""The registrar's store ports served from memory (issue 21): what reaches the table when, what another
process sees, and credentials that follow extension changes. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from voipbin.config import Settings
from voipbin.extensions.registrar import DatabaseLocationService, ExtensionCredentials
from voipbin.extensions.service import serialize
from voipbin.sip.location import Binding

AOR = "sip:100@c1.registrar.voipbin.test"
NOW = 1_000_000.0


class Monotonic:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def binding(contact: str = "sip:100@192.0.2.1:5062", *, expires_at: float = NOW + 3600, cseq: int = 1,
            source: tuple[str, int] = ("192.0.2.1", 5062)) -> Binding:
    return Binding(aor=AOR, contact=contact, expires_at=expires_at, received=source, transport="UDP",
                   call_id="cid-1", cseq=cseq, user_agent="phone", domain_id="c1", user="100", owner_id="ext-100")


@pytest.fixture
async def runtime(db_url: str) -> Any:
    from voipbin.runtime import Runtime

    rt = Runtime(Settings(database_url=db_url, sip_enabled=False, webhook_worker=False,  # type: ignore[call-arg]
                          _env_file=None))
    yield rt
    await rt.engine.dispose()


async def test_new_contacts_are_written_at_once_refreshes_by_the_flush(runtime: Any) -> None:
    here, elsewhere = DatabaseLocationService(runtime.sessions), DatabaseLocationService(runtime.sessions)
    assert await here.lookup(AOR, NOW) == []
    await here.save(binding())
    assert [b.cseq for b in await elsewhere.lookup(AOR, NOW)] == [1]  # another process sees it at once

    await here.save(binding(expires_at=NOW + 7200, cseq=2))  # only the expiry (and CSeq) changed
    assert [b.cseq for b in await here.lookup(AOR, NOW)] == [2]  # served from memory
    other = DatabaseLocationService(runtime.sessions)
    assert [(b.cseq, b.expires_at) for b in await other.lookup(AOR, NOW)] == [(1, NOW + 3600)]  # not yet written
    await here.flush()
    other = DatabaseLocationService(runtime.sessions)
    assert [(b.cseq, b.expires_at) for b in await other.lookup(AOR, NOW)] == [(2, NOW + 7200)]

    await here.save(binding(cseq=3, source=("198.51.100.7", 40000)))  # moved (NAT rebinding): written at once
    other = DatabaseLocationService(runtime.sessions)
    assert [b.received for b in await other.lookup(AOR, NOW)] == [("198.51.100.7", 40000)]

    assert [b.cseq for b in await here.remove(AOR, binding().contact)] == [3]
    assert await DatabaseLocationService(runtime.sessions).lookup(AOR, NOW) == []
    assert await here.lookup(AOR, NOW) == []


async def test_a_flush_of_many_refreshes_writes_them_all_in_batches(runtime: Any) -> None:
    """More pending refreshes than one batch (BATCH_ROWS): every one reaches the table, and a re-read of
    more stale AORs than one batch sees every one."""
    from dataclasses import replace

    from voipbin.extensions.registrar import BATCH_ROWS

    here = DatabaseLocationService(runtime.sessions)
    count = 2 * BATCH_ROWS + 7
    bindings = [replace(binding(f"sip:{n}@192.0.2.1:5062"), aor=f"sip:{n}@c1.registrar.voipbin.test", user=str(n))
                for n in range(count)]
    for b in bindings:
        await here.save(b)
    for b in bindings:
        await here.save(replace(b, cseq=2, expires_at=NOW + 7200))  # refreshes: written by the flush
    await here.flush()
    other = DatabaseLocationService(runtime.sessions, reload_s=0.0)
    for b in bindings:
        assert [(x.cseq, x.expires_at) for x in await other.lookup(b.aor, NOW)] == [(2, NOW + 7200)]
    for b in bindings:  # moved (written at once) by this process
        await here.save(replace(b, cseq=3, received=("198.51.100.7", 40000)))
    assert {(await other.lookup(b.aor, NOW))[0].cseq for b in bindings} == {2}  # from memory; now stale
    await other.flush()  # every AOR is re-read, in batches
    assert {(await other.lookup(b.aor, NOW))[0].received for b in bindings} == {("198.51.100.7", 40000)}


async def test_expiry_spares_a_binding_whose_refresh_is_pending(runtime: Any) -> None:
    here = DatabaseLocationService(runtime.sessions)
    await here.lookup(AOR, NOW)
    await here.save(binding(expires_at=NOW + 60))
    await here.save(binding("sip:100@192.0.2.2:5062", expires_at=NOW + 60, source=("192.0.2.2", 5062)))
    await here.save(binding(expires_at=NOW + 3600, cseq=2))  # refreshed, not written yet
    gone = await here.expire(NOW + 61)
    assert [b.contact for b in gone] == ["sip:100@192.0.2.2:5062"]
    await here.flush()
    assert [(b.contact, b.cseq) for b in await DatabaseLocationService(runtime.sessions).lookup(AOR, NOW + 61)] \
        == [(binding().contact, 2)]


async def test_another_process_binding_is_seen_after_reload(runtime: Any) -> None:
    clock = Monotonic()
    here = DatabaseLocationService(runtime.sessions, reload_s=30, monotonic=clock)
    elsewhere = DatabaseLocationService(runtime.sessions)
    await here.save(binding())
    assert len(await here.lookup(AOR, NOW)) == 1
    await elsewhere.save(binding("sip:100@192.0.2.9:5062", source=("192.0.2.9", 5062)))
    assert len(await here.lookup(AOR, NOW)) == 1  # memory, within reload_s
    clock.now = 31
    assert len(await here.lookup(AOR, NOW)) == 1  # still memory: stale, re-read in the background
    await here.flush()  # the background work, now
    assert sorted(b.contact for b in await here.lookup(AOR, NOW)) == [
        "sip:100@192.0.2.1:5062", "sip:100@192.0.2.9:5062"]


async def test_a_reread_that_overlaps_a_change_here_is_dropped(runtime: Any) -> None:
    clock = Monotonic()
    here = DatabaseLocationService(runtime.sessions, reload_s=30, monotonic=clock)
    await here.lookup(AOR, NOW)
    await here.save(binding())
    clock.now = 31
    await here.lookup(AOR, NOW)  # marks the AOR stale
    await here.save(binding(expires_at=NOW + 7200, cseq=2))  # a refresh pending, not yet written
    await here.flush()  # writes it, then re-reads: the row and this process agree
    assert [b.cseq for b in await here.lookup(AOR, NOW)] == [2]
    assert [b.cseq for b in await DatabaseLocationService(runtime.sessions).lookup(AOR, NOW)] == [2]


async def test_credentials_follow_extension_changes(runtime: Any) -> None:
    customer = (await runtime.seed_sandbox()).customer_id
    clock = Monotonic()
    creds = ExtensionCredentials(runtime.extensions, ttl_s=300, negative_ttl_s=1, monotonic=clock)
    assert await creds.lookup(customer, "100") is None
    ext = await runtime.extensions.create(customer, {"name": "n", "detail": "d", "extension": "100",
                                                 "password": "first-password"})
    assert await creds.lookup(customer, "100") is None  # "no such user" is remembered negative_ttl_s
    clock.now = 1.5
    first = await creds.lookup(customer, "100")
    assert first is not None and (first.password, first.owner_id) == ("first-password", ext.id)

    # a softphone registering republishes the extension unchanged: the answer stays
    creds.invalidate(ext.id, serialize(await runtime.extensions.get(customer, ext.id)))
    updated = await runtime.extensions.update(customer, ext.id, {"password": "second-password"})
    assert (await creds.lookup(customer, "100")).password == "first-password"  # type: ignore[union-attr]
    creds.invalidate(ext.id, serialize(updated))  # the runtime does this on the extension_updated event
    assert (await creds.lookup(customer, "100")).password == "second-password"  # type: ignore[union-attr]

    deleted = await runtime.extensions.delete(customer, ext.id)
    creds.invalidate(ext.id, serialize(deleted))
    assert await creds.lookup(customer, "100") is None

    await runtime.extensions.create(customer, {"name": "n", "detail": "d", "extension": "100",
                                           "password": "third-password"})
    clock.now = 400  # past ttl_s every answer is read again, an event missed or not
    assert (await creds.lookup(customer, "100")).password == "third-password"  # type: ignore[union-attr]


class CountingExtensions:
    """The one ExtensionService method ExtensionCredentials uses, counting reads and held until ``go``."""

    def __init__(self) -> None:
        self.reads = 0
        self.reading = asyncio.Event()
        self.go = asyncio.Event()
        self.password = "first-password"

    async def find(self, customer_id: str, *, extension: str | None = None) -> Any:
        self.reads += 1
        password = self.password
        self.reading.set()
        await self.go.wait()
        return SimpleNamespace(id="ext-100", password=password)


async def test_a_burst_of_lookups_reads_an_account_once() -> None:
    extensions = CountingExtensions()
    creds = ExtensionCredentials(extensions, ttl_s=300)  # type: ignore[arg-type]
    waiting = [asyncio.ensure_future(creds.lookup("c1", "100")) for _ in range(50)]
    await extensions.reading.wait()
    more = [asyncio.ensure_future(creds.lookup("c1", "100")) for _ in range(50)]  # while the read runs
    extensions.go.set()
    waiting += more
    assert {c.password for c in await asyncio.gather(*waiting)} == {"first-password"}  # type: ignore[union-attr]
    assert extensions.reads == 1


async def test_a_change_during_a_read_is_not_remembered() -> None:
    extensions = CountingExtensions()
    creds = ExtensionCredentials(extensions, ttl_s=300)  # type: ignore[arg-type]
    before = asyncio.ensure_future(creds.lookup("c1", "100"))
    await extensions.reading.wait()
    extensions.password = "second-password"
    creds.invalidate("ext-100")  # the event arrives while the first read is in progress
    after = asyncio.ensure_future(creds.lookup("c1", "100"))  # does not join the older read
    extensions.go.set()
    assert (await before).password == "first-password"  # type: ignore[union-attr]
    assert (await after).password == "second-password"  # type: ignore[union-attr]
    assert (await creds.lookup("c1", "100")).password == "second-password"  # type: ignore[union-attr]
    assert extensions.reads == 2


async def test_an_expired_answer_is_served_while_one_read_replaces_it() -> None:
    """Past its TTL an account's answer is still given at once (no REGISTER waits on the store) while one
    background read replaces it; the TTLs of answers read together are spread (TTL_JITTER)."""
    from voipbin.extensions.registrar import TTL_JITTER

    extensions, clock = CountingExtensions(), Monotonic()
    extensions.go.set()
    creds = ExtensionCredentials(extensions, ttl_s=300, monotonic=clock)  # type: ignore[arg-type]
    assert (await creds.lookup("c1", "100")).password == "first-password"  # type: ignore[union-attr]
    extensions.go.clear()
    extensions.reading.clear()
    extensions.password = "second-password"  # changed, its event missed
    clock.now = 301
    answers = [await creds.lookup("c1", "100") for _ in range(20)]  # none waits for the held read
    assert {a.password for a in answers} == {"first-password"}  # type: ignore[union-attr]
    await extensions.reading.wait()
    assert extensions.reads == 2  # one background read for the 20 lookups
    extensions.go.set()
    assert (await creds.lookup("c1", "100")).password == "first-password"  # type: ignore[union-attr]
    while (await creds.lookup("c1", "100")).password == "first-password":  # type: ignore[union-attr]
        await asyncio.sleep(0)  # until the background read has stored its answer (a few loop turns)
    assert extensions.reads == 2

    spread = ExtensionCredentials(extensions, ttl_s=300, monotonic=clock)  # type: ignore[arg-type]
    for user in range(200):
        await spread.lookup("c1", str(user))
    until = [valid_until - clock.now for _, valid_until in spread._answers.values()]
    assert 300 * (1 - TTL_JITTER) <= min(until) and max(until) <= 300 and max(until) - min(until) > 30
