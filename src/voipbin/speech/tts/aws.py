"""Amazon Polly: REST ``POST /v1/speech`` (SynthesizeSpeech), SigV4-signed.

Wire format: JSON body ``{"Text", "VoiceId", "LanguageCode", "Engine", "OutputFormat":
"pcm", "SampleRate": "16000", "TextType": "text"}``, signed for service ``polly``; the
answer body is raw PCM16 mono (``audio/pcm``), streamed. Sent sentence by sentence.
"""

from collections.abc import AsyncIterator

import httpx

from voipbin.speech.aws_auth import credentials, signed_headers
from voipbin.speech.cloud import raise_for_status
from voipbin.speech.errors import SpeechConfigError, SpeechProviderError
from voipbin.speech.languages import normalize_language
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.tts.base import check_text, split_sentences

SAMPLE_RATE = 16000
DEFAULT_VOICES = {
    "en-US": "Joanna", "en-GB": "Amy", "en-AU": "Olivia", "en-IN": "Kajal",
    "de-DE": "Vicki", "fr-FR": "Lea", "fr-CA": "Gabrielle", "es-ES": "Lucia",
    "es-US": "Lupe", "es-MX": "Mia", "it-IT": "Bianca", "pt-BR": "Camila",
    "pt-PT": "Ines", "ja-JP": "Takumi", "ko-KR": "Seoyeon", "cmn-CN": "Zhiyu",
    "nl-NL": "Laura", "pl-PL": "Ola", "sv-SE": "Elin", "da-DK": "Sofie",
    "nb-NO": "Ida", "fi-FI": "Suvi", "tr-TR": "Burcu", "ar-AE": "Hala", "hi-IN": "Kajal",
}  # fmt: skip
"""Voice used when a request names none (all support the neural engine)."""


class PollySynthesizer:
    """`Synthesizer` for Amazon Polly. PCM16 mono at 16000 Hz.

    Raises `SpeechConfigError` at construction when the AWS keys are unset, and from
    `check` for a language without a default voice when no `voice` is given.
    """

    name = "aws"
    sample_rate = SAMPLE_RATE

    def __init__(self, settings: SpeechSettings, client: httpx.AsyncClient | None = None) -> None:
        self._creds = credentials(settings, self.name)
        self._region = settings.aws_region
        self._url = settings.polly_url.rstrip("/") + "/v1/speech"
        self._engine = settings.aws_polly_engine
        self._client = client or httpx.AsyncClient(timeout=settings.http_timeout_s)

    def check(self, *, language: str, voice: str | None = None) -> str:
        tag = normalize_language(language)
        if voice:
            if not voice.isalpha():
                raise SpeechConfigError(f"voice_id: {voice!r} is not an Amazon Polly voice id")
        elif tag not in DEFAULT_VOICES:
            raise SpeechConfigError(f"voice_id: required for language {tag} with provider aws")
        return tag

    async def synthesize(
        self, text: str, *, language: str, voice: str | None = None
    ) -> AsyncIterator[bytes]:
        tag = self.check(language=language, voice=voice)
        check_text(text)
        for sentence in split_sentences(text):
            body = {
                "Engine": self._engine,
                "LanguageCode": tag,
                "OutputFormat": "pcm",
                "SampleRate": str(SAMPLE_RATE),
                "Text": sentence,
                "TextType": "text",
                "VoiceId": voice or DEFAULT_VOICES[tag],
            }
            content = httpx.Request("POST", self._url, json=body).content
            headers = signed_headers(
                self._creds,
                service="polly",
                region=self._region,
                method="POST",
                url=self._url,
                headers={"Content-Type": "application/json"},
                body=content,
            )
            try:
                async with self._client.stream(
                    "POST", self._url, headers=headers, content=content
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
