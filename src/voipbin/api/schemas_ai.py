"""Request and response models of the managed AI: ais, aicalls, aimessages (``AIManager*``; see :mod:`voipbin.api.schemas`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from voipbin.api.schemas import Ts


class AiWrite(BaseModel):
    """Body of ``POST /ais`` and ``PUT /ais/{id}``; the service validates each field (messages name it).
    On ``PUT`` a missing or null field is left unchanged. ``engine_key`` is write-only."""

    model_config = ConfigDict(extra="ignore")
    name: Any = Field(default=None, description="required on POST")
    detail: Any = None
    type: Any = Field(default=None, description="normal (insight is not supported here)")
    engine_model: Any = Field(default=None, description="<provider>.<model>: openai, grok, gemini, anthropic, "
                                                        "openai-compatible, local (offline, no key); required on POST")
    engine_key: Any = Field(default=None, description="the provider's key; required unless local; never returned")
    parameter: Any = Field(default=None, description="an object")
    rag_id: Any = Field(default=None, description="empty (knowledge bases are not served here)")
    init_prompt: Any = None
    tts_type: Any = Field(default=None, description='"", piper, elevenlabs, google, aws')
    tts_voice_id: Any = None
    stt_type: Any = Field(default=None, description='"" (the local whisper)')
    stt_language: Any = Field(default=None, description="BCP 47, e.g. en-US")
    vad_config: Any = Field(default=None, description="confidence, min_volume 0-1; start_secs, stop_secs 0-30")
    tool_names: Any = Field(default=None, description='AIManagerToolName values, or ["all"]')
    smart_turn_enabled: Any = None
    auto_aicall_audit_enabled: Any = None


class AIManagerAI(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    name: str
    detail: str
    type: Literal["normal", "insight"]
    engine_model: str
    engine_key: str = Field(description='"****" + the last 4 characters of the key; "" when none')
    parameter: dict[str, Any]
    init_prompt: str
    tts_type: str
    tts_voice_id: str
    stt_type: str
    stt_language: str
    vad_config: dict[str, float]
    tool_names: list[str]
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class AIManagerAIcall(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    assistance_type: Literal["", "ai", "team"]
    assistance_id: str
    ai_engine_model: str
    activeflow_id: str
    reference_type: str
    reference_id: str
    status: Literal["initiating", "progressing", "pausing", "resuming", "terminating", "terminated"]
    stt_language: str
    metadata: dict[str, Any]
    tm_end: Ts
    tm_create: Ts
    tm_update: Ts
    tm_delete: Ts


class AimessageSend(BaseModel):
    """Body of ``POST /aimessages``: a message into a live conversation."""

    model_config = ConfigDict(extra="ignore")
    aicall_id: Any = None
    role: Any = Field(default=None, description="user (answered as if the caller said it) | system")
    content: Any = None


class AIManagerMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    customer_id: str
    aicall_id: str
    activeflow_id: str
    role: str
    content: str
    direction: Literal["", "incoming", "outgoing"]
    tool_calls: list[dict[str, Any]]
    tool_call_id: str
    tm_create: Ts
