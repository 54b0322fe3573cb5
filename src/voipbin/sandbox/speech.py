"""The virtual phone's voice: real human speech, the LibriVox recordings of pocketsphinx-testdata.

A LibriVox reading of "Sense and Sensibility" (public domain), shipped with its transcript by the
Debian package pocketsphinx-testdata (BSD-2-Clause, Carnegie Mellon University); the demo uses
the same recordings (:mod:`voipbin.demo.scenario`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voipbin.media.pcm import resample_pcm16
from voipbin.media.players import read_wav

LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")
SAMPLE_RATE_HZ = 8000


@dataclass(frozen=True)
class Utterance:
    """One recording: ``samples`` PCM16 mono at 8000 Hz and what is said (lower case)."""

    name: str
    samples: np.ndarray
    text: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE_HZ


def _transcripts(directory: Path) -> dict[str, str]:
    """``<s> words </s> (file-id)`` lines of the package's ``transcription`` file, by file id."""
    out: dict[str, str] = {}
    path = directory / "transcription"
    if path.exists():
        for line in path.read_text().splitlines():
            if "(" in line:
                words, _, rest = line.rpartition("(")
                out[rest.rstrip(") ")] = words.replace("<s>", "").replace("</s>", "").strip().lower()
    return out


def load_utterances(directory: Path = LIBRIVOX_DIR) -> list[Utterance]:
    """Every WAV of ``directory`` in name order, resampled to 8000 Hz.

    Raises FileNotFoundError when there is none (install the Debian package pocketsphinx-testdata).
    """
    texts = _transcripts(directory)
    out = []
    for wav in sorted(directory.glob("*.wav")):
        samples, rate = read_wav(wav)
        out.append(Utterance(wav.stem, resample_pcm16(samples, rate, SAMPLE_RATE_HZ), texts.get(wav.stem, "")))
    if not out:
        raise FileNotFoundError(f"no recordings in {directory} (Debian package pocketsphinx-testdata)")
    return out
