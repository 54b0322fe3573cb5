"""Provider name -> `Synthesizer`, built on first use and kept for the process.

`TtsRegistry(settings).get("gcp")` returns the Google synthesizer, or raises
`SpeechConfigError` when that provider is unknown or has no credentials configured: a
request naming a cloud provider never falls back silently to another engine. The one
exception is explicit: with ``VOIPBIN_SPEECH_OFFLINE_FALLBACK`` (the sandbox) such a request
gets an `OfflineStandIn` that keeps the provider's name and speaks with the local engines.

`provider_for(language, provider)` answers "who speaks this language": the named provider,
or (none named) the default one, else the first configured engine that speaks it.

With a `SpeechClient` (``remote``, issue 20) piper and kokoro speak on the speech pods.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import structlog

from voipbin.media.pcm import resample_chunks
from voipbin.speech.errors import SpeechConfigError, UnsupportedLanguageError
from voipbin.speech.languages import normalize_language
from voipbin.speech.settings import CLOUD_PROVIDERS, TTS_PROVIDERS, SpeechSettings
from voipbin.speech.tts.base import Synthesizer

if TYPE_CHECKING:
    from voipbin.speech.remote import SpeechClient

log = structlog.get_logger(__name__)


def _piper(settings: SpeechSettings, remote: SpeechClient | None = None) -> Synthesizer:
    from voipbin.speech.tts.piper import PiperSynthesizer

    return PiperSynthesizer(
        settings.piper_model_path,
        threads=settings.piper_threads,
        workers=settings.piper_workers,
        mode=settings.piper_worker_mode,
        nice=settings.speech_worker_nice,
        remote=remote,
    )


def _kokoro(settings: SpeechSettings, remote: SpeechClient | None = None) -> Synthesizer:
    from voipbin.speech.tts.kokoro import KokoroSynthesizer

    return KokoroSynthesizer(settings, remote=remote)


def _espeak(settings: SpeechSettings) -> Synthesizer:
    from voipbin.speech.tts.espeak import EspeakSynthesizer

    return EspeakSynthesizer(settings.espeak_binary, words_per_minute=settings.espeak_words_per_minute)


def _elevenlabs(settings: SpeechSettings) -> Synthesizer:
    from voipbin.speech.tts.elevenlabs import ElevenLabsSynthesizer

    return ElevenLabsSynthesizer(settings)


def _gcp(settings: SpeechSettings) -> Synthesizer:
    from voipbin.speech.tts.gcp import GcpSynthesizer

    return GcpSynthesizer(settings)


def _aws(settings: SpeechSettings) -> Synthesizer:
    from voipbin.speech.tts.aws import PollySynthesizer

    return PollySynthesizer(settings)


_FACTORIES: dict[str, Callable[[SpeechSettings], Synthesizer]] = {
    "piper": _piper,
    "kokoro": _kokoro,
    "espeak": _espeak,
    "elevenlabs": _elevenlabs,
    "gcp": _gcp,
    "aws": _aws,
}
assert set(_FACTORIES) == set(TTS_PROVIDERS)
_REMOTE_CAPABLE: dict[str, Callable[[SpeechSettings, SpeechClient | None], Synthesizer]] = {
    "piper": _piper,
    "kokoro": _kokoro,
}
"""The engines a speech pod runs (worker-pool synthesizers); espeak stays local (a subprocess per text)."""
LOCAL_ORDER = ("piper", "kokoro", "espeak")
"""Local engines, in the order they are asked to speak a language: piper's voice (English),
Kokoro (Japanese), espeak-ng (~100 languages, es/fr/de/ko among them)."""


class OfflineStandIn:
    """Speaks for a cloud provider that has no credentials here (sandbox only).

    ``name`` is the cloud provider's (a speaking keeps the provider asked for); the audio comes
    from the first of `LOCAL_ORDER` that speaks the language, resampled to piper's
    `sample_rate` (Hz) when the rates differ. A cloud ``voice_id`` is accepted as is and not used.
    """

    def __init__(self, name: str, registry: TtsRegistry) -> None:
        self.name = name
        self._registry = registry
        self.sample_rate = registry.get("piper").sample_rate

    def local_engine(self, language: str) -> Synthesizer:
        """The local synthesizer that speaks `language`. Raises `SpeechConfigError`."""
        errors = []
        for name in LOCAL_ORDER:
            engine = self._registry.get(name)
            try:
                engine.check(language=language)
            except SpeechConfigError as exc:
                errors.append(exc)
                continue
            return engine
        raise errors[-1]

    def check(self, *, language: str, voice: str | None = None) -> str:
        return self.local_engine(language).check(language=language)

    async def synthesize(self, text: str, *, language: str, voice: str | None = None) -> AsyncIterator[bytes]:
        engine = self.local_engine(language)
        chunks = engine.synthesize(text, language=language)
        if engine.sample_rate != self.sample_rate:
            chunks = resample_chunks(chunks, engine.sample_rate, self.sample_rate)
        async for chunk in chunks:
            yield chunk

    async def warm_up(self) -> None:
        warm = getattr(self._registry.get("piper"), "warm_up", None)
        if warm is not None:
            await warm()


class TtsRegistry:
    """The synthesizers of one process, built lazily from `SpeechSettings`; piper and kokoro speak
    on the speech pods when a `remote` client is given."""

    def __init__(self, settings: SpeechSettings | None = None, *, remote: SpeechClient | None = None) -> None:
        self.settings = settings or SpeechSettings()
        self.remote = remote
        self._synthesizers: dict[str, Synthesizer] = {}

    @property
    def default_provider(self) -> str:
        """``VOIPBIN_TTS_DEFAULT_PROVIDER``, else elevenlabs when keyed, else piper."""
        return self.settings.effective_tts_default_provider

    def get(self, provider: str | None = None) -> Synthesizer:
        """The synthesizer for `provider` (None -> `default_provider`).

        Raises:
            SpeechConfigError: unknown provider, or a cloud provider without credentials.
        """
        name = provider or self.default_provider
        if name not in _FACTORIES:
            raise SpeechConfigError(
                f"provider: unknown TTS provider {name!r} (one of {', '.join(TTS_PROVIDERS)})"
            )
        synthesizer = self._synthesizers.get(name)
        if synthesizer is None:
            if self.stands_in(name):
                log.warning("speech provider has no credentials: the local engine speaks for it "
                            "(VOIPBIN_SPEECH_OFFLINE_FALLBACK)", provider=name, kind="tts")
                synthesizer = OfflineStandIn(name, self)
            elif name in _REMOTE_CAPABLE:
                synthesizer = _REMOTE_CAPABLE[name](self.settings, self.remote)
            else:
                synthesizer = _FACTORIES[name](self.settings)
            self._synthesizers[name] = synthesizer
        return synthesizer

    def stands_in(self, provider: str) -> bool:
        """Whether `provider` is a cloud provider without credentials served by the local engines."""
        return (self.settings.speech_offline_fallback and provider in CLOUD_PROVIDERS
                and not self.settings.keyed(provider))

    def configured(self) -> list[str]:
        """The providers a request may name here: the local ones, the keyed cloud ones (all
        cloud ones when they fall back offline); the default first."""
        names = [self.default_provider, *LOCAL_ORDER, *CLOUD_PROVIDERS]
        usable = [n for n in names if self.settings.keyed(n) or self.stands_in(n)]
        return list(dict.fromkeys(usable))

    def provider_for(self, language: str, provider: str | None = None,
                     voice: str | None = None) -> tuple[Synthesizer, str]:
        """Who speaks `language`: ``(synthesizer, normalized language)``.

        `provider` named: that provider (its `check`). None: the default provider if it speaks
        the language, else the first configured engine that does (``ja-JP`` -> kokoro, ``ko-KR``
        -> espeak while the default is piper). May build engines (load voices): call it off the
        event loop.

        Raises:
            SpeechConfigError: invalid tag (``language: ...``), unknown or unconfigured provider
                (``provider: ...``), a voice the provider lacks (``voice_id: ...``), or no
                configured engine speaks the language (``language: ...``).
        """
        tag = normalize_language(language)
        if provider:
            synthesizer = self.get(provider)
            return synthesizer, synthesizer.check(language=tag, voice=voice or None)
        for name in self.configured():
            synthesizer = self.get(name)
            try:
                return synthesizer, synthesizer.check(language=tag, voice=voice or None)
            except UnsupportedLanguageError:
                continue
            except SpeechConfigError:
                if name == self.default_provider:
                    raise  # e.g. a voice the default provider lacks
                continue
        raise UnsupportedLanguageError(f"language: no configured text-to-speech engine speaks {tag}")

    def check(self, provider: str | None, *, language: str, voice: str | None = None) -> str:
        """Validate a request up front (for a 400 before any audio): normalized language."""
        return self.get(provider).check(language=language, voice=voice)

    async def aclose(self) -> None:
        """Close the cloud adapters' HTTP connections and stop the piper workers."""
        for synthesizer in self._synthesizers.values():
            aclose = getattr(synthesizer, "aclose", None)
            if aclose is not None:
                await aclose()
        self._synthesizers.clear()
