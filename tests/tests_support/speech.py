"""Judging what a phone heard: whisper on its audio, and word recall against the expected text."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from voipbin.media.pcm import resample

STT_RATE_HZ = 16000


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` (punctuation dropped, hyphens split)."""
    return re.sub(r"[^a-z' ]", " ", text.lower().replace("-", " ")).split()


def word_recall(expected: str, said: str) -> float:
    """Share of the words of ``expected`` found in ``said``."""
    want, got = words(expected), set(words(said))
    return sum(1 for w in want if w in got) / max(1, len(want))


async def hear(runtime: Any, pcm: bytes, rate: int = 8000) -> str:
    """Whisper's transcription (the runtime's default recognizer, en-US) of PCM16 at ``rate``."""
    recognizer = await asyncio.to_thread(runtime.stt.get, None)
    return str(await recognizer.transcribe(resample(pcm, rate, STT_RATE_HZ), language="en-US"))
