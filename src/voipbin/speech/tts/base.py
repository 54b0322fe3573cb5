"""The `Synthesizer` protocol and the text segmentation every provider shares.

A synthesizer turns text into PCM16 mono chunks at its `sample_rate`, yielding each
chunk as soon as it is synthesized: sentence by sentence, never the whole text first.
Cancellation: the consumer cancels the task iterating, or calls ``aclose()`` on the
iterator; no further sentence is synthesized and any provider connection is closed.
"""

import re
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from voipbin.speech.errors import SpeechConfigError

MAX_TEXT_CHARS = 5000
"""Longest text one `synthesize` call accepts (the API's /say limit)."""

_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"'”’)\]]*\s+|\n\s*\n|\n(?=\s*[-*•])")
_CLAUSE_END = re.compile(r"(?<=[,;:—])\s+")


@runtime_checkable
class Synthesizer(Protocol):
    """Text in, PCM16 chunks out.

    Attributes:
        name: provider name as the API spells it (``"piper"``, ``"elevenlabs"``, ...).
        sample_rate: rate of every chunk `synthesize` yields, in Hz (e.g. 22050, 16000).
    """

    name: str
    sample_rate: int

    def check(self, *, language: str, voice: str | None = None) -> str:
        """Validate a request before synthesizing; return the normalized language.

        Raises:
            SpeechConfigError: invalid language, language or voice this provider lacks.
        """
        ...

    def synthesize(
        self, text: str, *, language: str, voice: str | None = None
    ) -> AsyncIterator[bytes]:
        """Synthesize `text`; an async iterator of PCM16 mono chunks at `sample_rate`.

        Each chunk holds a whole number of samples. Raises `SpeechConfigError` (on the
        first iteration) for a bad request, `SpeechProviderError` when the engine fails.
        """
        ...


def split_sentences(text: str, *, first_clause_words: int = 6) -> list[str]:
    """Split text into the units synthesized one after the other.

    Sentences end at ``. ! ?`` (and CJK equivalents) followed by space, or blank lines.
    A long first sentence (more than ``2 * first_clause_words`` words) is also split at
    its first clause break (``, ; :``), so the first chunk of audio is ready sooner:
    time-to-first-audio is the latency a caller hears. ``first_clause_words=0`` disables it.
    """
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    sentences = [p for p in parts if p]
    if first_clause_words and sentences:
        first = sentences[0]
        if len(first.split()) > 2 * first_clause_words:
            pieces = _CLAUSE_END.split(first, maxsplit=1)
            if len(pieces) == 2 and len(pieces[0].split()) >= 2:
                sentences[0:1] = pieces
    return sentences


def check_text(text: str) -> None:
    """Raise `SpeechConfigError` for empty text or text over `MAX_TEXT_CHARS`."""
    if not text or not text.strip():
        raise SpeechConfigError("text: must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise SpeechConfigError(f"text: longer than {MAX_TEXT_CHARS} characters")
