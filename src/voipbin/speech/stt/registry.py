"""Provider name -> `Recognizer`, built on first use and kept for the process.

Unknown provider, or a cloud provider without credentials -> `SpeechConfigError`; with
``VOIPBIN_SPEECH_OFFLINE_FALLBACK`` (the sandbox) the cloud provider is served by the local
recognizer instead (`OfflineRecognizer`, keeping the provider's name).
`provider_for(language, provider)` answers "who hears this language".
"""

from collections.abc import Callable

import structlog

from voipbin.speech.errors import SpeechConfigError, UnsupportedLanguageError
from voipbin.speech.languages import normalize_language
from voipbin.speech.settings import CLOUD_PROVIDERS, STT_PROVIDERS, SpeechSettings
from voipbin.speech.stt.base import Recognizer, TranscriptionStream

log = structlog.get_logger(__name__)


def _whisper(settings: SpeechSettings) -> Recognizer:
    from voipbin.speech.stt.whisper import WhisperRecognizer

    return WhisperRecognizer(settings)


def _gcp(settings: SpeechSettings) -> Recognizer:
    from voipbin.speech.stt.gcp import GcpRecognizer

    return GcpRecognizer(settings)


def _aws(settings: SpeechSettings) -> Recognizer:
    from voipbin.speech.stt.aws import TranscribeRecognizer

    return TranscribeRecognizer(settings)


_FACTORIES: dict[str, Callable[[SpeechSettings], Recognizer]] = {
    "whisper": _whisper,
    "gcp": _gcp,
    "aws": _aws,
}
assert set(_FACTORIES) == set(STT_PROVIDERS)


class OfflineRecognizer:
    """Hears for a cloud provider without credentials (sandbox only): whisper does the work,
    ``name`` stays the provider asked for."""

    def __init__(self, name: str, local: Recognizer) -> None:
        self.name = name
        self._local = local

    def check(self, *, language: str) -> str:
        return self._local.check(language=language)

    def open_stream(self, *, language: str, sample_rate: int = 16000) -> TranscriptionStream:
        return self._local.open_stream(language=language, sample_rate=sample_rate)


class SttRegistry:
    """The recognizers of one process, built lazily from `SpeechSettings`."""

    def __init__(self, settings: SpeechSettings | None = None) -> None:
        self.settings = settings or SpeechSettings()
        self._recognizers: dict[str, Recognizer] = {}

    def get(self, provider: str | None = None) -> Recognizer:
        """The recognizer for `provider` (None -> ``VOIPBIN_STT_DEFAULT_PROVIDER``).

        Raises:
            SpeechConfigError: unknown provider, or a cloud provider without credentials.
        """
        name = provider or self.settings.stt_default_provider
        if name not in _FACTORIES:
            raise SpeechConfigError(
                f"provider: unknown STT provider {name!r} (one of {', '.join(STT_PROVIDERS)})"
            )
        recognizer = self._recognizers.get(name)
        if recognizer is None:
            if self.stands_in(name):
                log.warning("speech provider has no credentials: the local engine hears for it "
                            "(VOIPBIN_SPEECH_OFFLINE_FALLBACK)", provider=name, kind="stt")
                recognizer = OfflineRecognizer(name, self.get("whisper"))
            else:
                recognizer = _FACTORIES[name](self.settings)
            self._recognizers[name] = recognizer
        return recognizer

    def stands_in(self, provider: str) -> bool:
        """Whether `provider` is a cloud provider without credentials served by whisper."""
        return (self.settings.speech_offline_fallback and provider in CLOUD_PROVIDERS
                and not self.settings.keyed(provider))

    def configured(self) -> list[str]:
        """The providers usable here, the default first."""
        names = [self.settings.stt_default_provider, *STT_PROVIDERS]
        return list(dict.fromkeys(n for n in names if self.settings.keyed(n) or self.stands_in(n)))

    def provider_for(self, language: str, provider: str | None = None) -> tuple[Recognizer, str]:
        """Who hears `language`: ``(recognizer, normalized language)``; the named provider, else
        the default one if it hears the language, else the first configured one that does. May
        load a model: call it off the event loop.

        Raises:
            SpeechConfigError: invalid tag, unknown or unconfigured provider, or no configured
                engine hears the language (``language: ...``).
        """
        tag = normalize_language(language)
        if provider:
            recognizer = self.get(provider)
            return recognizer, recognizer.check(language=tag)
        for name in self.configured():
            recognizer = self.get(name)
            try:
                return recognizer, recognizer.check(language=tag)
            except UnsupportedLanguageError:
                continue
        raise UnsupportedLanguageError(f"language: no configured speech-to-text engine hears {tag}")

    async def aclose(self) -> None:
        """Close the cloud adapters' connections and stop the inference and VAD workers."""
        from voipbin.speech.stt.vad import vad_pool_key
        from voipbin.speech.workers import close_shared_pool

        for recognizer in self._recognizers.values():
            aclose = getattr(recognizer, "aclose", None)
            if aclose is not None:
                await aclose()
        self._recognizers.clear()
        await close_shared_pool(vad_pool_key(self.settings))
