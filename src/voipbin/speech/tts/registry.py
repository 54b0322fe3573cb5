"""Provider name -> `Synthesizer`, built on first use and kept for the process.

`TtsRegistry(settings).get("gcp")` returns the Google synthesizer, or raises
`SpeechConfigError` when that provider is unknown or has no credentials configured: a
request naming a cloud provider never falls back silently to another engine.
"""

from collections.abc import Callable

from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.settings import TTS_PROVIDERS, SpeechSettings
from voipbin.speech.tts.base import Synthesizer


def _piper(settings: SpeechSettings) -> Synthesizer:
    from voipbin.speech.tts.piper import PiperSynthesizer

    return PiperSynthesizer(
        settings.piper_model_path,
        threads=settings.piper_threads,
        workers=settings.piper_workers,
        mode=settings.piper_worker_mode,
        nice=settings.speech_worker_nice,
    )


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
    "espeak": _espeak,
    "elevenlabs": _elevenlabs,
    "gcp": _gcp,
    "aws": _aws,
}
assert set(_FACTORIES) == set(TTS_PROVIDERS)


class TtsRegistry:
    """The synthesizers of one process, built lazily from `SpeechSettings`."""

    def __init__(self, settings: SpeechSettings | None = None) -> None:
        self.settings = settings or SpeechSettings()
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
            synthesizer = self._synthesizers[name] = _FACTORIES[name](self.settings)
        return synthesizer

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
