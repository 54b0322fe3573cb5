"""`SegmentedTranscriptionStream`: VAD-segmented transcription over any utterance transcriber.

Pipeline (one input, one output per stage): frames -> resample to 16 kHz -> `VadSegmenter`
(off the loop: a VAD worker process, or a thread) -> events, with transcription jobs for
interim and final text. Interim jobs may go to their own transcriber (a separate worker)
so that one in flight never delays the final.

Latency: when silence begins (`VadPause`, at the first silent 32 ms window with the default
``vad_tail_pad_ms``) the utterance so far is sent for transcription at once, speculatively; if the silence lasts long enough to end the utterance, that
result is the final transcript, so the final text is ready about when the end of speech
is confirmed instead of a whole transcription later. Speech resuming discards it. The
speculative text is also emitted as `SpeechPaused` as soon as it is ready (if the pause still
holds), then `SpeechResumed` if speech comes back: a consumer can prepare its answer during
the hangover (``ai_talk``).

Input: `feed` puts frames on a bounded :class:`~voipbin.media.frames.FrameQueue` and never
blocks (it is called from the media tick); when the pipeline is ``max_queued_frames`` behind,
the oldest frame is dropped and counted in `frames_dropped`.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor

from voipbin.media.frames import FrameQueue
from voipbin.media.pcm import StreamResampler
from voipbin.speech.audio import STT_SAMPLE_RATE
from voipbin.speech.errors import SpeechProviderError
from voipbin.speech.stt.base import (
    DROP_FAILED,
    DROP_OVERLOADED,
    FinalTranscript,
    SpeechEnded,
    SpeechEvent,
    SpeechInterim,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    TranscriptDropped,
)
from voipbin.speech.workers import Overloaded
from voipbin.speech.stt.vad import (
    WINDOW_BYTES,
    LocalVad,
    StreamVad,
    VadEnd,
    VadEvent,
    VadPause,
    VadResume,
    VadSegmenter,
    VadStart,
    VadState,
)

Transcribe = Callable[[bytes], Awaitable[str]]
"""16 kHz PCM16 of one utterance -> its text."""

_Item = SpeechEvent | asyncio.Future | None
_BATCH = 16  # frames segmented per VAD call when behind (320 ms at 20 ms a frame)
MAX_QUEUED_FRAMES = 3000
"""Frames `feed` queues before dropping the oldest: 60 s of 20 ms frames (~1.9 MB at 16 kHz).
A live leg feeds in real time, so only a stalled VAD fills it; callers that feed a whole
recording at once (tests, benches) stay well under it."""


class SegmentedTranscriptionStream:
    """A `TranscriptionStream` made of a `VadSegmenter` and a `Transcribe` function.

    Args:
        segmenter: the VAD state machine for this stream, run on `vad_executor` threads;
            or, instead, `vad`: a segmenter elsewhere (`RemoteVad`: a worker process).
        transcribe: async utterance transcriber for final text (Whisper worker, REST call, ...).
        transcribe_interim: transcriber for interim text (default: `transcribe`).
        language: normalized BCP 47 tag reported in `FinalTranscript`.
        sample_rate: rate of the frames fed (resampled to 16 kHz with soxr).
        vad_executor: where a local `segmenter` runs (it costs ~1 ms per 32 ms window).
        interim_interval_s: produce interim text every this much speech; None: never.
        max_queued_frames: bound of the input queue (oldest dropped when full, see module doc).
    """

    def __init__(
        self,
        *,
        segmenter: VadSegmenter | None = None,
        vad: StreamVad | None = None,
        transcribe: Transcribe,
        transcribe_interim: Transcribe | None = None,
        language: str,
        sample_rate: int = STT_SAMPLE_RATE,
        vad_executor: Executor | None = None,
        interim_interval_s: float | None = 1.0,
        max_queued_frames: int = MAX_QUEUED_FRAMES,
    ) -> None:
        if (segmenter is None) == (vad is None):
            raise TypeError("give one of segmenter, vad")
        self.sample_rate = sample_rate
        self.language = language
        self._vad: StreamVad = vad if vad is not None else LocalVad(segmenter, vad_executor)  # type: ignore[arg-type]
        self._state = VadState(False, 0.0, 0.0, 0.0)
        self._pending = b""
        self._transcribe = transcribe
        self._transcribe_interim = transcribe_interim or transcribe
        self._resampler = StreamResampler(sample_rate, STT_SAMPLE_RATE)
        self._interim_interval_s = interim_interval_s
        self._inbox = FrameQueue(max_queued_frames)
        self._outbox: asyncio.Queue[_Item] = asyncio.Queue()
        self._closed = False
        self._jobs: set[asyncio.Task] = set()
        self._speculative: asyncio.Task | None = None
        self._interim_job: asyncio.Task | None = None
        self._speculative_audio_len = 0
        self._paused_emitted = False
        self._next_interim_s = 0.0
        self._last_interim = ""
        self._runner = asyncio.get_running_loop().create_task(self._run())

    # --- TranscriptionStream ------------------------------------------------------------
    def feed(self, frame: bytes) -> None:
        if self._closed:
            raise ValueError("stream is closed")
        if len(frame) % 2:
            raise ValueError("PCM16 frame with an odd number of bytes")
        self._inbox(frame)

    @property
    def frames_dropped(self) -> int:
        """Frames dropped because the input queue was full (oldest first)."""
        return self._inbox.dropped

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._inbox.close()

    async def events(self) -> AsyncIterator[SpeechEvent]:
        while True:
            item = await self._outbox.get()
            if item is None:
                return
            if isinstance(item, asyncio.Future):
                await asyncio.wait([item])
                if item.cancelled():
                    continue
                result = item.result()  # a failed final transcription raises here
                if result is not None:
                    yield result
            else:
                yield item

    async def aclose(self) -> None:
        self._closed = True
        self._runner.cancel()
        for job in list(self._jobs):
            job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        self._vad.close()
        self._outbox.put_nowait(None)

    # --- pipeline -----------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            inbox = self._inbox
            while True:
                try:
                    chunks = [await inbox.get()]
                except EOFError:
                    chunks = []
                while len(inbox) and len(chunks) < _BATCH:
                    chunks.append(inbox.get_nowait())  # catch up, a few frames a call
                end_of_stream = inbox.closed and not len(inbox)
                pcm = self._pending + b"".join(self._resampler.process(c) for c in chunks)
                if end_of_stream:
                    pcm += self._resampler.flush()
                    self._pending = b""
                else:  # VAD looks at whole 32 ms windows: each is sent as soon as its last frame is here
                    whole = len(pcm) - len(pcm) % WINDOW_BYTES
                    pcm, self._pending = pcm[:whole], pcm[whole:]
                    if not pcm:
                        continue
                events, self._state = await self._vad.step(pcm, end_of_stream, self._interim_due_at())
                for event in events:
                    self._on_vad(event)
                if self._state.in_speech:
                    self._maybe_interim()
                if end_of_stream:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # VAD failed (e.g. its worker died): events() raises it
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            self._outbox.put_nowait(failed)
            self._vad.close()
        finally:
            self._outbox.put_nowait(None)

    def _on_vad(self, event: VadEvent) -> None:
        if isinstance(event, VadStart):
            self._last_interim = ""
            self._next_interim_s = self._interim_interval_s or 0.0
            self._outbox.put_nowait(SpeechStarted(event.offset_s))
        elif isinstance(event, VadPause):
            self._drop_speculative()
            speculative = self._speculative = self._job(self._transcribe(event.audio))
            self._speculative_audio_len = len(event.audio)
            speculative.add_done_callback(lambda job: self._on_speculative(job, event.offset_s))
        elif isinstance(event, VadResume):
            self._drop_speculative()
            if self._paused_emitted:
                self._paused_emitted = False
                self._outbox.put_nowait(SpeechResumed(event.offset_s))
        elif isinstance(event, VadEnd):
            if self._interim_job is not None:  # stale now: never hold the end and the final back behind it
                self._interim_job.cancel()
                self._interim_job = None
            self._paused_emitted = False
            self._outbox.put_nowait(SpeechEnded(event.end_s))
            if self._speculative is not None and self._speculative_audio_len == len(event.audio):
                text_job, self._speculative = self._speculative, None
            else:
                self._drop_speculative()
                text_job = self._job(self._transcribe(event.audio))
            self._outbox.put_nowait(self._job(self._final(text_job, event)))

    def _on_speculative(self, job: asyncio.Task, offset_s: float) -> None:
        """The pause's text is ready: emit it while the pause holds (not once the end consumed it)."""
        if job is not self._speculative or job.cancelled() or job.exception() is not None:
            return
        text = job.result().strip()
        if text:
            self._paused_emitted = True
            self._outbox.put_nowait(SpeechPaused(text, offset_s))

    def _interim_due_at(self) -> float | None:
        """Utterance length at which the VAD should hand back audio for an interim."""
        if self._interim_interval_s is None or self._jobs:
            return None  # never queue interim work behind (or ahead of) other transcription
        return self._next_interim_s

    def _maybe_interim(self) -> None:
        state = self._state
        if self._interim_interval_s is None or self._jobs or state.utterance_audio is None:
            return
        if state.trailing_silence_s > 0:
            return  # the utterance may be ending: keep the recognizer free for the final
        if state.utterance_duration_s < self._next_interim_s:
            return
        self._next_interim_s = state.utterance_duration_s + self._interim_interval_s
        self._interim_job = self._job(self._interim(state.utterance_audio, state.offset_s))
        self._outbox.put_nowait(self._interim_job)

    async def _interim(self, audio: bytes, offset_s: float) -> SpeechInterim | None:
        try:
            text = (await self._transcribe_interim(audio)).strip()
        except Exception:  # an interim is best effort; the final reports failures
            return None
        if not text or text == self._last_interim:
            return None
        self._last_interim = text
        return SpeechInterim(text, offset_s)

    async def _final(self, text_job: asyncio.Task, event: VadEnd) -> FinalTranscript | TranscriptDropped:
        """The utterance's final text, or `TranscriptDropped` when the recognizer shed it (overload)
        or failed on it: every utterance ends in one of them, and the stream goes on."""
        try:
            text = await text_job
        except SpeechProviderError as exc:
            reason = DROP_OVERLOADED if isinstance(exc, Overloaded) else DROP_FAILED
            return TranscriptDropped(reason, event.start_s, event.end_s, self.language)
        return FinalTranscript(text.strip(), event.start_s, event.end_s, self.language)

    def _job(self, coro: Awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        return task

    def _drop_speculative(self) -> None:
        if self._speculative is not None:
            self._speculative.cancel()
            self._speculative = None
