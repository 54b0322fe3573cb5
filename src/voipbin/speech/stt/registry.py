"""Provider name -> `Recognizer`, built on first use and kept for the process.

Unknown provider, or a cloud provider without credentials -> `SpeechConfigError`; with
``VOIPBIN_SPEECH_OFFLINE_FALLBACK`` (the sandbox) the cloud provider is served by the local
recognizers instead (`OfflineRecognizer`, keeping the provider's name).
`provider_for(language, provider)` answers "who hears this language".

Provider ``whisper`` is two local models: English goes to ``VOIPBIN_WHISPER_MODEL`` (tiny.en,
loaded at start: the fast path), any other language Whisper knows to the multilingual model
(`voipbin.speech.stt.multilingual`, Whisper base), built on the first request in such a
language (`local_for`) and loaded in its own workers then; a language neither hears is an
`UnsupportedLanguageError` (400 naming ``language``) before anything loads.

With a `SpeechClient` (``remote``, issue 20) both whisper models decode on the speech pods.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from voipbin.speech.errors import SpeechConfigError, UnsupportedLanguageError
from voipbin.speech.languages import normalize_language, primary_language
from voipbin.speech.settings import CLOUD_PROVIDERS, STT_PROVIDERS, SpeechSettings
from voipbin.speech.stt.base import Recognizer, TranscriptionStream, VadTuning

if TYPE_CHECKING:
    from voipbin.speech.remote import SpeechClient

log = structlog.get_logger(__name__)


def _whisper(settings: SpeechSettings, remote: SpeechClient | None = None) -> Recognizer:
    from voipbin.speech.stt.whisper import WhisperRecognizer

    return WhisperRecognizer(settings, remote=remote)


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
    """Hears for a cloud provider without credentials (sandbox only): the local whisper models
    do the work (`SttRegistry.local_for`), ``name`` stays the provider asked for."""

    def __init__(self, name: str, registry: SttRegistry) -> None:
        self.name = name
        self._registry = registry

    def check(self, *, language: str) -> str:
        return self._registry.local_for(language).check(language=language)

    def open_stream(self, *, language: str, sample_rate: int = 16000, vad: VadTuning | None = None) -> TranscriptionStream:
        return self._registry.local_for(language).open_stream(language=language, sample_rate=sample_rate, vad=vad)


class SttRegistry:
    """The recognizers of one process, built lazily from `SpeechSettings`; whisper's decodes on the
    speech pods when a `remote` client is given."""

    def __init__(self, settings: SpeechSettings | None = None, *, remote: SpeechClient | None = None) -> None:
        self.settings = settings or SpeechSettings()
        self.remote = remote
        self._recognizers: dict[str, Recognizer] = {}
        self._multilingual: Recognizer | None = None
        self._multilingual_lock = threading.Lock()

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
                recognizer = OfflineRecognizer(name, self)
            elif name == "whisper":
                recognizer = _whisper(self.settings, self.remote)
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
            return self._hearer(provider, tag)
        for name in self.configured():
            try:
                return self._hearer(name, tag)
            except UnsupportedLanguageError:
                continue
        raise UnsupportedLanguageError(f"language: no configured speech-to-text engine hears {tag}")

    def _hearer(self, name: str, tag: str) -> tuple[Recognizer, str]:
        recognizer = self.local_for(tag) if name == "whisper" else self.get(name)
        return recognizer, recognizer.check(language=tag)

    def local_for(self, language: str) -> Recognizer:
        """The local recognizer of `language`: the whisper model (tiny.en) when it hears it,
        else the multilingual one, built on this first call (joining the bundled model's parts
        the first time, ~0.3 s: call it off the event loop; its workers start on the stream's
        first open).

        Raises:
            SpeechConfigError: invalid tag (``language: ...``).
            UnsupportedLanguageError: neither model hears the language (``language: ...``).
        """
        tag = normalize_language(language)
        english = self.get("whisper")
        try:
            english.check(language=tag)
            return english
        except UnsupportedLanguageError:
            if not self._multilingual_hears(tag):
                raise UnsupportedLanguageError(f"language: no local whisper model transcribes {tag}") from None
        with self._multilingual_lock:
            if self._multilingual is None:
                self._multilingual = self._build_multilingual()
        return self._multilingual

    def _multilingual_hears(self, tag: str) -> bool:
        model = self.settings.whisper_multilingual_model
        if model and model.lower() == "none":
            return False
        if model:
            return True  # a configured model answers itself (its `check`) once built
        from voipbin.speech.stt.multilingual import bundled_languages

        return primary_language(tag) in bundled_languages()

    def _build_multilingual(self) -> Recognizer:
        from voipbin.speech.stt.multilingual import bundled_multilingual_model

        model = self.settings.whisper_multilingual_model or str(bundled_multilingual_model(self.settings.cache_dir))
        log.info("loading the multilingual speech-to-text model", model=model)
        return _whisper(self.settings.model_copy(update={"whisper_model": model}), self.remote)

    async def aclose(self) -> None:
        """Close the cloud adapters' connections and stop the inference and VAD workers."""
        from voipbin.speech.stt.vad import vad_pool_key
        from voipbin.speech.workers import close_shared_pool

        for recognizer in [*self._recognizers.values(), self._multilingual]:
            aclose = getattr(recognizer, "aclose", None)
            if aclose is not None:
                await aclose()
        self._recognizers.clear()
        self._multilingual = None
        await close_shared_pool(vad_pool_key(self.settings))
