"""Request and response models, named after the upstream spec's schemas (documentation of /openapi.json).

Responses are serialized by the resource packages; these models describe them. Timestamps are
ISO 8601 UTC strings with microseconds and ``Z``, or null for a moment that has not happened.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")
Ts = str | None


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
    webhook_secret: str | None = Field(default=None, description="HMAC key of X-VoIPBIN-Signature; own GET only")
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


class ExtensionCreate(BaseModel):
    name: str
    detail: str
    extension: str
    password: str


class ExtensionUpdate(BaseModel):
    name: str | None = None
    detail: str | None = None
    password: str | None = None
