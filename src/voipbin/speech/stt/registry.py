"""Provider name -> `Recognizer`, built on first use and kept for the process.

Unknown provider, or a cloud provider without credentials -> `SpeechConfigError`.
"""

from collections.abc import Callable

from voipbin.speech.errors import SpeechConfigError
from voipbin.speech.settings import STT_PROVIDERS, SpeechSettings
from voipbin.speech.stt.base import Recognizer


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
            recognizer = self._recognizers[name] = _FACTORIES[name](self.settings)
        return recognizer

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
