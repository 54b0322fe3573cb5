"""Google Cloud Speech-to-Text: REST ``POST /v1/speech:recognize`` per utterance.

Wire format: header ``X-Goog-Api-Key``; body ``{"config": {"encoding": "LINEAR16",
"sampleRateHertz": 16000, "languageCode"}, "audio": {"content": <base64 PCM16>}}``;
answer ``{"results": [{"alternatives": [{"transcript", "confidence"}]}]}``. Utterances
are cut locally by Silero VAD; there is no interim text (one REST call per utterance).
"""

import base64

import httpx

from voipbin.speech.audio import STT_SAMPLE_RATE
from voipbin.speech.cloud import raise_for_status, require_key
from voipbin.speech.errors import SpeechProviderError
from voipbin.speech.languages import normalize_language
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.stt.base import VadTuning
from voipbin.speech.stt.stream import SegmentedTranscriptionStream
from voipbin.speech.stt.vad import stream_vad


class GcpRecognizer:
    """`Recognizer` for Google Cloud STT. Raises `SpeechConfigError` without a key."""

    name = "gcp"

    def __init__(self, settings: SpeechSettings, client: httpx.AsyncClient | None = None) -> None:
        self._settings = settings
        self._key = require_key(self.name, settings.gcp_api_key, "VOIPBIN_GCP_API_KEY")
        self._url = settings.gcp_stt_base_url.rstrip("/") + "/v1/speech:recognize"
        self._client = client or httpx.AsyncClient(timeout=settings.http_timeout_s)

    def check(self, *, language: str) -> str:
        return normalize_language(language)

    async def transcribe(self, pcm: bytes, *, language: str) -> str:
        """Transcribe one 16 kHz PCM16 utterance. Raises `SpeechProviderError`."""
        body = {
            "config": {
                "encoding": "LINEAR16",
                "sampleRateHertz": STT_SAMPLE_RATE,
                "languageCode": self.check(language=language),
            },
            "audio": {"content": base64.b64encode(pcm).decode("ascii")},
        }
        try:
            response = await self._client.post(
                self._url, headers={"X-Goog-Api-Key": self._key}, json=body
            )
        except httpx.HTTPError as exc:
            raise SpeechProviderError(self.name, f"request failed: {exc!r}") from exc
        await raise_for_status(self.name, response)
        results = response.json().get("results", [])
        return " ".join(
            r["alternatives"][0]["transcript"].strip() for r in results if r.get("alternatives")
        ).strip()

    def open_stream(
        self, *, language: str, sample_rate: int = STT_SAMPLE_RATE, vad: VadTuning | None = None
    ) -> SegmentedTranscriptionStream:
        tag = self.check(language=language)
        settings = self._settings.model_copy(update=vad.settings_update()) if vad else self._settings

        async def transcribe(pcm: bytes) -> str:
            return await self.transcribe(pcm, language=tag)

        return SegmentedTranscriptionStream(
            vad=stream_vad(settings),
            transcribe=transcribe,
            language=tag,
            sample_rate=sample_rate,
            interim_interval_s=None,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
