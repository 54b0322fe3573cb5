"""Request and response models, named after the upstream spec's schemas (documentation of /openapi.json).

Responses are serialized by the resource packages; these models describe them. Timestamps are
ISO 8601 UTC strings with microseconds and ``Z``, or null for a moment that has not happened.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from voipbin.api.addresses import infer_type, infer_types
from voipbin.common.errors import InvalidArgument

T = TypeVar("T")
Ts = str | None
INTEGER_TEXT = re.compile(r"^[+-]?\d{1,9}$")


def _integer_text(value: Any) -> Any:
    """A query value that is an integer as written (``5``), not one pydantic could coerce (``5.0``)."""
    if isinstance(value, str) and not INTEGER_TEXT.match(value.strip()):
        raise ValueError("must be an integer")
    return value


#: ``?page_size=``: default 100; <= 0 or > 100 means 100 (as upstream behaves)
PageSize = Annotated[int | None, Query(description="1-100; default, <= 0 or > 100: 100"),
                     BeforeValidator(_integer_text)]


class Page(BaseModel, Generic[T]):
    result: list[T]
    next_page_token: str = Field(description='tm_create of the last item; "" when no more items')


class LoginRequest(BaseModel):
    username: str
    password: str


class LoginResponse(BaseModel):
    username: str
    token: str


class SignupRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    email: str
    name: str | None = None
    detail: str | None = None
    phone_number: str | None = None
    address: str | None = None
    webhook_method: str | None = None
    webhook_uri: str | None = None
    accepted_tos: bool | None = Field(default=None, description="false is rejected with 400")


class SignupResponse(BaseModel):
    temp_token: str = Field(description='"" when the e-mail cannot be used (no enumeration)')


class CompleteSignupRequest(BaseModel):
    temp_token: str
    code: str = Field(description="6-digit code from the verification e-mail")


class AccesskeyToken(BaseModel):
    id: str
    token: str


class CompleteSignupResponse(BaseModel):
    customer_id: str
    accesskey: AccesskeyToken


class CustomerManagerCustomer(BaseModel):
    id: str
    name: str
    detail: str
    email: str
    phone_number: str
    address: str
    webhook_method: Literal["", "POST", "GET", "PUT", "DELETE"]
    webhook_uri: str
    webhook_secret: str | None = Field(
        default=None, description="HMAC key of X-VoIPBIN-Signature; only in the response of POST /customer/webhook_secret/rotate")
    billing_account_id: str = Field(description="nil UUID: this deployment has no billing")
    metadata: dict[str, Any]
    email_verified: bool
    status: str
    identity_verification_status: str
    tm_deletion_scheduled: Ts
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = None
    detail: str | None = None
    email: str | None = None
    phone_number: str | None = None
    address: str | None = None
    webhook_method: Literal["", "POST", "GET", "PUT", "DELETE"] | None = None
    webhook_uri: str | None = None


class CustomerMetadata(BaseModel):
    """Body of ``PUT /customer/metadata``."""

    model_config = ConfigDict(extra="ignore")
    rtp_debug: bool = False


class AgentManagerAgent(BaseModel):
    """``GET /me``: the caller's agent (an accesskey answers as an admin agent, ``id`` the key's id)."""

    id: str
    customer_id: str
    username: str
    name: str
    detail: str
    ring_method: Literal["ringall", "linear"]
    status: Literal["", "available", "away", "busy", "offline", "ringing"]
    permission: int
    tag_ids: list[str]
    addresses: list[dict[str, Any]]
    direct_hash: str
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class CustomerManagerAccesskey(BaseModel):
    id: str
    customer_id: str
    name: str
    detail: str
    token: str | None = Field(default=None, description="only in the POST response")
    token_prefix: str
    tm_expire: Ts
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class AccesskeyCreate(BaseModel):
    name: str = ""
    detail: str = ""
    expire: int | None = Field(default=None, description="lifetime in seconds, >= 86400; default 1 year")


class AccesskeyUpdate(BaseModel):
    name: str | None = None
    detail: str | None = None


class NumberManagerNumber(BaseModel):
    id: str
    customer_id: str
    number: str
    type: Literal["normal", "virtual"]
    call_flow_id: str
    message_flow_id: str
    name: str
    detail: str
    status: Literal["active", "deleted"]
    t38_enabled: bool
    emergency_enabled: bool
    metadata: dict[str, Any]
    tm_purchase: Ts
    tm_renew: Ts
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class NumberCreate(BaseModel):
    number: str = Field(description="E.164, e.g. +15551234567")
    type: Literal["normal", "virtual"] = "normal"
    call_flow_id: str | None = None
    message_flow_id: str | None = None
    name: str = ""
    detail: str = ""


class NumberFlowIds(BaseModel):
    """Body of ``PUT /numbers/{id}/flow_ids``."""

    call_flow_id: str = Field(description='flow run by incoming calls; "" or the nil UUID for none')
    message_flow_id: str = Field(description="kept for compatibility (no messaging here)")


class NumberUpdate(BaseModel):
    name: str | None = None
    detail: str | None = None
    call_flow_id: str | None = None
    message_flow_id: str | None = None


class RegistrarManagerExtension(BaseModel):
    id: str
    customer_id: str
    name: str
    detail: str
    extension: str
    username: str
    password: str
    domain_name: str
    direct_hash: str
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts
    registered: bool | None = Field(default=None, description="addition: a softphone is registered (GET only)")
    contacts: list[dict[str, Any]] | None = Field(
        default=None, description="addition: SIP bindings {uri, expires (s), transport, source, user_agent}")


class ExtensionCreate(BaseModel):
    name: str
    detail: str
    extension: str
    password: str


class ExtensionUpdate(BaseModel):
    name: str | None = None
    detail: str | None = None
    password: str | None = None


class CommonAddress(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(description='tel, sip, extension, ...; "" or absent in a request: inferred from target')
    target: str = ""
    target_name: str = ""
    name: str = ""
    detail: str = ""


class FlowManagerAction(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    next_id: str | None = None
    type: str
    option: dict[str, Any] = Field(default_factory=dict)


class CallCreate(BaseModel):
    """Body of ``POST /calls``: ``flow_id`` or inline ``actions`` (flow_id wins when both are given)."""

    model_config = ConfigDict(extra="ignore")
    source: dict[str, Any] = Field(description="CommonAddress of the caller; a tel source must be an owned number")
    destinations: list[Any] = Field(description="CommonAddress list: extension (target_name), tel (E.164), sip")
    flow_id: str | None = None
    actions: list[Any] | None = None
    anonymous: str | None = None
    variables: dict[str, str] | None = None

    @field_validator("source", mode="before")
    @classmethod
    def _source_type(cls, value: Any) -> Any:
        return infer_type(value, "source")

    @field_validator("destinations", mode="before")
    @classmethod
    def _destination_types(cls, value: Any) -> Any:
        return infer_types(value, "destinations")


class CallManagerCall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    flow_id: str
    activeflow_id: str
    type: str
    groupcall_id: str
    source: CommonAddress
    destination: CommonAddress
    status: Literal["dialing", "ringing", "progressing", "terminating", "canceling", "hangup"]
    action: dict[str, Any]
    direction: Literal["incoming", "outgoing"]
    mute_direction: str
    hangup_by: Literal["", "remote", "local"]
    hangup_reason: Literal["", "normal", "failed", "busy", "cancel", "timeout", "noanswer", "dialout", "amd"]
    tm_progressing: Ts
    tm_ringing: Ts
    tm_hangup: Ts
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class GroupcallCreate(BaseModel):
    """Body of ``POST /groupcalls``: one extension destination (all its registered contacts ring at once,
    the first to answer wins); ``ring_method`` ``ring_all`` and ``answer_method`` ``hangup_others`` only."""

    model_config = ConfigDict(extra="ignore")
    source: dict[str, Any] = Field(description="CommonAddress of the caller (type inferred when absent)")
    destinations: list[Any] = Field(description="exactly one extension address (target_name or target)")
    flow_id: str | None = None
    actions: list[Any] | None = None
    ring_method: Literal["", "ring_all"] = Field(description='"" means ring_all; linear is not supported')
    answer_method: Literal["", "hangup_others"] = Field(description='"" means hangup_others')

    @field_validator("source", mode="before")
    @classmethod
    def _source_type(cls, value: Any) -> Any:
        return infer_type(value, "source")

    @field_validator("destinations", mode="before")
    @classmethod
    def _one_extension(cls, value: Any) -> Any:
        value = infer_types(value, "destinations")
        if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict)
                and value[0].get("type") == "extension"):
            raise InvalidArgument("destinations must hold exactly one extension address", field="destinations")
        return value


class CallTalk(BaseModel):
    """Body of ``POST /calls/{id}/talk``."""

    model_config = ConfigDict(extra="ignore")
    text: str = Field(description="1-5000 characters")
    language: str | None = Field(default=None, description="BCP 47; default en-US")
    provider: str | None = Field(default=None, description="piper (default), espeak, elevenlabs, gcp, aws")
    voice_id: str | None = None


class CallManagerGroupcall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    status: Literal["progressing", "hangingup", "hangup"]
    flow_id: str
    source: CommonAddress
    destinations: list[CommonAddress]
    ring_method: str
    answer_method: str
    answer_call_id: str
    call_ids: list[str]
    call_count: int
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class CallsCreated(BaseModel):
    calls: list[CallManagerCall]
    groupcalls: list[CallManagerGroupcall]


class FlowCreate(BaseModel):
    name: str = ""
    detail: str = ""
    actions: list[Any]


class FlowUpdate(BaseModel):
    name: str | None = None
    detail: str | None = None
    actions: list[Any] | None = None


class FlowManagerFlow(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    type: str
    name: str
    detail: str
    actions: list[FlowManagerAction]
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class FlowManagerActiveflow(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    flow_id: str
    status: Literal["", "running", "ended"]
    reference_type: str
    reference_id: str
    current_action: dict[str, Any]
    forward_action_id: str
    executed_actions: list[dict[str, Any]]
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class TranscribeCreate(BaseModel):
    """Body of ``POST /transcribes``; the service validates each field (messages name it)."""

    model_config = ConfigDict(extra="ignore")
    reference_type: str = Field(description="call or confbridge (recording: not supported yet)")
    reference_id: str = Field(description="The call id, or the conference id")
    language: str = Field(description="BCP 47, e.g. en-US")
    direction: str | None = Field(default=None, description="in | out | both (default; unknown values mean both)")
    provider: str | None = Field(default=None, description='"" (local engine), gcp or aws')
    on_end_flow_id: str | None = None


class TranscribeManagerTranscribe(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    activeflow_id: str
    on_end_flow_id: str
    reference_type: Literal["unknown", "recording", "call", "confbridge"]
    reference_id: str
    status: Literal["progressing", "done"]
    language: str
    direction: Literal["both", "in", "out"]
    provider: Literal["", "gcp", "aws"]
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class TranscribeManagerTranscript(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    transcribe_id: str
    direction: Literal["both", "in", "out"]
    call_id: str = Field(description="Addition: the call whose audio this is (in a conference, the participant "
                                     "who spoke; \"\" for the conference's own speakings)")
    message: str
    tm_transcript: Ts
    tm_create: Ts


class SpeakingCreate(BaseModel):
    """Body of ``POST /speakings`` (seed 004)."""

    model_config = ConfigDict(extra="ignore")
    reference_type: str = Field(description="call or confbridge")
    reference_id: str = Field(description="The call id (the call must be progressing) or the conference id "
                                           "(the conference must be progressing)")
    language: str | None = Field(default=None, description="BCP 47; default en-US")
    provider: str | None = Field(default=None, description="piper (default), espeak, elevenlabs, gcp, aws")
    voice_id: str | None = None
    direction: str | None = Field(default=None, description="out (default: the endpoint hears it), in, both")


class SpeakingSay(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(description="1-5000 characters, queued after earlier texts")


class TtsManagerSpeaking(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    reference_type: Literal["", "call", "confbridge"]
    reference_id: str
    language: str
    provider: str
    voice_id: str
    direction: Literal["", "in", "out", "both"]
    status: Literal["initiating", "active", "stopped"]
    pod_id: str
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class CallMute(BaseModel):
    """Body of ``POST``/``DELETE /calls/{id}/mute`` (``CallManagerCallMuteDirection``)."""

    model_config = ConfigDict(extra="ignore")
    direction: str | None = Field(default=None, description="in | out | both")
