"""Speech engines: text-to-speech and speech-to-text, stand-alone.

This package knows nothing of SIP, HTTP or customers. It turns text into PCM16 audio
(`voipbin.speech.tts`) and PCM16 audio into speech events and transcripts
(`voipbin.speech.stt`). Audio is always signed 16-bit little-endian mono ("PCM16").
"""

from voipbin.speech.errors import (
    InvalidLanguageError,
    SpeechConfigError,
    SpeechError,
    SpeechProviderError,
    UnsupportedLanguageError,
)
from voipbin.speech.settings import SpeechSettings

__all__ = [
    "InvalidLanguageError",
    "SpeechConfigError",
    "SpeechError",
    "SpeechProviderError",
    "SpeechSettings",
    "UnsupportedLanguageError",
]
