"""Composition root: builds the services of one process from its Settings and owns their lifecycle."""

from __future__ import annotations

import asyncio
import gc
import secrets
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from voipbin.auth.accesskeys import AccesskeyService
from voipbin.auth.identity import PERMISSION_CUSTOMER_ADMIN
from voipbin.auth.login import LoginService
from voipbin.auth.mail import Mailer, make_mailer
from voipbin.auth.signup import SignupService
from voipbin.auth.subjects import AgentDirectory
from voipbin.auth.tokens import TokenIssuer
from voipbin.config import Settings
from voipbin.customers.service import CustomerService
from voipbin.events.bus import make_bus
from voipbin.events.memory import MemoryBus
from voipbin.events.model import Event
from voipbin.events.outbox import Outbox, OutboxBus
from voipbin.events.retry import RetryPolicy
from voipbin.events.topics import ALL_EVENTS
from voipbin.events.webhooks import WebhookWorker
from voipbin.events.websocket_hub import WebSocketHub
from voipbin.calls.activeflow import FlowContext
from voipbin.calls.leg import Originator
from voipbin.calls.manager import CallManager, CallSettings
from voipbin.calls.recovery import Reconciler
from voipbin.extensions.registrar import DatabaseLocationService, ExtensionCredentials, RegistrationEvents
from voipbin.extensions.service import ExtensionService
from voipbin.flows.service import FlowService
from voipbin.media.ports import PortAllocator
from voipbin.sip.registrar import Registrar
from voipbin.sip.stack import SipStack, StackConfig
from voipbin.speech.remote import SpeechClient, SpeechServer
from voipbin.speech.stt.registry import SttRegistry
from voipbin.speech.tts.registry import TtsRegistry
from voipbin.ai.agent import AiAgents, LlmFactory
from voipbin.ai.service import AiService
from voipbin.conferences.service import ConferenceService
from voipbin.speakings.service import SpeakingService
from voipbin.transcribes.service import TranscribeService
from voipbin.numbers.pool import NumberPool
from voipbin.numbers.service import NumberService
from voipbin.pods.commands import Commands
from voipbin.pods.directory import MEDIA_ROLES, PodDirectory
from voipbin.pods.handlers import register_handlers
from voipbin.pods.router import PodRouter
from voipbin.store.db import make_engine, make_sessionmaker
from voipbin.store.models import Agent, Customer, Number

log = structlog.get_logger(__name__)


@dataclass
class SeedResult:
    customer_id: str
    username: str
    password: str
    number: str


