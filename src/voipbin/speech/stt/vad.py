"""Voice activity detection and utterance segmentation (Silero VAD on one thread).

`VadSegmenter` is a plain state machine: feed it 16 kHz PCM16, it returns what happened
(`VadStart`, `VadPause`, `VadResume`, `VadEnd`). It does no I/O and takes the speech
detector as a callable, so unit tests drive it with scripted probabilities. Silero looks
at 32 ms windows (512 samples at 16 kHz); callers run `process` off the event loop: in a
VAD worker process by default (`RemoteVad`), where each stream's segmenter lives in one
worker; or on threads (`LocalVad`).

The detector is :class:`voipbin.speech.stt.silero.SileroDetector` (Silero VAD v6.2 on one
thread, an energy gate before it; every window of a step in one call).
"""

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from voipbin.media.pcm import SAMPLE_WIDTH_BYTES

from voipbin.speech.audio import STT_SAMPLE_RATE
from voipbin.speech.settings import SpeechSettings
from voipbin.speech.stt.silero import WINDOW_SAMPLES, silero_detector

if TYPE_CHECKING:
    from voipbin.speech.workers import WorkerPool

WINDOW_BYTES = WINDOW_SAMPLES * SAMPLE_WIDTH_BYTES
WINDOW_S = WINDOW_SAMPLES / STT_SAMPLE_RATE  # 0.032 s

VAD_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vad")
"""Threads `LocalVad` runs on by default (threads start lazily)."""

SpeechDetector = Callable[[np.ndarray], float]
"""512 float32 samples in [-1, 1] at 16 kHz -> probability of speech in [0, 1]. A detector
may also have ``probabilities(windows)``: an ``(n, 512)`` array -> ``n`` probabilities, the
windows in order (`VadSegmenter` then makes one call per step instead of one per window)."""

@dataclass(frozen=True, slots=True)
class VadStart:
    """Speech confirmed; it began at `offset_s`."""

    offset_s: float


@dataclass(frozen=True, slots=True)
class VadPause:
    """Silence began at `offset_s` (and has lasted `tail_pad_ms`); `audio` is the
    utterance so far, tail included: a likely end, worth transcribing speculatively."""

    offset_s: float
    audio: bytes


@dataclass(frozen=True, slots=True)
class VadResume:
    """Speech came back before the silence was long enough to end the utterance."""

    offset_s: float


@dataclass(frozen=True, slots=True)
class VadEnd:
    """The utterance ended: speech from `start_s` to `end_s`; `audio` is its PCM16 (with
    `speech_pad_ms` before and `tail_pad_ms` after). `audio` equals the last
    `VadPause.audio` when the silence that ended it is the one that paused it."""

    start_s: float
    end_s: float
    audio: bytes


VadEvent = VadStart | VadPause | VadResume | VadEnd


