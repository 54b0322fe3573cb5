"""``ai_talk``: the flow action that hands an answered call to a managed AI (seed 001's managed way).

:class:`AiAgents` implements the flow actions' :class:`~voipbin.calls.actions.base.AiControl`: it
resolves the AI (a stored one by ``assistance_id``/``ai_id``, or the inline option), substitutes
flow variables (``${name}``) into its prompt, opens the engines (STT and TTS from the registries,
the LLM from ``engine_model``), records an aicall, runs the :class:`~voipbin.ai.talk.AiTalk` turn
loop and then does what ended it: ``connect_call`` runs a ``connect`` to the named destinations,
``stop_flow`` hangs the call up, ``stop_service`` / ``duration`` / terminate go on with the flow.
Errors before the conversation starts (unknown AI, a provider without key, a language no engine
serves) make the action fail (``activeflow_action_failed``) and leave the call as it was.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from voipbin.ai.service import AiConfig, AiService
from voipbin.ai.talk import AiTalk, vad_tuning
from voipbin.ai.tools import ToolRunner, specs
from voipbin.calls.actions.base import ActionRun
from voipbin.calls.actions.connect import connect
from voipbin.calls.hangup import LOCAL_BYE
from voipbin.common.errors import InvalidArgument
from voipbin.llm.base import ChatModel
from voipbin.llm.local import LocalChatModel
from voipbin.llm.registry import create_chat_model, parse_engine_model
from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.smart_turn import is_turn_complete
from voipbin.speech.stt.registry import SttRegistry
from voipbin.speech.tts.registry import TtsRegistry

log = structlog.get_logger(__name__)

_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")
#: the AI's ``tts_type`` -> this deployment's TTS provider ("" = the default engine for the language)
TTS_PROVIDERS = {"": None, "piper": "piper", "elevenlabs": "elevenlabs", "google": "gcp", "aws": "aws"}

class LlmFactory:
    """The :class:`ChatModel` of an AI: its ``engine_model`` with its own key or the server-wide one
    (``VOIPBIN_LLM_API_KEYS``), base URLs from ``VOIPBIN_LLM_BASE_URLS``; ``local`` without a
    configured server is the in-process offline model (:mod:`voipbin.llm.local`).
    Raises LlmConfigError (a ValueError naming ``engine_model`` or ``engine_key``)."""

    def __init__(self, *, api_keys: str = "", base_urls: str = "", first_token_timeout_s: float = 10.0) -> None:
        self._keys = _pairs(api_keys, "VOIPBIN_LLM_API_KEYS")
        self._base_urls = _pairs(base_urls, "VOIPBIN_LLM_BASE_URLS")
        self._first_token_timeout_s = first_token_timeout_s

    def __call__(self, config: AiConfig) -> ChatModel:
        provider, model = parse_engine_model(config.engine_model)
        if provider == "local" and "local" not in self._base_urls:
            return LocalChatModel(model, first_token_timeout_s=self._first_token_timeout_s)
        return create_chat_model(config.engine_model, api_key=config.api_key or self._keys.get(provider),
                                 base_urls=self._base_urls, first_token_timeout_s=self._first_token_timeout_s)


def _pairs(text: str, setting: str) -> dict[str, str]:
    """``provider=value[,provider=value]`` -> dict (ValueError naming ``setting`` for a malformed pair)."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise ValueError(f"{setting}: {item!r} is not provider=value")
        out[name.strip().lower()] = value.strip()
    return out


class AiAgents:
    """Runs ``ai_talk`` on calls of this process."""

    def __init__(self, ais: AiService, *, tts: TtsRegistry, stt: SttRegistry,
                 llm: Callable[[AiConfig], ChatModel]) -> None:
        self._ais = ais
        self._tts = tts
        self._stt = stt
        self._llm = llm

    async def check_talk(self, customer_id: str, option: dict[str, Any], where: str) -> None:
        """``POST /calls`` with an ``ai_talk``: the AI it names is the account's (400 naming the field)."""
        await self._ais.check_talk_option(customer_id, option, where)

    async def talk(self, run: ActionRun) -> bool:
        """The ``ai_talk`` executor; True when the flow must stop (``stop_flow``)."""
        call, option = run.call, run.option
        config = await self._ais.resolve(call.customer_id, option)
        media = run.media
        language = config.stt_language or str(option.get("language") or "") or "en-US"
        try:
            recognizer, language = await asyncio.to_thread(self._stt.provider_for, language, None)
            synthesizer, _ = await asyncio.to_thread(self._tts.provider_for, language,
                                                     TTS_PROVIDERS.get(config.tts_type), config.tts_voice_id or None)
        except SpeechConfigError as exc:
            raise InvalidArgument(f"option: {exc}", field="option") from exc
        try:
            llm = self._llm(config)
        except ValueError as exc:  # LlmConfigError: unknown provider, no key
            raise InvalidArgument(f"option: {exc}", field="option") from exc
        prompt = await _substitute(config.init_prompt, run)
        aicall = await self._ais.start_aicall(call.customer_id, config, reference_id=call.call_id,
                                              activeflow_id=call.activeflow_id, prompt=prompt)
        tools = ToolRunner(run.control, call, config.tool_names)

        async def on_message(**message: Any) -> None:
            await self._ais.add_message(aicall, **message)

        async def on_turn(usage: dict[str, int], latency_ms: dict[str, float]) -> None:
            await self._ais.record_turn(aicall.id, usage=usage, latency_ms=latency_ms)

        talk = AiTalk(media=media, recognizer=recognizer, synthesizer=synthesizer, llm=llm, language=language,
                      system_prompt=prompt, on_message=on_message, on_turn=on_turn, run_tool=tools,
                      tools=specs(config.tool_names), voice=config.tts_voice_id or None,
                      vad=vad_tuning(config.vad_config, smart_turn=config.smart_turn_enabled),
                      smart_turn=is_turn_complete if config.smart_turn_enabled else None)
        self._ais.attach_live(aicall.id, talk)
        duration = option.get("duration")
        warming = _warm_up(llm)
        try:
            reason = await talk.run(duration_s=float(duration) if duration else None)
        finally:
            if warming is not None:
                warming.cancel()
            self._ais.detach_live(aicall.id)
            await asyncio.shield(self._ais.end_aicall(aicall.id))
            await llm.aclose()
        log.info("ai_talk ended", call_id=call.call_id, aicall_id=aicall.id, reason=reason)
        if reason == "connect_call" and tools.connect_option is not None:
            action = {"id": str(uuid.uuid4()), "type": "connect", "option": tools.connect_option}
            return await connect(ActionRun(run.context, run.control, call, action))
        if reason == "stop_flow":
            await run.control.end_call(call.call_id, LOCAL_BYE)
            return True
        return False


def _warm_up(llm: ChatModel) -> asyncio.Task[None] | None:
    """Load a model that has a ``warm_up`` (the offline one: its worker and first decode take seconds)
    while the caller speaks, not on the first turn. A failure is logged; the first turn reports it."""
    warm = getattr(llm, "warm_up", None)
    if warm is None:
        return None

    async def warming() -> None:
        try:
            await warm()
        except Exception:
            log.warning("llm warm-up failed", provider=llm.provider, model=llm.model, exc_info=True)

    return asyncio.get_running_loop().create_task(warming())


async def _substitute(text: str, run: ActionRun) -> str:
    """``${name}`` -> the call's flow variable ``name`` ("" when unset)."""
    names = set(_VARIABLE.findall(text))
    values = {name: await run.control.get_variable(run.call, name) for name in names}
    return _VARIABLE.sub(lambda m: values.get(m.group(1), ""), text)