class Runtime:
    """Everything one process runs, built from ``settings``; ``start``/``stop`` bracket its life.

    ``settings.role`` (issue 19) picks what runs: ``all`` everything; ``api`` no SIP and no speech
    models (commands go to the pods holding calls, new calls to a media pod); ``media`` SIP, RTP,
    speech and the calls it holds; ``worker`` webhook delivery and the reaping of dead pods;
    ``speech`` (issue 20) whisper and piper/kokoro jobs for media pods with ``speech_remote=nats``
    (:mod:`voipbin.speech.remote`). Every role heartbeats its pod row and answers the pod commands
    (:mod:`voipbin.pods`).
    """

    def __init__(self, settings: Settings, *, mailer: Mailer | None = None,
                 originator: Originator | None = None) -> None:
        self.settings = settings
        self.has_media = settings.role in MEDIA_ROLES  # SIP, RTP and speech run here
        self.runs_webhooks = settings.webhook_worker and settings.role in ("all", "worker")
        self.engine: AsyncEngine = make_engine(settings.database_url)
        self.sessions: async_sessionmaker[AsyncSession] = make_sessionmaker(self.engine)
        # events: services publish on ``bus`` (outbox write for webhooks, then the memory/NATS bus)
        self.outbox = Outbox(self.sessions, policy=RetryPolicy(
            base_seconds=settings.webhook_retry_base_seconds, max_delay_seconds=settings.webhook_retry_max_seconds,
            max_attempts=settings.webhook_max_attempts))
        events = make_bus(settings.bus_url)
        self.bus = OutboxBus(events, self.outbox)
        self.hub = WebSocketHub(self.bus, queue_size=settings.ws_send_queue_size,
                                queue_bytes=settings.ws_send_queue_bytes)
        self.webhooks = WebhookWorker(
            self.outbox, timeout_seconds=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private, poll_interval_seconds=settings.webhook_poll_interval_seconds,
            release_leases_on_start=settings.sqlite_path() is not None)
        self.bus.on_enqueued(self.webhooks.wake)
        self.tokens = TokenIssuer(settings.jwt_secret, settings.jwt_ttl_seconds)
        self.customers = CustomerService(self.sessions, self.bus)
        self.accesskeys = AccesskeyService(self.sessions, self.bus)
        self.agents = AgentDirectory(self.sessions, ttl_seconds=settings.auth_subject_cache_seconds)
        self.login = LoginService(self.sessions, self.tokens, per_username=settings.login_limit_per_username,
                                  per_source=settings.login_limit_per_source,
                                  window_seconds=settings.login_limit_window_seconds)
        self.signup = SignupService(
            self.sessions, self.customers, self.accesskeys,
            mailer or make_mailer(settings.smtp_url, settings.smtp_from),
            ttl_seconds=settings.signup_otp_ttl_seconds, max_attempts=settings.signup_max_attempts,
            per_address=settings.signup_limit_per_address, per_source=settings.signup_limit_per_source,
            window_seconds=settings.signup_limit_window_seconds,
        )
        self.numbers = NumberService(self.sessions, self.bus, pool=None if settings.number_pool is None
                                     else NumberPool.parse(settings.number_pool))
        self.extensions = ExtensionService(self.sessions, self.bus)
        # speech inference: in this process's workers, or on the speech pods (issue 20)
        shared = not isinstance(events, MemoryBus)  # other pods may hold calls and rooms (issue 19)
        self.speech_client: SpeechClient | None = None
        if settings.speech_remote == "nats" and shared and settings.role in MEDIA_ROLES:
            self.speech_client = SpeechClient(events, timeout_s=settings.speech_remote_timeout_seconds)  # type: ignore[arg-type]
        elif settings.speech_remote == "nats" and settings.role in MEDIA_ROLES:
            log.warning("VOIPBIN_SPEECH_REMOTE=nats needs a NATS bus (VOIPBIN_BUS_URL): speech runs in this process")
        self.tts = TtsRegistry(remote=self.speech_client)
        self.stt = SttRegistry(remote=self.speech_client)
        self.speech_server: SpeechServer | None = None
        if settings.role == "speech":
            self.speech_server = SpeechServer(events, pod_id=settings.pod_id, stt=self.stt, tts=self.tts)  # type: ignore[arg-type]
        self.flows = FlowService(self.sessions, self.bus, tts=self.tts, stt=self.stt)  # checks flow languages
        # SIP: registrar over the extensions and the location table, INVITE user agent for calls
        self.location = DatabaseLocationService(self.sessions)
        # digest credentials kept in memory (issue 21: a REGISTER must not read the store); dropped on any
        # extension change event, at the latest after 5 minutes
        self.credentials = ExtensionCredentials(self.extensions, ttl_s=300)
        # the SIP edge (Kamailio): phones behind it share its address; their own is in the Path's received=
        trusted_proxies = [host.strip() for host in settings.sip_trusted_proxies.split(",") if host.strip()]
        self.registrar = Registrar(
            sip_domain=settings.sip_domain, credentials=self.credentials,
            location=self.location, on_binding_change=RegistrationEvents(self.extensions),
            nonce_secret=(settings.sip_nonce_secret or secrets.token_hex(32)).encode(),
            extra_domains=(settings.sip_domains or f"{settings.sip_domain},voipbin.net").split(","),
            trusted_proxies=trusted_proxies)
        advertised = settings.sip_advertised_host or settings.sip_host
        self.sip = SipStack(StackConfig(host=settings.sip_host, port=settings.sip_port, domain=settings.sip_domain,
                                        advertised_host=advertised,
                                        tcp_idle_timeout_s=settings.sip_tcp_idle_timeout_seconds,
                                        tcp_first_message_timeout_s=settings.sip_tcp_first_message_timeout_seconds,
                                        tcp_max_connections_per_source=settings.sip_tcp_max_connections_per_source,
                                        trusted_sources=frozenset(trusted_proxies)))
        self.sip.route("REGISTER", self.registrar.on_register)
        self.rtp_ports = PortAllocator(settings.rtp_port_min, settings.rtp_port_max)
        self.ua = None
        if originator is None:  # real SIP legs; tests may pass a scripted originator
            from voipbin.calls.sip_leg import SipOriginator, trunk_hosts
            from voipbin.sip.locate import Locator
            from voipbin.sip.ua import UserAgent

            self.ua = UserAgent(self.sip)
            originator = SipOriginator(
                self.ua, rtp_host=settings.sip_host, advertised_host=advertised, ports=self.rtp_ports,
                locator=Locator(allow_private=settings.sip_allow_private, timeout_s=settings.sip_dns_timeout_seconds),
                trusted_hosts=trunk_hosts(settings.trunk_uri))
        flow_context = FlowContext(tts=self.tts)
        self.calls = CallManager(
            self.sessions, self.bus,
            settings=CallSettings(sip_domain=settings.sip_domain,
                                  ring_timeout_seconds=settings.call_ring_timeout_seconds,
                                  rtp_timeout_seconds=settings.rtp_timeout_seconds, trunk_uri=settings.trunk_uri,
                                  trunk_username=settings.trunk_username, trunk_password=settings.trunk_password,
                                  pod_id=settings.pod_id),
            numbers=self.numbers, extensions=self.extensions, flows=self.flows, location=self.location,
            originator=originator,
            flow_context=flow_context)
        # conference rooms mixed in this process; speakings and transcribes on its calls and rooms,
        # stopped when a call or a room ends
        self.pod_directory = PodDirectory(self.sessions, expire_seconds=settings.pod_expire_seconds)
        self.conferences = ConferenceService(self.sessions, self.bus, pod_id=settings.pod_id,
                                             pod_alive=self.pod_directory.alive if shared else None)
        self.transcribes = TranscribeService(self.sessions, self.bus, calls=self.calls, conferences=self.conferences,
                                             stt=self.stt, pod_id=settings.pod_id)
        self.speakings = SpeakingService(self.sessions, self.bus, calls=self.calls, conferences=self.conferences,
                                         tts=self.tts, pod_id=settings.pod_id)
        flow_context.transcribes = self.transcribes
        flow_context.conferences = self.conferences
        # the managed AI: /ais, aicalls and the ai_talk action's turn loop
        self.ais = AiService(self.sessions, self.bus, secret=settings.ai_key_secret or settings.jwt_secret,
                             pod_id=settings.pod_id)
        flow_context.ai = AiAgents(self.ais, tts=self.tts, stt=self.stt, llm=LlmFactory(
            api_keys=settings.llm_api_keys, base_urls=settings.llm_base_urls,
            first_token_timeout_s=settings.llm_first_token_timeout_seconds))
        # inbound INVITEs (trunk numbers, extensions dialling) on the same user agent
        if self.ua is not None:
            from voipbin.calls.inbound import InboundCalls, parse_allowed_hosts

            self.inbound = InboundCalls(
                self.calls, numbers=self.numbers, extensions=self.extensions, flows=self.flows,
                registrar=self.registrar, ports=self.rtp_ports, rtp_host=settings.sip_host,
                advertised_host=advertised,
                trunk_hosts=parse_allowed_hosts(settings.trunk_allowed_hosts, settings.trunk_uri))
            self.ua.on_incoming_invite = self._incoming_invite
            if shared:  # a call joins a room mixed on another live pod through a SIP leg between pods
                from voipbin.pods.legs import PodLegs

                self.inbound.pod_legs = PodLegs(
                    self.pod_directory, originator, pod_id=settings.pod_id, ports=self.rtp_ports,
                    rtp_host=settings.sip_host, advertised_host=advertised,
                    rtp_timeout_s=min(settings.rtp_timeout_seconds, settings.pod_expire_seconds))  # RTP always flows on a leg
                self.conferences.use_pod_legs(self.inbound.pod_legs)
        # restart recovery: pod heartbeats; calls and sessions of dead pods are ended
        self.recovery = Reconciler(self.sessions, self.bus, pod_id=settings.pod_id, role=settings.role,
                                   reaps=settings.role in ("all", "worker"), describe=self._pod_state,
                                   heartbeat_seconds=settings.pod_heartbeat_seconds,
                                   expire_seconds=settings.pod_expire_seconds,
                                   single_process=settings.sqlite_path() is not None)
        self.calls.reconciler = self.recovery
        # commands for what a pod holds run on that pod (request/reply on the bus; here on memory://)
        self.commands = Commands(settings.pod_id, events if shared else None,  # type: ignore[arg-type]
                                 timeout_s=settings.pod_command_timeout_seconds)
        register_handlers(self.commands, self)
        self.pods = PodRouter(self.commands, self.pod_directory, has_media=self.has_media)
        # the sandbox's virtual PSTN (voipbin.sandbox.pstn): with no trunk, tel destinations reach a virtual phone
        self.virtual_pstn = None
        if settings.sandbox_virtual_pstn and not settings.trunk_uri and self.ua is not None and self.has_media:
            from voipbin.sandbox.pstn import VirtualPstn

            self.virtual_pstn = VirtualPstn(host="127.0.0.1", callers=frozenset({"127.0.0.1", settings.sip_host}),
                                            recordings_dir=settings.data_dir() / "virtual-phone")
        self.calls.add_end_listener(self.speakings.on_call_end)
        self.calls.add_end_listener(self.transcribes.on_call_end)
        self.calls.add_end_listener(self.conferences.on_call_end)
        self.conferences.add_end_listener(self.speakings.on_conference_end)
        self.conferences.add_end_listener(self.transcribes.on_conference_end)

    async def start(self) -> None:
        await self.bus.start()
        # another process's write (or registration) drops this process's cached reads
        await self.bus.subscribe("customer_id:*:extension", self._extension_changed)
        # an agent or customer change (any process) is seen by the next request's token check
        await self.bus.subscribe("customer_id:*:agent", lambda e: self.agents.invalidate(e.resource_id))
        await self.bus.subscribe("customer_id:*:customer", lambda e: self.agents.invalidate())
        await self.hub.start()
        await self.recovery.reconcile_at_start()  # end what a dead process (this one before a restart) left live
        await self.commands.start()
        if self.speech_server is not None:
            await self.speech_server.start()
        if self.runs_webhooks:
            await self.webhooks.start()
            if self.settings.role == "worker":  # rows are written by other pods: their events wake the delivery
                await self.bus.subscribe(ALL_EVENTS, self.webhooks.wake)
        if self.settings.sip_enabled and self.has_media:
            await self.sip.start()
            await self.registrar.start()
        if self.virtual_pstn is not None:
            self.calls.settings.trunk_uri = await self.virtual_pstn.start()
        await self.recovery.start(reconcile=False)  # the pod row, once everything runs (other pods place calls here)

    def _pod_state(self) -> dict[str, Any]:
        """What this pod's heartbeat records beside its role: where the SIP edge reaches it, its live calls."""
        if self.speech_server is not None:  # a speech pod's load: the jobs it runs now
            return {"sip_host": "", "sip_port": 0, "load": self.speech_server.in_flight}
        if not (self.has_media and self.settings.sip_enabled):
            return {"sip_host": "", "sip_port": 0, "load": 0}
        return {"sip_host": self.settings.sip_advertised_host or self.settings.sip_host,
                "sip_port": self.sip.port or self.settings.sip_port, "load": self.calls.live_count}

    def _extension_changed(self, event: Event) -> None:
        """Any process changed an extension: drop this process's cached reads and credentials of it."""
        self.extensions.invalidate(event.resource_id)
        self.credentials.invalidate(event.resource_id, event.data)  # kept when the row is unchanged

    async def warm_up(self) -> None:
        """Load the default TTS voice and STT model now, so the first call does not wait for them
        (on a pod with media only: an ``api`` or ``worker`` pod loads no speech model; a ``speech`` pod
        loads piper's voice and whisper's model, the engines it serves)."""
        engines: tuple[Any, ...] = (self.tts.get(), self.stt.get()) if self.has_media else ()
        if self.speech_server is not None:
            engines = (self.speech_server,)  # piper and whisper, without stream VAD workers
        for engine in engines:
            warm = getattr(engine, "warm_up", None)
            if warm is not None:
                try:
                    await warm()
                except Exception:  # a cloud default without network: the first request will say why
                    log.warning("speech warm-up failed", engine=type(engine).__name__, exc_info=True)
        if self.has_media:
            log.info("speech engines warm", engines=[type(e).__name__ for e in engines])
        # the models' many long-lived objects need not be scanned by every full collection again:
        # without this, a gen-2 GC pass stalls the event loop for tens of milliseconds
        gc.collect()
        gc.freeze()

    async def _incoming_invite(self, incoming: Any) -> None:
        """``UserAgent.on_incoming_invite``: 503 with Retry-After while draining (RFC 3261 §21.5.4)."""
        if not self.calls.accepting:
            incoming.reject(503, "Service Unavailable", [("Retry-After", "30")])
            return
        await self.inbound.on_incoming_invite(incoming)

    async def drain(self, grace_seconds: float | None = None) -> float:
        """SIGTERM: refuse new calls (503), hang up every live call (BYE/CANCEL) and wait for the ends,
        stop speakings and transcribes (their events published), then deliver the webhook outbox,
        all within ``grace_seconds`` (default ``drain_grace_seconds``). Returns the seconds it took."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        grace = self.settings.drain_grace_seconds if grace_seconds is None else grace_seconds
        deadline = started + grace
        self.calls.accepting = False
        log.info("draining", live_calls=self.calls.live_count, grace_seconds=grace)
        try:
            async with asyncio.timeout(grace):
                if self.speech_server is not None:  # new jobs go to the other speech pods; these finish
                    await self.speech_server.stop(max(0.1, deadline - loop.time()))
                await self.calls.hangup_all(timeout=max(0.1, deadline - loop.time()))
                await self.conferences.close()
                await self.speakings.close()
                await self.transcribes.close()
                await self.bus.flush()
                if self.runs_webhooks:
                    await self.webhooks.drain(max(0.0, deadline - loop.time()))
                await self.hub.stop()  # WebSocket clients: 1001 going away, after the last events
        except TimeoutError:
            log.warning("drain grace period over; exiting with work left", live_calls=self.calls.live_count)
        took = loop.time() - started
        log.info("drained", seconds=round(took, 3))
        return took

    async def stop(self) -> None:
        self.calls.accepting = False
        if self.speech_server is not None:
            await self.speech_server.stop()
        await self.calls.stop()
        if self.virtual_pstn is not None:
            await self.virtual_pstn.stop()
        await self.conferences.close()
        await self.speakings.close()
        await self.transcribes.close()
        await self.registrar.stop()
        await self.sip.stop()
        await self.tts.aclose()
        await self.stt.aclose()
        await self.webhooks.stop()
        await self.hub.stop()
        await self.commands.stop()
        await self.bus.close()
        await self.recovery.stop()
        await self.engine.dispose()

    async def seed_sandbox(self, *, username: str = "admin@localhost", password: str = "admin@localhost",
                           number: str = "+15550100000") -> SeedResult:
        """Idempotently add the sandbox admin (customer admin), its customer and one owned number."""
        async with self.sessions() as db, db.begin():
            agent = await db.scalar(select(Agent).where(Agent.username == username))
            if agent is None:
                customer = await self.customers.create(db, email=username, name="Sandbox",
                                                       detail="voipbin sandbox customer", email_verified=True)
                agent = await self.login.add_agent(db, customer_id=customer.id, username=username,
                                                   password=password, permission=PERMISSION_CUSTOMER_ADMIN,
                                                   name="Sandbox admin")
            customer_id = agent.customer_id
            owned = await db.scalar(select(Number).where(
                Number.customer_id == customer_id, Number.tm_delete.is_(None)).limit(1))
            if owned is None:
                owned = await self.numbers.add_in(db, Number(
                    customer_id=customer_id, number=number, name="sandbox number",
                    detail="owned by the sandbox customer"))
            assert await db.get(Customer, customer_id) is not None
            return SeedResult(customer_id, username, password, owned.number)
