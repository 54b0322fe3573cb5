"""Real human one-to-three-word utterances, and the word error rate of their transcripts.

Corpus: Asterisk's core prompts in US English, recorded by Allison Smith (CC-BY-SA-3.0), from
the Debian packages ``asterisk-core-sounds-en-wav`` (8 kHz PCM16 mono WAV, telephone audio
as a call carries it) and ``asterisk-core-sounds-en`` (their transcripts,
``core-sounds-en.txt.gz``). An utterance is a prompt of one to three words whose transcript
is a whole sentence (ends with ``.``, ``!`` or ``?``: "Transfer.", "Hello.", "Thank you.",
"Login incorrect."); fragments meant to be joined ("for", "is unavailable", digits) and
prompts with no words ("[beep]") are left out: 51 utterances, 95 words, 65 s.

WER is computed as Whisper's authors do: both sides through Whisper's English normalizer
(``whisper-normalizer``), then punctuation it keeps (``...``) dropped.
"""

from __future__ import annotations

import gzip
import re
import wave
from dataclasses import dataclass
from pathlib import Path

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

SOUNDS_DIR = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
SAMPLE_RATE_HZ = 8000
_normalizer = EnglishTextNormalizer()


@dataclass(frozen=True)
class Utterance:
    name: str
    """The prompt's file name without ``.wav`` (``pbx-transfer``)."""
    text: str
    pcm: bytes
    """8 kHz PCM16 mono."""


def short_utterances() -> list[Utterance]:
    """The corpus (see the module doc), in the transcript file's order."""
    out = []
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8") as fh:
        for line in fh:
            name, sep, text = line.strip().partition(": ")
            if line.startswith(";") or not sep or not re.search(r"\w[.!?]$", text):
                continue
            if not 1 <= len(text.split()) <= 3 or not (path := SOUNDS_DIR / f"{name}.wav").exists():
                continue
            with wave.open(str(path)) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE_HZ, 1, 2), path
                out.append(Utterance(name, text, w.readframes(w.getnframes())))
    return out


def prompt_pcm(name: str) -> bytes:
    """8 kHz PCM16 of any prompt of the package by file name (``pbx-transfer``, ``vm-for``)."""
    with wave.open(str(SOUNDS_DIR / f"{name}.wav")) as w:
        return w.readframes(w.getnframes())


def normalize(text: str) -> str:
    """Whisper's English normalization, without the punctuation it keeps."""
    return " ".join(re.sub(r"[^\w' ]", " ", _normalizer(text)).split())


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Word error rate of `hypotheses` against `references`, both normalized."""
    return float(jiwer.wer([normalize(r) for r in references], [normalize(h) for h in hypotheses]))