class VadSegmenter:
    """Cuts a 16 kHz PCM16 stream into utterances.

    Args:
        detector: speech probability of one 512-sample window (see `SpeechDetector`).
        threshold: probability at or above which a window is speech.
        min_speech_ms: consecutive speech needed to start an utterance.
        min_silence_ms: consecutive silence that ends one.
        speech_pad_ms: audio kept before the start of speech.
        tail_pad_ms: silence kept after the end of speech (recognizers do better with
            some); `VadPause` comes this long after silence begins.
        max_utterance_s: an utterance this long ends even without silence.
    """

    def __init__(
        self,
        detector: SpeechDetector,
        *,
        threshold: float = 0.5,
        min_speech_ms: int = 96,
        min_silence_ms: int = 352,
        speech_pad_ms: int = 192,
        tail_pad_ms: int = 96,
        max_utterance_s: float = 28.0,
    ) -> None:
        self._detector = detector
        self._threshold = threshold
        self._off_threshold = max(threshold - 0.15, 0.01)
        self._min_speech = max(1, round(min_speech_ms / 1000 / WINDOW_S))
        self._min_silence = max(1, round(min_silence_ms / 1000 / WINDOW_S))
        self._pad = round(speech_pad_ms / 1000 / WINDOW_S)
        self._tail_windows = min(max(1, round(tail_pad_ms / 1000 / WINDOW_S)), self._min_silence)
        self._max_windows = int(max_utterance_s / WINDOW_S)
        self._pending = b""
        self._window_index = 0  # windows processed so far
        self._history: list[bytes] = []  # recent windows while not in speech (pad + candidate)
        self._speech_run = 0
        self._in_speech = False
        self._utterance: list[bytes] = []
        self._start_window = 0
        self._silence_run = 0
        self._last_speech_window = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def utterance_audio(self) -> bytes:
        """PCM16 of the utterance in progress (empty when not in speech)."""
        return b"".join(self._utterance)

    @property
    def trailing_silence_s(self) -> float:
        """Silence since the last speech of the utterance in progress (0 while speaking)."""
        return self._silence_run * WINDOW_S

    @property
    def offset_s(self) -> float:
        """Seconds of audio segmented so far."""
        return self._window_index * WINDOW_S

    @property
    def utterance_duration_s(self) -> float:
        return len(self._utterance) * WINDOW_S

    def process(self, pcm: bytes) -> list[VadEvent]:
        """Consume 16 kHz PCM16 (any length); return the events it caused, in order."""
        data = self._pending + pcm
        whole = len(data) - len(data) % WINDOW_BYTES
        self._pending = data[whole:]
        events: list[VadEvent] = []
        if not whole:
            return events
        samples = (np.frombuffer(data, dtype="<i2", count=whole // 2).astype(np.float32) / 32768.0).reshape(
            -1, WINDOW_SAMPLES
        )
        batch = getattr(self._detector, "probabilities", None)
        probs = batch(samples) if batch is not None else [self._detector(w) for w in samples]
        for i, pos in enumerate(range(0, whole, WINDOW_BYTES)):
            self._step(data[pos : pos + WINDOW_BYTES], float(probs[i]), events)
        return events

    def flush(self) -> list[VadEvent]:
        """End of stream: end the utterance in progress, if any."""
        if not self._in_speech:
            return []
        return [self._end()]

    def _step(self, window: bytes, prob: float, events: list[VadEvent]) -> None:
        index = self._window_index
        self._window_index += 1
        if not self._in_speech:
            self._history.append(window)
            self._speech_run = self._speech_run + 1 if prob >= self._threshold else 0
            if self._speech_run >= self._min_speech:
                keep = self._speech_run + self._pad
                self._utterance = self._history[-keep:]
                self._history = []
                self._in_speech = True
                self._start_window = index - self._speech_run + 1
                self._last_speech_window = index
                self._silence_run = 0
                events.append(VadStart(self._start_window * WINDOW_S))
            else:
                del self._history[: -(self._pad + self._min_speech)]
            return
        self._utterance.append(window)
        if prob >= self._off_threshold and (prob >= self._threshold or self._silence_run == 0):
            if self._silence_run:
                events.append(VadResume(index * WINDOW_S))
            self._silence_run = 0
            self._last_speech_window = index
        else:
            self._silence_run += 1
            if self._silence_run == self._tail_windows:
                speech_end = (self._last_speech_window + 1) * WINDOW_S
                events.append(VadPause(speech_end, self._audio_with_tail()))
            if self._silence_run >= self._min_silence:
                events.append(self._end())
                return
        if len(self._utterance) >= self._max_windows:
            events.append(self._end())

    def _audio_with_tail(self) -> bytes:
        """The utterance so far, with `tail_pad_ms` of the silence after its last speech."""
        trailing = max(self._silence_run - self._tail_windows, 0)
        return b"".join(self._utterance[: len(self._utterance) - trailing])

    def _end(self) -> VadEnd:
        end = VadEnd(
            start_s=self._start_window * WINDOW_S,
            end_s=(self._last_speech_window + 1) * WINDOW_S,
            audio=self._audio_with_tail(),
        )
        self._in_speech = False
        self._utterance = []
        self._history = []
        self._speech_run = 0
        self._silence_run = 0
        return end


def new_segmenter(settings: SpeechSettings) -> VadSegmenter:
    """A Silero `VadSegmenter` configured from `settings` (one per stream)."""
    return VadSegmenter(silero_detector(), **segmenter_config(settings))


@dataclass(frozen=True, slots=True)
class VadState:
    """What a stream needs to know of its segmenter after each step.

    `utterance_audio` is the utterance so far, sent only when an interim transcription
    is due (asked for with `interim_after_s`), else None.
    """

    in_speech: bool
    trailing_silence_s: float
    utterance_duration_s: float
    offset_s: float
    utterance_audio: bytes | None = None


def segment_step(
    segmenter: VadSegmenter, pcm: bytes, end_of_stream: bool, interim_after_s: float | None
) -> tuple[list[VadEvent], VadState]:
    """One step of a stream's segmentation: the events `pcm` caused and the state after.

    `interim_after_s`: the utterance audio is returned when someone is speaking (no
    trailing silence) and the utterance is at least this long; None: never.
    """
    events = segmenter.process(pcm)
    if end_of_stream:
        events += segmenter.flush()
    audio = None
    if (
        interim_after_s is not None
        and segmenter.in_speech
        and segmenter.trailing_silence_s == 0
        and segmenter.utterance_duration_s >= interim_after_s
    ):
        audio = segmenter.utterance_audio
    state = VadState(
        segmenter.in_speech,
        segmenter.trailing_silence_s,
        segmenter.utterance_duration_s,
        segmenter.offset_s,
        audio,
    )
    return events, state


class StreamVad(Protocol):
    """A stream's segmenter, wherever it runs."""

    async def step(
        self, pcm: bytes, end_of_stream: bool, interim_after_s: float | None
    ) -> tuple[list[VadEvent], VadState]: ...

    def close(self) -> None: ...


class LocalVad:
    """A `VadSegmenter` in this process, run on `executor` (threads; None: the loop's default)."""

    def __init__(self, segmenter: VadSegmenter, executor: Executor | None = None) -> None:
        self.segmenter = segmenter
        self._executor = executor

    async def step(
        self, pcm: bytes, end_of_stream: bool, interim_after_s: float | None
    ) -> tuple[list[VadEvent], VadState]:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, segment_step, self.segmenter, pcm, end_of_stream, interim_after_s
        )

    def close(self) -> None:
        pass


