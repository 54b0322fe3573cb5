"""Text-to-speech: `Synthesizer` protocol, providers and the provider registry."""

from voipbin.speech.tts.base import Synthesizer, split_sentences
from voipbin.speech.tts.registry import TtsRegistry

__all__ = ["Synthesizer", "TtsRegistry", "split_sentences"]
