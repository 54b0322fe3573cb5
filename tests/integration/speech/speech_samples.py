"""Audio and text samples for the speech integration tests and the bench.

Human speech: LibriVox recordings of "Sense and Sensibility" (public domain) shipped by
the Debian package ``pocketsphinx-testdata`` (package licence BSD-2-Clause, CMU) under
/usr/share/pocketsphinx/test/data/librivox, 16 kHz PCM16 mono WAV, with transcripts.
"""

import re
import wave
from pathlib import Path

import numpy as np

LIBRIVOX_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")

SENTENCES = [
    "Thank you for calling the support line.",
    "Your order has been shipped and will arrive on Monday.",
    "Please hold while we connect you to an agent.",
    "The meeting starts at nine in the morning.",
    "We could not find an account with that number.",
    "Press one to hear the menu again.",
    "The weather will be sunny with a light breeze.",
    "Your appointment is confirmed for next Tuesday.",
    "I will send you the details by email.",
    "Thank you for your patience and have a nice day.",
    "The library closes early on holidays.",
    "Please say your name after the tone.",
]


def librivox_utterances() -> list[tuple[str, bytes]]:
    """(transcript, 16 kHz PCM16) for each LibriVox recording."""
    transcripts = {}
    for line in (LIBRIVOX_DIR / "transcription").read_text().splitlines():
        match = re.match(r"<s>(.*)</s>\s*\((.*)\)", line.strip())
        if match:
            transcripts[match.group(2)] = " ".join(match.group(1).split())
    out = []
    for utt_id, text in sorted(transcripts.items()):
        with wave.open(str(LIBRIVOX_DIR / f"{utt_id}.wav")) as w:
            assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
            out.append((text, w.readframes(w.getnframes())))
    return out


def normalize(text: str) -> str:
    text = text.lower().replace("-", " ")
    text = re.sub(r"\bmr\b\.?", "mister", text)
    return " ".join(re.sub(r"[^a-z' ]", " ", text).split())


def mulaw_round_trip(pcm8k: bytes) -> bytes:
    """G.711 mu-law encode then decode (numpy, continuous mu-law curve, mu = 255).

    media/ owns the real codecs; this models their quantization for the tests.
    """
    mu = 255.0
    x = np.frombuffer(pcm8k, dtype="<i2").astype(np.float64) / 32768.0
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round(y * 127.0) / 127.0  # 8 bits: sign + 7 bits of magnitude
    z = np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu
    return (np.clip(z, -1, 1) * 32767).astype("<i2").tobytes()