def segmenter_config(settings: SpeechSettings) -> dict:
    """`VadSegmenter` keyword arguments from `settings`."""
    return {
        "threshold": settings.vad_threshold,
        "min_speech_ms": settings.vad_min_speech_ms,
        "min_silence_ms": settings.vad_min_silence_ms,
        "speech_pad_ms": settings.vad_speech_pad_ms,
        "tail_pad_ms": settings.vad_tail_pad_ms,
        "max_utterance_s": settings.stt_max_utterance_s,
    }


# --- run inside a VAD worker (see `voipbin.speech.workers`): per-stream state lives in the
# worker that serves the stream. Module-level functions, picklable by reference; they sit
# beside `VadSegmenter` so the worker side and `RemoteVad` import nothing of each other.

_SEGMENTERS: dict[str, "VadSegmenter"] = {}


def init_vad() -> None:
    """Worker initializer: import and load Silero once."""
    silero_detector()


def vad_open(stream_id: str, config: dict) -> None:
    _SEGMENTERS[stream_id] = VadSegmenter(silero_detector(), **config)


def vad_process(stream_id: str, pcm: bytes, end_of_stream: bool, interim_after_s: float | None) -> tuple:
    """Segment `pcm` for one stream; return ``(events, state)`` (see `segment_step`)."""
    segmenter = _SEGMENTERS.get(stream_id)
    if segmenter is None:
        raise LookupError(f"VAD stream {stream_id} is not open in this worker (worker restarted?)")
    try:
        return segment_step(segmenter, pcm, end_of_stream, interim_after_s)
    finally:
        if end_of_stream:
            _SEGMENTERS.pop(stream_id, None)


def vad_close(stream_id: str) -> None:
    _SEGMENTERS.pop(stream_id, None)


class RemoteVad:
    """A Silero `VadSegmenter` living in one worker of a VAD `WorkerPool` (the least busy
    when the stream opens); its state stays there for the stream's life. A worker that
    died takes the stream's state with it: the next step raises `SpeechProviderError`."""

    def __init__(self, pool: "WorkerPool", settings: SpeechSettings) -> None:
        self._pool = pool
        self._worker = pool.least_busy()
        self._id = uuid.uuid4().hex
        self._config = segmenter_config(settings)
        self._opened = False

    async def step(
        self, pcm: bytes, end_of_stream: bool, interim_after_s: float | None
    ) -> tuple[list[VadEvent], VadState]:
        from voipbin.speech.errors import SpeechProviderError

        if not self._opened:
            await self._pool.run(vad_open, self._id, self._config, worker=self._worker)
            self._opened = True
        try:
            result = await self._pool.run(
                vad_process, self._id, pcm, end_of_stream, interim_after_s, worker=self._worker
            )
        except LookupError as exc:
            raise SpeechProviderError("vad", str(exc)) from exc
        if end_of_stream:
            self._opened = False
        return result

    def close(self) -> None:
        if self._opened:
            self._opened = False
            try:  # fire and forget: drop the state in the worker
                task = asyncio.get_running_loop().create_task(
                    self._pool.run(vad_close, self._id, worker=self._worker)
                )
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            except RuntimeError:  # no running loop: the pool is going away anyway
                pass


def vad_pool_key(settings: SpeechSettings) -> tuple:
    return ("vad", settings.vad_worker_mode, settings.vad_workers)


def vad_pool(settings: SpeechSettings) -> "WorkerPool":
    """The process's VAD workers for `settings` (shared by every recognizer)."""
    from voipbin.speech.workers import WorkerPool, shared_pool

    return shared_pool(
        vad_pool_key(settings),
        lambda: WorkerPool(
            "vad",
            size=settings.vad_workers,
            mode=settings.vad_worker_mode,
            initializer=init_vad,  # default priority: end of speech is detected promptly
            pipelined=True,  # one step of every stream queued in the worker, not a round trip each
        ),
    )


def stream_vad(settings: SpeechSettings) -> StreamVad:
    """A new stream's segmenter: in a VAD worker process, or on this process's VAD threads."""
    if settings.vad_worker_mode == "process":
        return RemoteVad(vad_pool(settings), settings)
    return LocalVad(new_segmenter(settings), VAD_EXECUTOR)
