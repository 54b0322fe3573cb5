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


#: the first-clause rule (see :func:`split_first_clause`): a first sentence of more words is split
FIRST_CLAUSE_MIN_WORDS = 6
#: ... at its first clause break, when the clause before it is at most this many characters
MAX_FIRST_CLAUSE_CHARS = 40


def split_first_clause(text: str, *, min_words: int = FIRST_CLAUSE_MIN_WORDS) -> list[str]:
    """The first-clause latency rule: ``[opening clause, rest]``, or ``[text]`` unchanged.

    Time-to-first-audio is the latency a caller hears, so a first sentence of more than
    ``min_words`` words whose opening clause (up to its first ``, ; : —`` followed by space)
    is at most ``MAX_FIRST_CLAUSE_CHARS`` characters is synthesized as two units: that clause,
    then the rest of ``text`` (later sentences included). ``"Hello, how can I help you today?"``
    -> ``["Hello,", "how can I help you today?"]``; ``"Hello, world."`` (short) and a clause that
    does not open the first sentence stay whole. ``min_words=0`` disables the rule.
    """
    stripped = text.strip()
    first_sentence = _SENTENCE_END.split(stripped, maxsplit=1)[0]
    if not min_words or len(first_sentence.split()) <= min_words:
        return [text]
    brk = _CLAUSE_END.search(first_sentence)
    if brk is None or brk.start() > MAX_FIRST_CLAUSE_CHARS or not stripped[: brk.start() - 1].strip():
        return [text]
    return [stripped[: brk.start()], stripped[brk.end() :]]


def split_sentences(text: str, *, first_clause_words: int = FIRST_CLAUSE_MIN_WORDS) -> list[str]:
    """Split text into the units synthesized one after the other.

    Sentences end at ``. ! ?`` (and CJK equivalents) followed by space, or blank lines.
    The first sentence is then cut by the first-clause rule (:func:`split_first_clause` with
    ``min_words=first_clause_words``), so the first chunk of audio is ready sooner.
    ``first_clause_words=0`` disables it.
    """
    parts = [p.strip() for p in _SENTENCE_END.split(text.strip())]
    sentences = [p for p in parts if p]
    if first_clause_words and sentences:
        sentences[0:1] = split_first_clause(sentences[0], min_words=first_clause_words)
    return sentences


def check_text(text: str) -> None:
    """Raise `SpeechConfigError` for empty text or text over `MAX_TEXT_CHARS`."""
    if not text or not text.strip():
        raise SpeechConfigError("text: must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise SpeechConfigError(f"text: longer than {MAX_TEXT_CHARS} characters")
