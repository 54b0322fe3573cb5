"""Process configuration, read from ``VOIPBIN_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from voipbin.auth.jwt_secret import INSECURE_DEFAULT_JWT_SECRET


class Settings(BaseSettings):
    """All settings of one voipbin process.

    Every field maps to ``VOIPBIN_<FIELD_NAME>`` (case-insensitive), e.g.
    ``VOIPBIN_DATABASE_URL=postgresql+asyncpg://user@127.0.0.1/voipbin``.
    """

    model_config = SettingsConfigDict(env_prefix="VOIPBIN_", extra="ignore")

    # storage
    database_url: str = Field(
        default="sqlite+aiosqlite:///./var/voipbin.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://...",
    )
    # events
    bus_url: str = Field(default="memory://", description="memory:// (in-process) or nats://host:port")
    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    public_url: str = Field(default="", description="Base URL printed to users; derived from host/port if empty")
    https_port: int = Field(default=0, description="Also serve the API over HTTPS on this port with a self-signed "
                                                   "certificate kept in the data dir (sandbox: 8443); 0: off")
    http_max_body_bytes: int = Field(default=1024 * 1024, description="Largest request body accepted (413 above)")
    # auth
    jwt_secret: str = Field(default=INSECURE_DEFAULT_JWT_SECRET,
                            description="HS256 key for login JWTs; serve needs a non-default one of >= 32 bytes")
    jwt_ttl_seconds: int = 7 * 24 * 3600
    ai_key_secret: str = Field(default="", description="Secret the AIs' engine keys are encrypted with at rest "
                                                       "(Fernet); empty: derived from jwt_secret")
    llm_first_token_timeout_seconds: float = Field(
        default=10.0, description="ai_talk: how long the LLM may take to its first token before the turn fails")
    llm_api_keys: str = Field(default="", description="Server-wide LLM keys, provider=key[,provider=key]: used "
                                                      "when an AI has no engine_key of its own (inline ai_talk)")
    llm_base_urls: str = Field(default="", description="LLM base URLs replacing the providers' defaults, "
                                                       "provider=url[,provider=url] (a gateway, a vLLM or "
                                                       "llama.cpp server as local=...)")
    auth_subject_cache_seconds: float = Field(
        default=10.0, description="How long a token's agent is trusted without a store look-up (dropped on change)")
    login_limit_per_username: int = Field(default=10, description="Failed logins per username per window -> 429")
    login_limit_per_source: int = Field(default=30, description="Login attempts per source address per window -> 429")
    login_limit_window_seconds: float = 300.0
    signup_otp_ttl_seconds: int = 600
    signup_max_attempts: int = 5
    signup_limit_per_address: int = Field(default=5, description="Signups per e-mail address per window -> 429")
    signup_limit_per_source: int = Field(default=20, description="Signups per source address per window -> 429")
    signup_limit_window_seconds: float = 3600.0
    # numbers
    number_pool: str | None = Field(
        default=None, description="E.164 numbers and ranges customers may claim (+15550100000-+15550100099,"
                                  "+442071234567); serve: empty unless set, sandbox: +15550100000-+15550109999; "
                                  "unset in embedded use: any number")
    smtp_url: str = Field(default="", description="smtp://user:pass@host:port; empty logs mails instead")
    smtp_from: str = "VoIPBIN <noreply@voipbin.test>"
    # webhooks
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=5.0, description="Whole-attempt limit of one webhook request")
    webhook_max_attempts: int = Field(default=8, description="Attempts before a delivery is marked failed")
    webhook_retry_base_seconds: float = Field(default=1.0, description="First retry delay; doubles per attempt")
    webhook_retry_max_seconds: float = Field(default=60.0, description="Cap of the retry delay")
    webhook_poll_interval_seconds: float = Field(default=1.0, description="Outbox poll period of the worker")
    webhook_worker: bool = Field(default=True, description="Run the webhook delivery worker in this process")
    # WebSocket
    ws_send_queue_size: int = Field(default=1024, description="Frames queued per connection before 1013")
    ws_send_queue_bytes: int = Field(default=8 * 1024 * 1024,
                                     description="Bytes queued per WebSocket connection before it is closed 1013")
    # SIP
    sip_domain: str = "voipbin.test"
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    sip_advertised_host: str = Field(default="", description="Address written in Via/Contact/SDP; default sip_host")
    sip_enabled: bool = Field(default=True, description="Run the SIP stack (registrar, calls) in this process")
    sip_nonce_secret: str = Field(default="", description="HMAC key of digest nonces; random per process if empty")
    sip_domains: str = Field(default="", description="Comma-separated registrar domains (<customer_id>.registrar.<d>); "
                                                     "default '<sip_domain>,voipbin.net'")
    sip_allow_private: bool = Field(default=False, description="Allow sip: destinations on loopback/private/"
                                                              "link-local addresses (the sandbox sets it)")
    sip_dns_timeout_seconds: float = Field(default=4.0, description="A sip: destination's A/SRV lookup limit")
    sip_tcp_idle_timeout_seconds: float = Field(default=3900.0, description="A SIP TCP connection silent this long "
                                                                           "is closed (above the longest registration)")
    sip_tcp_first_message_timeout_seconds: float = Field(default=10.0, description="An inbound SIP TCP connection "
                                                                                   "without a first message is closed")
    sip_tcp_max_connections_per_source: int = Field(default=32, description="Inbound SIP TCP connections per "
                                                                           "source IP")
    sip_trusted_proxies: str = Field(default="", description="Comma-separated IP addresses of the SIP edge proxies "
                                     "(Kamailio) in front of this pod: no per-source rate limit for them, and the "
                                     "received= of their Path is the phone's address for the digest checks")
    rtp_port_min: int = 10000
    rtp_port_max: int = 20000
    # calls
    call_ring_timeout_seconds: float = Field(default=60.0, description="Outgoing call unanswered -> dialout")
    rtp_timeout_seconds: float = Field(default=30.0, description="No RTP from an answered endpoint -> hangup")
    trunk_uri: str = Field(default="", description="SIP trunk for tel destinations, e.g. sip:trunk.example:5060")
    trunk_username: str = ""
    trunk_password: str = ""
    trunk_allowed_hosts: str = Field(
        default="", description="Comma-separated host or host:port sources trusted as the trunk for inbound "
                                "INVITEs (no digest); default: the trunk URI's host")
    sandbox_virtual_pstn: bool = Field(
        default=False, description="tel destinations reach the built-in virtual phone when no trunk is set "
                                   "(voipbin sandbox turns it on)")
    # scale-out (issue 19): what this process runs, and its name among the pods
    role: Literal["all", "api", "media", "worker", "speech"] = Field(
        default="all", description="all: everything in one process; api: REST + WebSocket (no SIP, no speech "
                                   "models); media: SIP, RTP, speech and the calls it holds (no HTTP); worker: "
                                   "webhook delivery and ending what dead pods held (no SIP, no HTTP); speech: "
                                   "whisper and piper/kokoro inference for media pods over NATS (issue 20)")
    speech_remote: Literal["off", "nats"] = Field(
        default="off", description="off: a media pod runs speech inference in its own worker processes; nats: "
                                   "whisper decodes and TTS sentences go to the speech pods (--role speech) over "
                                   "the bus (VAD stays local)")
    speech_remote_timeout_seconds: float = Field(
        default=20.0, description="How long a media pod waits for a speech pod's answer to one decode or one "
                                  "sentence (seconds) before the job fails as a local worker's failure would")
    pod_command_timeout_seconds: float = Field(
        default=5.0, description="How long a command routed to the pod holding a call waits for it (then 503)")
    # media pod
    pod_id: str = Field(default_factory=lambda: f"pod-{secrets.token_hex(6)}",
                        description="Opaque name of this media process (default pod-<12 random hex digits>), "
                                    "written as pod_id on the speakings/transcribes it holds")
    pod_heartbeat_seconds: float = Field(default=2.0, description="How often this process writes its pod heartbeat")
    pod_expire_seconds: float = Field(default=8.0, description="A pod silent this long is dead: what it held "
                                                               "(calls, speakings, transcribes) is ended by a worker "
                                                               "within one more heartbeat (default: <= 10 s)")
    drain_grace_seconds: float = Field(default=10.0, description="SIGTERM: seconds to hang up calls, stop sessions "
                                                                 "and flush webhooks before exiting")
    # logging
    log_format: str = Field(default="console", description="console | json")
    log_level: str = "INFO"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.api_host}:{self.api_port}"

    def data_dir(self) -> Path:
        """Where this process keeps its files: the SQLite file's folder, else ``./var``."""
        path = self.sqlite_path()
        return path.parent if path is not None else Path("var")

    def sqlite_path(self) -> Path | None:
        """The SQLite file of ``database_url``, or None for other databases."""
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url[len(prefix) :])
        return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
