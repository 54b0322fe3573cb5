"""ElevenLabs TTS: ``POST /v1/text-to-speech/{voice_id}/stream`` (HTTP streaming).

Wire format: header ``xi-api-key``; query ``output_format=pcm_16000`` (raw PCM16 mono
16 kHz, no container); JSON body ``{"text", "model_id", "language_code"}``. The answer
is streamed as it is generated and forwarded chunk by chunk.
"""

import re
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx

from voipbin.speech.cloud import raise_for_status, require_key
from voipbin.speech.errors import SpeechConfigError, SpeechProviderError
from voipbin.speech.languages import normalize_language, primary_language
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.tts.base import check_text

SAMPLE_RATE = 16000
_VOICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ElevenLabsSynthesizer:
    """`Synthesizer` for ElevenLabs. PCM16 mono at 16000 Hz.

    Raises `SpeechConfigError` at construction when ``VOIPBIN_ELEVENLABS_API_KEY`` is unset.
    """

    name = "elevenlabs"
    sample_rate = SAMPLE_RATE

    def __init__(self, settings: SpeechSettings, client: httpx.AsyncClient | None = None) -> None:
        self._key = require_key(self.name, settings.elevenlabs_api_key, "VOIPBIN_ELEVENLABS_API_KEY")
        self._base_url = settings.elevenlabs_base_url.rstrip("/")
        self._model_id = settings.elevenlabs_model_id
        self._default_voice = settings.elevenlabs_default_voice_id
        self._client = client or httpx.AsyncClient(timeout=settings.http_timeout_s)

    def check(self, *, language: str, voice: str | None = None) -> str:
        tag = normalize_language(language)
        if voice and not _VOICE_ID.match(voice):
            raise SpeechConfigError(f"voice_id: {voice!r} is not an ElevenLabs voice id")
        return tag

    async def synthesize(
        self, text: str, *, language: str, voice: str | None = None
    ) -> AsyncIterator[bytes]:
        tag = self.check(language=language, voice=voice)
        check_text(text)
        voice_id = quote(voice or self._default_voice, safe="")
        url = f"{self._base_url}/v1/text-to-speech/{voice_id}/stream"
        body = {"text": text, "model_id": self._model_id, "language_code": primary_language(tag)}
        try:
            async with self._client.stream(
                "POST",
                url,
                params={"output_format": f"pcm_{SAMPLE_RATE}"},
                headers={"xi-api-key": self._key, "Accept": "audio/pcm"},
                json=body,
            ) as response:
                await raise_for_status(self.name, response)
                odd = b""
                async for chunk in response.aiter_bytes():
                    data = odd + chunk
                    usable = len(data) - len(data) % 2
                    odd = data[usable:]
                    if usable:
                        yield data[:usable]
        except httpx.HTTPError as exc:
            raise SpeechProviderError(self.name, f"request failed: {exc!r}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()
