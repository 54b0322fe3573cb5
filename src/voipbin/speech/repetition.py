"""Guards against Whisper's decoding loops (pure functions on token counts and text).

Greedy Whisper decoding stops at an end-of-text token; on audio it finds ambiguous (a lone
word in a window shorter than the 30 s it was trained on) it may instead repeat the last
phrase until the token limit: "Transfer. Transfer. Transfer. ...". Whisper's reference
decoder (openai/whisper ``transcribe.py``) flags such output by its gzip compression ratio
(> 2.4) and decodes again. `voipbin.speech.inference` does the same with these tests, plus
two that also catch a short loop ("Demon test. Demon test."), whose text is too short to
compress: the decode used the whole token budget, or the text ends with a repeated phrase.
"""

from __future__ import annotations

import math
import re
import zlib

TOKENS_PER_S = 15.0
"""Most Whisper tokens one second of speech can need, in any language. Whisper's multilingual
vocabulary spends ~2 tokens a word on es/fr/de, 1.06 a character on Japanese, 0.9 a syllable on
Korean (measured on tests_support/languages.py's sentences); fast speech is ~4-5 words/s,
~8 Japanese characters/s, ~7 Korean syllables/s: 8-10 tokens/s at most, with punctuation. English
in tiny.en's vocabulary: LibriVox test recordings 3.7 tokens/s, Asterisk's short prompts 5.4
(median) to 8.2 (most). 15/s leaves room for all of them."""
MIN_TOKENS = 10
"""Tokens allowed on top of ``TOKENS_PER_S``: a lone word in a short utterance, with
punctuation, or a number written out."""
COMPRESSION_RATIO_MAX = 2.4
"""gzip compression ratio above which text is a loop (Whisper's reference threshold)."""

_WORD = re.compile(r"[\w']+")
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)


def token_budget(duration_s: float, ceiling: int | None = None) -> int:
    """Most new tokens to decode for `duration_s` seconds of audio: ``MIN_TOKENS +
    ceil(TOKENS_PER_S * duration_s)``, at most `ceiling` (None: no ceiling)."""
    budget = MIN_TOKENS + math.ceil(TOKENS_PER_S * max(0.0, duration_s))
    return budget if ceiling is None else min(budget, ceiling)


def compression_ratio(text: str) -> float:
    """UTF-8 length of `text` over its zlib-compressed length (as Whisper's reference)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _units(text: str) -> list[tuple[int, str]]:
    """(end offset, lower-cased unit) of the words of `text`; of its characters in a run of a
    script written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Burmese)."""
    units = []
    for m in _WORD.finditer(text):
        if _UNSPACED.search(m.group()):
            units += [(m.start() + i + 1, c.lower()) for i, c in enumerate(m.group())]
        else:
            units.append((m.end(), m.group().lower()))
    return units


def ends_in_repeat(text: str) -> bool:
    """Whether `text` ends with a phrase said twice in a row, case and punctuation aside
    ("Transfer. Transfer.", "Demon test. Demon test.", "one two one two"); in text written
    without spaces, characters are compared, two or more at a time ("テストテスト", not "ここ")."""
    units = _units(text)
    words = [unit for _, unit in units]
    shortest = 2 if units and len(units[-1][1]) == 1 and _UNSPACED.match(units[-1][1]) else 1
    return any(words[-2 * k:-k] == words[-k:] for k in range(shortest, len(words) // 2 + 1))


def looks_looped(text: str, n_tokens: int, budget: int) -> bool:
    """Whether a decode ran away: it used its whole token `budget`, or its text compresses
    like a loop (`COMPRESSION_RATIO_MAX`)."""
    return n_tokens >= budget or compression_ratio(text) > COMPRESSION_RATIO_MAX


def collapse_repeats(text: str) -> str:
    """`text` with a trailing run of one repeated phrase kept once ("Added. Added. Add" ->
    "Added."): the last resort when even Whisper's full window loops. Words are compared
    case and punctuation aside; the last word may be cut short (the token budget ran out);
    the first copy is kept as written, with the punctuation that follows it."""
    spans = _units(text)
    words = [unit for _, unit in spans]
    n = len(words)
    for k in range(1, n // 2 + 1):
        j = n - 1
        while j >= k and (words[j] == words[j - k] or (j == n - 1 and words[j - k].startswith(words[j]))):
            j -= 1
        if n - 1 - j >= k:  # words[j + 1 - k:] is two or more copies of one k-word phrase
            end = spans[j][0]
            tail = re.match(r"[^\w\s']*", text[end:])
            return text[: end + (tail.end() if tail else 0)].strip()
    return text.strip()
