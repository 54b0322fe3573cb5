"""Webhook delivery worker: sends due outbox rows to the customers' ``webhook_uri``.

Each attempt is one HTTP request (``webhook_method``, default POST) with the body stored in the
outbox and the headers

* ``Content-Type: application/json``
* ``X-VoIPBIN-Event-Id: <event id>`` (the same on every retry: receivers deduplicate on it)
* ``X-VoIPBIN-Signature: sha256=<hex HMAC-SHA256 of the body keyed by the webhook_secret>``
* ``X-VoIPBIN-Event-Type``, ``X-VoIPBIN-Delivery-Attempt`` (1, 2, ...)

An attempt has ``timeout_seconds`` in all (5 s by default, the seeds' "respond within 5 seconds").
Destinations resolving to loopback, private, link-local or other non-global addresses are refused
(the row fails with the reason) unless ``allow_private`` (``VOIPBIN_WEBHOOK_ALLOW_PRIVATE=true``, set
by the sandbox); link-local (169.254.0.0/16, fe80::/10) and cloud metadata addresses are refused even
then (issue 13 finding 10). Outcomes follow :mod:`voipbin.events.retry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from datetime import UTC, datetime

import httpx
import structlog

from voipbin import __version__
from voipbin.common.clock import utcnow
from voipbin.events.outbox import Claimed, Outbox
from voipbin.events.retry import Outcome, classify
from voipbin.events.signature import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

log = structlog.get_logger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
LEASE_MARGIN_SECONDS = 5.0


class DestinationRefused(Exception):
    """The webhook URI points at an address this server may not call."""


# refused even with allow_private: link-local (where cloud metadata services live) and the metadata
# addresses clouds put elsewhere (AWS IPv6 fd00:ec2::254, Alibaba 100.100.100.200)
ALWAYS_REFUSED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"))
METADATA_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"})


def _always_refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in ALWAYS_REFUSED_NETWORKS if net.version == ip.version)


def _non_global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


async def check_destination(uri: str, *, allow_private: bool) -> None:
    """Raise DestinationRefused unless ``uri`` is http(s) to public addresses only (or ``allow_private``).

    The host is resolved; if any address it resolves to is loopback, private (RFC 1918, ULA),
    link-local, shared, reserved, unspecified or multicast, the URI is refused. With ``allow_private``
    only link-local and cloud metadata addresses (and names) are refused. Raises OSError
    (socket.gaierror) when the name does not resolve (a transport error: retried).
    """
    url = httpx.URL(uri)
    if url.scheme not in ("http", "https") or not url.host:
        raise DestinationRefused(f"webhook_uri must be an http(s) URL with a host, not {uri!r}")
    host = url.host
    if host.rstrip(".").lower() in METADATA_HOSTNAMES:
        raise DestinationRefused(f"webhook_uri host {host} is a cloud metadata service")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        port = url.port or (443 if url.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    for ip in addresses:
        if _always_refused(ip):
            raise DestinationRefused(f"webhook_uri host {host} resolves to link-local or metadata address {ip}")
        if not allow_private and _non_global(ip):
            raise DestinationRefused(f"webhook_uri host {host} resolves to non-public address {ip}; "
                                     "set VOIPBIN_WEBHOOK_ALLOW_PRIVATE=true to allow")


class WebhookWorker:
    """Claims due outbox rows and delivers them, until :meth:`stop`.

    ``timeout_seconds`` bounds each attempt; up to ``concurrency`` requests run at once. The worker
    wakes on :meth:`wake` (a local enqueue), at the next due retry, and at least every
    ``poll_interval_seconds`` (rows written by other processes).
    """

    def __init__(self, outbox: Outbox, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
                 allow_private: bool = False, batch_size: int = 64, concurrency: int = 16,
                 poll_interval_seconds: float = 1.0, release_leases_on_start: bool = False) -> None:
        self.outbox = outbox
        self.timeout_seconds = timeout_seconds
        self.allow_private = allow_private
        self.batch_size = batch_size
        self.poll_interval_seconds = poll_interval_seconds
        self.lease_seconds = timeout_seconds + LEASE_MARGIN_SECONDS
        self._release_leases_on_start = release_leases_on_start
        self._semaphore = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._task is not None:
            return
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_seconds), follow_redirects=False, trust_env=False,
            headers={"User-Agent": f"voipbin-webhook/{__version__}"},
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))
        if self._release_leases_on_start:
            released = await self.outbox.release_leases()
            if released:
                log.info("webhook deliveries resumed after restart", rows=released)
        self._task = asyncio.create_task(self._run(), name="webhook-worker")

    def wake(self, *_: object) -> None:
        """Look for due rows now (called after a local enqueue)."""
        self._wake.set()

    async def drain(self, timeout: float) -> int:
        """Deliver what the outbox holds (shutdown): wait up to ``timeout`` seconds until no row is
        ``pending`` or ``sending``; returns how many are left (retried by the next process)."""
        recorded = asyncio.Event()
        forget = self.outbox.on_recorded(lambda *_: recorded.set())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while (left := await self.outbox.unfinished()) and loop.time() < deadline:
                recorded.clear()
                self.wake()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(recorded.wait(), min(self.poll_interval_seconds, deadline - loop.time()))
        finally:
            forget()
        return left

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            try:
                self._wake.clear()
                if await self.run_once() >= self.batch_size:
                    continue
                await self._sleep_until_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook worker iteration failed")
                await asyncio.sleep(self.poll_interval_seconds)

    async def _sleep_until_due(self) -> None:
        wait = self.poll_interval_seconds
        due = await self.outbox.next_due()
        if due is not None:
            wait = max(0.0, min(wait, (due - datetime.now(UTC)).total_seconds()))
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def run_once(self) -> int:
        """Claim one batch of due rows and deliver them; returns how many were attempted."""
        claimed = await self.outbox.claim_due(self.batch_size, self.lease_seconds)
        if claimed:
            await asyncio.gather(*(self._attempt(c) for c in claimed))
        return len(claimed)

    async def _attempt(self, claimed: Claimed) -> None:
        async with self._semaphore:
            outcome, status_code, error = await self.send(claimed)
        await self.outbox.record(claimed, outcome, status_code=status_code, error=error)

    async def send(self, claimed: Claimed) -> tuple[Outcome, int | None, str]:
        """One attempt: (outcome, HTTP status or None, error text). Never raises (except cancellation)."""
        if self._client is None:
            raise RuntimeError("WebhookWorker.start() has not been awaited")
        try:
            await check_destination(claimed.uri, allow_private=self.allow_private)
        except DestinationRefused as exc:
            return Outcome.PERMANENT, None, f"refused: {exc}"
        except OSError as exc:
            return Outcome.RETRY, None, f"transport error: cannot resolve host: {exc}"
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: claimed.id,
            SIGNATURE_HEADER: sign(claimed.secret, claimed.body),
            "X-VoIPBIN-Event-Type": claimed.event_type,
            "X-VoIPBIN-Delivery-Attempt": str(claimed.attempt),
        }
        started = utcnow()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._client.request(claimed.method or "POST", claimed.uri,
                                                      content=claimed.body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            return Outcome.RETRY, None, f"timeout: no response within {self.timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            return Outcome.RETRY, None, f"transport error: {type(exc).__name__}: {exc}"
        outcome = classify(response.status_code)
        error = "" if outcome is Outcome.DELIVERED else f"HTTP {response.status_code}: {response.text[:200]}"
        log.debug("webhook attempt", event_id=claimed.id, attempt=claimed.attempt, status=response.status_code,
                  ms=round((utcnow() - started).total_seconds() * 1000, 1))
        return outcome, response.status_code, error
