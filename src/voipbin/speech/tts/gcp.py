"""Google Cloud Text-to-Speech: REST ``POST /v1/text:synthesize``.

Wire format: header ``X-Goog-Api-Key``; body ``{"input": {"text"}, "voice":
{"languageCode", "name"}, "audioConfig": {"audioEncoding": "LINEAR16",
"sampleRateHertz": 16000}}``; answer ``{"audioContent": <base64 WAV>}``. The REST call
returns a whole clip, so the text is sent sentence by sentence and each sentence's audio
is yielded as soon as it arrives.
"""

import base64
import binascii
import re
from collections.abc import AsyncIterator

import httpx

from voipbin.speech.cloud import pcm_from_wav, raise_for_status, require_key
from voipbin.speech.errors import SpeechConfigError, SpeechProviderError
from voipbin.speech.languages import normalize_language
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.tts.base import check_text, split_sentences

SAMPLE_RATE = 16000
_VOICE_NAME = re.compile(r"^[A-Za-z]{2,3}-[A-Za-z0-9]{2,4}-[A-Za-z0-9-]+$")  # en-US-Neural2-A


class GcpSynthesizer:
    """`Synthesizer` for Google Cloud TTS. PCM16 mono at 16000 Hz.

    Raises `SpeechConfigError` at construction when ``VOIPBIN_GCP_API_KEY`` is unset.
    """

    name = "gcp"
    sample_rate = SAMPLE_RATE

    def __init__(self, settings: SpeechSettings, client: httpx.AsyncClient | None = None) -> None:
        self._key = require_key(self.name, settings.gcp_api_key, "VOIPBIN_GCP_API_KEY")
        self._url = settings.gcp_tts_base_url.rstrip("/") + "/v1/text:synthesize"
        self._client = client or httpx.AsyncClient(timeout=settings.http_timeout_s)

    def check(self, *, language: str, voice: str | None = None) -> str:
        tag = normalize_language(language)
        if voice and not _VOICE_NAME.match(voice):
            raise SpeechConfigError(f"voice_id: {voice!r} is not a Google Cloud voice name")
        return tag

    async def synthesize(
        self, text: str, *, language: str, voice: str | None = None
    ) -> AsyncIterator[bytes]:
        tag = self.check(language=language, voice=voice)
        check_text(text)
        voice_params = {"languageCode": tag} | ({"name": voice} if voice else {})
        for sentence in split_sentences(text):
            body = {
                "input": {"text": sentence},
                "voice": voice_params,
                "audioConfig": {"audioEncoding": "LINEAR16", "sampleRateHertz": SAMPLE_RATE},
            }
            try:
                response = await self._client.post(
                    self._url, headers={"X-Goog-Api-Key": self._key}, json=body
                )
            except httpx.HTTPError as exc:
                raise SpeechProviderError(self.name, f"request failed: {exc!r}") from exc
            await raise_for_status(self.name, response)
            try:
                audio = base64.b64decode(response.json()["audioContent"], validate=True)
            except (KeyError, ValueError, binascii.Error) as exc:
                raise SpeechProviderError(self.name, "answer without audioContent") from exc
            pcm, rate = pcm_from_wav(audio)
            if rate not in (0, SAMPLE_RATE):
                raise SpeechProviderError(self.name, f"unexpected sample rate {rate}")
            if pcm:
                yield pcm

    async def aclose(self) -> None:
        await self._client.aclose()
