"""ORM models. Table changes go through an Alembic migration in ``store/migrations/versions``.

IDs are UUID strings (36 chars); every resource has ``tm_create``/``tm_update``/``tm_delete``
(soft delete sets ``tm_delete``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voipbin.common.clock import new_id, utcnow
from voipbin.store.types import UTCDateTime

ID = String(36)


class Base(DeclarativeBase):
    pass


class Timestamps:
    tm_create: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    tm_update: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    tm_delete: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Customer(Timestamps, Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(320), unique=True)
    phone_number: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    webhook_method: Mapped[str] = mapped_column(String(8), default="")
    webhook_uri: Mapped[str] = mapped_column(Text, default="")
    webhook_secret: Mapped[str] = mapped_column(String(64))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")
    identity_verification_status: Mapped[str] = mapped_column(String(16), default="none")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)


class Agent(Timestamps, Base):
    """A login of a customer (username/password, permission bit set as upstream's agents)."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    username: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    permission: Mapped[int] = mapped_column(Integer, default=0)


class Accesskey(Timestamps, Base):
    __tablename__ = "accesskeys"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    tm_expire: Mapped[datetime] = mapped_column(UTCDateTime)


class Signup(Base):
    """A pending headless signup: the OTP mailed for ``temp_token`` (stored hashed)."""

    __tablename__ = "signups"

    temp_token: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    code_hash: Mapped[str] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    tm_expire: Mapped[datetime] = mapped_column(UTCDateTime)
    tm_create: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tm_complete: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Number(Timestamps, Base):
    __tablename__ = "numbers"
    # one active owner per number: unique among rows not soft-deleted
    __table_args__ = (Index("uq_numbers_number_active", "number", unique=True,
                            sqlite_where=text("tm_delete IS NULL"), postgresql_where=text("tm_delete IS NULL")),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16), default="normal")
    call_flow_id: Mapped[str] = mapped_column(String(36), default="")
    message_flow_id: Mapped[str] = mapped_column(String(36), default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    t38_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    emergency_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    tm_purchase: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    tm_renew: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Extension(Timestamps, Base):
    __tablename__ = "extensions"
    __table_args__ = (Index("uq_extensions_customer_extension_active", "customer_id", "extension", unique=True,
                            sqlite_where=text("tm_delete IS NULL"), postgresql_where=text("tm_delete IS NULL")),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text, default="")
    extension: Mapped[str] = mapped_column(String(64))
    # SIP digest needs the secret itself (RFC 8760 SHA-256 and MD5 HA1 both derive from it);
    # upstream returns it in the resource as well.
    password: Mapped[str] = mapped_column(String(255))
    direct_hash: Mapped[str] = mapped_column(String(64), default="")


class OutboxEntry(Base):
    """One webhook delivery of one event to its customer's ``webhook_uri`` (the durable outbox).

    ``status``: ``pending`` (due at ``tm_next_attempt``) -> ``sending`` (claimed by a worker until
    ``tm_next_attempt``, its lease) -> ``delivered`` | ``pending`` (retry later) | ``failed``.
    ``body`` holds the exact bytes sent (and signed) on every attempt.
    """

    __tablename__ = "event_outbox"
    __table_args__ = (Index("ix_event_outbox_due", "status", "tm_next_attempt"),
                      Index("ix_event_outbox_resource_seq", "resource_key", "seq"))

    id: Mapped[str] = mapped_column(ID, primary_key=True)  # the event id (X-VoIPBIN-Event-Id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    uri: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    tm_next_attempt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tm_create: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tm_update: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    tm_finish: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # delivery order: a row waits for the unfinished rows of the same resource with a lower seq
    resource_key: Mapped[str] = mapped_column(String(200), default="", server_default="")
    seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Pod(Base):
    """A running process (``Settings.pod_id``) and its last heartbeat; what a pod held is reconciled
    (calls hung up, sessions ended) once its heartbeat is older than the expiry."""

    __tablename__ = "pods"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="all")  # api | media | worker | all
    # a pod with SIP (media, all): its advertised SIP address, for the SIP edge (Kamailio) to reach it
    sip_host: Mapped[str] = mapped_column(String(255), default="", server_default="")
    sip_port: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    load: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # live calls at the last beat
    tm_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    tm_create: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SipBinding(Base):
    """The SIP location table (RFC 3261 §10): one Contact bound to an AOR until ``tm_expire``.

    Lives in the store so that any process (another media pod) can find a softphone.
    """

    __tablename__ = "sip_bindings"
    __table_args__ = (Index("uq_sip_bindings_aor_contact", "aor", "contact", unique=True),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    aor: Mapped[str] = mapped_column(String(320), index=True)
    contact: Mapped[str] = mapped_column(Text)
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    extension_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    user: Mapped[str] = mapped_column(String(64), default="")
    received_host: Mapped[str] = mapped_column(String(64))
    received_port: Mapped[int] = mapped_column(Integer)
    transport: Mapped[str] = mapped_column(String(8))
    call_id: Mapped[str] = mapped_column(String(255))
    cseq: Mapped[int] = mapped_column(Integer)
    user_agent: Mapped[str] = mapped_column(Text, default="")
    q: Mapped[str] = mapped_column(String(8), default="")
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    # RFC 3327 Path values (the edge proxy it registered through), one per line; "" when direct
    path: Mapped[str] = mapped_column(Text, default="", server_default="")
    tm_create: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Flow(Timestamps, Base):
    """A list of actions. ``persist`` False marks the ephemeral flow of a call made with inline actions."""

    __tablename__ = "flows"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(String(16), default="flow")
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    persist: Mapped[bool] = mapped_column(Boolean, default=True)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Call(Timestamps, Base):
    """One SIP dialog between us and one endpoint (DESIGN.md terms)."""

    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    flow_id: Mapped[str] = mapped_column(String(36), default="")
    activeflow_id: Mapped[str] = mapped_column(String(36), default="")
    type: Mapped[str] = mapped_column(String(16), default="flow")
    groupcall_id: Mapped[str] = mapped_column(String(36), default="", index=True)
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    destination: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="dialing", index=True)
    action: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    direction: Mapped[str] = mapped_column(String(16), default="outgoing")
    mute_direction: Mapped[str] = mapped_column(String(8), default="")
    hangup_by: Mapped[str] = mapped_column(String(8), default="")
    hangup_reason: Mapped[str] = mapped_column(String(16), default="")
    pod_id: Mapped[str] = mapped_column(String(128), default="", server_default="", index=True)  # its process
    # internal: SIP Call-ID, pod id, RTP addresses (not part of the API shape)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tm_ringing: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    tm_progressing: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    tm_hangup: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Groupcall(Timestamps, Base):
    """The set of calls made to ring several endpoints (an extension's contacts)."""

    __tablename__ = "groupcalls"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    flow_id: Mapped[str] = mapped_column(String(36), default="")
    status: Mapped[str] = mapped_column(String(16), default="progressing")
    source: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    destinations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    ring_method: Mapped[str] = mapped_column(String(16), default="ring_all")
    answer_method: Mapped[str] = mapped_column(String(16), default="hangup_others")
    answer_call_id: Mapped[str] = mapped_column(String(36), default="")
    call_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class Activeflow(Timestamps, Base):
    """One execution of a flow's actions on a call."""

    __tablename__ = "activeflows"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    flow_id: Mapped[str] = mapped_column(String(36), default="")
    status: Mapped[str] = mapped_column(String(16), default="running")
    reference_type: Mapped[str] = mapped_column(String(16), default="call")
    reference_id: Mapped[str] = mapped_column(String(36), default="", index=True)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    current_action: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    forward_action_id: Mapped[str] = mapped_column(String(36), default="")
    executed_actions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Transcribe(Timestamps, Base):
    """A live transcription of a call's audio (``TranscribeManagerTranscribe``)."""

    __tablename__ = "transcribes"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    activeflow_id: Mapped[str] = mapped_column(String(36), default="")
    on_end_flow_id: Mapped[str] = mapped_column(String(36), default="")
    reference_type: Mapped[str] = mapped_column(String(16), default="call")
    reference_id: Mapped[str] = mapped_column(String(36), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="progressing")
    language: Mapped[str] = mapped_column(String(35), default="")
    direction: Mapped[str] = mapped_column(String(8), default="both")
    # the STT engine used (whisper, gcp, aws); the API shows only the spec's values
    provider: Mapped[str] = mapped_column(String(16), default="")
    pod_id: Mapped[str] = mapped_column(String(128), default="")


