"""Request and response models of conferences and conferencecalls (``ConferenceManager*``; see :mod:`voipbin.api.schemas`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voipbin.api.schemas import Ts


class ConferenceCreate(BaseModel):
    """Body of ``POST /conferences``; the service validates each field (messages name it)."""

    model_config = ConfigDict(extra="ignore")
    type: Any = Field(default=None, description="conference | connect")
    name: Any = None
    detail: Any = None
    data: Any = Field(default=None, description="an object")
    timeout: Any = Field(default=None, description="seconds; 0: none; 1-59 become 86400")
    pre_flow_id: Any = Field(default=None, description="a flow run on each participant before it joins")
    post_flow_id: Any = Field(default=None, description="a flow run on each participant after it leaves")


class ConferenceUpdate(BaseModel):
    """Body of ``PUT /conferences/{id}``: a missing or null field is left unchanged."""

    model_config = ConfigDict(extra="ignore")
    name: Any = None
    detail: Any = None
    data: Any = None
    timeout: Any = None
    pre_flow_id: Any = None
    post_flow_id: Any = None


class ConferenceTranscribeStart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    language: str | None = Field(default=None, description="BCP 47, e.g. en-US")


class ConferenceManagerConference(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    type: Literal["", "conference", "connect", "queue"]
    status: Literal["starting", "progressing", "terminating", "terminated"]
    name: str
    detail: str
    data: dict[str, Any]
    timeout: int
    pre_flow_id: str
    post_flow_id: str
    conferencecall_ids: list[str]
    recording_id: str
    recording_ids: list[str]
    transcribe_id: str
    transcribe_ids: list[str]
    direct_hash: str
    tm_end: Ts
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class ConferenceManagerConferencecall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    activeflow_id: str
    conference_id: str
    reference_type: Literal["call"]
    reference_id: str
    status: Literal["joining", "joined", "leaving", "leaved"]
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts
