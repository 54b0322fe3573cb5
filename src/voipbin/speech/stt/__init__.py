"""Speech-to-text: VAD segmentation, `Recognizer` protocol, whisper (default), gcp, aws."""

from voipbin.speech.stt.base import (
    FinalTranscript,
    Recognizer,
    SpeechEnded,
    SpeechEvent,
    SpeechInterim,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TranscriptionStream,
)
from voipbin.speech.stt.registry import SttRegistry

__all__ = [
    "FinalTranscript",
    "Recognizer",
    "SpeechEnded",
    "SpeechEvent",
    "SpeechInterim",
    "SpeechPaused",
    "SpeechResumed",
    "SpeechStarted",
    "SttRegistry",
    "TranscriptionStream",
]