class Transcript(Timestamps, Base):
    """One final text segment of a transcribe (``TranscribeManagerTranscript``)."""

    __tablename__ = "transcripts"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    transcribe_id: Mapped[str] = mapped_column(ID, ForeignKey("transcribes.id"), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    #: the call whose audio this is: the transcribed call, or in a conference the participant who spoke
    #: ("" for what the conference's own speakings said)
    call_id: Mapped[str] = mapped_column(String(36), default="", server_default="")
    message: Mapped[str] = mapped_column(Text, default="")
    tm_transcript: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Speaking(Timestamps, Base):
    """A streaming TTS session injected into a call (``TtsManagerSpeaking``)."""

    __tablename__ = "speakings"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    reference_type: Mapped[str] = mapped_column(String(16), default="call")
    reference_id: Mapped[str] = mapped_column(String(36), default="", index=True)
    language: Mapped[str] = mapped_column(String(35), default="")
    provider: Mapped[str] = mapped_column(String(16), default="")
    voice_id: Mapped[str] = mapped_column(String(128), default="")
    direction: Mapped[str] = mapped_column(String(8), default="out")
    status: Mapped[str] = mapped_column(String(16), default="initiating")
    pod_id: Mapped[str] = mapped_column(String(128), default="")


class Conference(Timestamps, Base):
    """A conference room (``ConferenceManagerConference``): participants hear each other."""

    __tablename__ = "conferences"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(String(16), default="conference")
    status: Mapped[str] = mapped_column(String(16), default="starting", index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timeout: Mapped[int] = mapped_column(Integer, default=0)  # seconds; 0: none
    pre_flow_id: Mapped[str] = mapped_column(String(36), default="")
    post_flow_id: Mapped[str] = mapped_column(String(36), default="")
    conferencecall_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # joining or joined now
    recording_id: Mapped[str] = mapped_column(String(36), default="")
    recording_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    transcribe_id: Mapped[str] = mapped_column(String(36), default="")
    transcribe_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    pod_id: Mapped[str] = mapped_column(String(128), default="")  # the process that mixes it
    tm_end: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Conferencecall(Timestamps, Base):
    """One participant of a conference (``ConferenceManagerConferencecall``): a call in the room."""

    __tablename__ = "conferencecalls"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    activeflow_id: Mapped[str] = mapped_column(String(36), default="")
    conference_id: Mapped[str] = mapped_column(ID, ForeignKey("conferences.id"), index=True)
    reference_type: Mapped[str] = mapped_column(String(16), default="call")
    reference_id: Mapped[str] = mapped_column(String(36), default="", index=True)
    status: Mapped[str] = mapped_column(String(16), default="joining")


class Ai(Timestamps, Base):
    """A managed AI voice agent's configuration (``AIManagerAI``). The provider key is stored
    encrypted (``engine_key_encrypted``, Fernet) and never returned; ``engine_key_hint`` is its last 4 characters."""

    __tablename__ = "ais"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(16), default="normal")
    engine_model: Mapped[str] = mapped_column(String(128), default="")
    parameter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    engine_key_encrypted: Mapped[str] = mapped_column(Text, default="")
    engine_key_hint: Mapped[str] = mapped_column(String(8), default="")
    rag_id: Mapped[str] = mapped_column(String(36), default="")
    init_prompt: Mapped[str] = mapped_column(Text, default="")
    tts_type: Mapped[str] = mapped_column(String(32), default="")
    tts_voice_id: Mapped[str] = mapped_column(String(128), default="")
    stt_type: Mapped[str] = mapped_column(String(32), default="")
    stt_language: Mapped[str] = mapped_column(String(35), default="")
    vad_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    smart_turn_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_aicall_audit_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    tool_names: Mapped[list[str]] = mapped_column(JSON, default=list)


class Aicall(Timestamps, Base):
    """One AI conversation on a call (``AIManagerAIcall``); its turns are :class:`Aimessage` rows.
    ``meta`` (API ``metadata``) holds the prompt snapshot, token usage and per-turn latencies."""

    __tablename__ = "aicalls"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    assistance_type: Mapped[str] = mapped_column(String(16), default="ai")
    assistance_id: Mapped[str] = mapped_column(String(36), default="")
    ai_engine_model: Mapped[str] = mapped_column(String(128), default="")
    ai_tts_type: Mapped[str] = mapped_column(String(32), default="")
    ai_tts_voice_id: Mapped[str] = mapped_column(String(128), default="")
    ai_stt_type: Mapped[str] = mapped_column(String(32), default="")
    ai_vad_config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ai_smart_turn_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    parameter: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    activeflow_id: Mapped[str] = mapped_column(String(36), default="")
    reference_type: Mapped[str] = mapped_column(String(16), default="call")
    reference_id: Mapped[str] = mapped_column(String(36), default="", index=True)
    confbridge_id: Mapped[str] = mapped_column(String(36), default="")
    status: Mapped[str] = mapped_column(String(16), default="initiating")
    stt_language: Mapped[str] = mapped_column(String(35), default="")
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    pod_id: Mapped[str] = mapped_column(String(128), default="")
    tm_end: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class Aimessage(Timestamps, Base):
    """One message of an AI conversation (``AIManagerMessage``): what the caller said (``user``,
    ``incoming``), what the AI said as it was actually played (``assistant``, ``outgoing``), tool calls."""

    __tablename__ = "aimessages"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"), index=True)
    aicall_id: Mapped[str] = mapped_column(ID, ForeignKey("aicalls.id"), index=True)
    activeflow_id: Mapped[str] = mapped_column(String(36), default="")
    active_ai_id: Mapped[str] = mapped_column(String(36), default="")
    role: Mapped[str] = mapped_column(String(16), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    direction: Mapped[str] = mapped_column(String(16), default="")
    tool_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    tool_call_id: Mapped[str] = mapped_column(String(128), default="")


# issue 13 finding 5: one live signup code per address (a new signup replaces the old one)
Index("uq_signups_email_live", Signup.email, unique=True,
      sqlite_where=text("tm_complete IS NULL"), postgresql_where=text("tm_complete IS NULL"))
