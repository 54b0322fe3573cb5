"""The `Recognizer` / `TranscriptionStream` protocols and the events they emit.

A stream takes 20 ms PCM16 mono frames at the rate it was opened with (8000 or 16000 Hz:
160 or 320 samples) and emits, for each utterance, in this order::

    SpeechStarted -> (SpeechInterim | SpeechPaused -> SpeechResumed)* -> SpeechPaused? -> SpeechEnded -> FinalTranscript

or, in the final's place, `TranscriptDropped` (overload, failure): every utterance ends in one of them.

`SpeechPaused` / `SpeechResumed` are optional (streams that segment locally emit them; cloud
streams need not): they let a consumer prepare a reply while the end of the utterance is not yet
confirmed (``ai_talk``'s preemptive reply).

Offsets are seconds of audio since the first frame fed (not wall-clock time).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """Someone started speaking at `offset_s`."""

    offset_s: float


@dataclass(frozen=True, slots=True)
class SpeechInterim:
    """Provisional text of the utterance in progress (may still change)."""

    text: str
    offset_s: float


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """The speaker fell silent at `offset_s` and `text` is what was said so far: the final text if
    the silence lasts long enough to end the utterance (then `FinalTranscript` repeats it)."""

    text: str
    offset_s: float


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """Speech came back at `offset_s` after a `SpeechPaused`: that text is void."""

    offset_s: float


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The speaker stopped at `offset_s` (end of the last speech, not detection time)."""

    offset_s: float


@dataclass(frozen=True, slots=True)
class FinalTranscript:
    """Final text of one utterance spoken from `start_s` to `end_s` (may be ``""``)."""

    text: str
    start_s: float
    end_s: float
    language: str


DROP_OVERLOADED = "overloaded"
DROP_FAILED = "failed"
DROP_NO_SPEECH = "no_speech"


@dataclass(frozen=True, slots=True)
class TranscriptDropped:
    """The utterance spoken from `start_s` to `end_s` gets no `FinalTranscript`; `reason` says why:
    ``overloaded`` (`DROP_OVERLOADED`: the recognizer was too far behind to start on it in time,
    so it was shed rather than queued without bound) or ``failed`` (`DROP_FAILED`: the
    recognizer failed on it, e.g. its worker died twice). Emitted in the final's place. A transcribe
    also publishes one with ``no_speech`` (`DROP_NO_SPEECH`) for a final whose text is empty (the
    recognizer heard no words in what the VAD took for speech: noise, a cough)."""

    reason: str
    start_s: float
    end_s: float
    language: str


SpeechEvent = (
    SpeechStarted | SpeechInterim | SpeechPaused | SpeechResumed | SpeechEnded | FinalTranscript | TranscriptDropped
)


@dataclass(frozen=True, slots=True)
class VadTuning:
    """How one stream finds speech and its end (an AI's ``vad_config``); None keeps the engine's
    setting. Streams segmented by our VAD (whisper, gcp) apply it; a provider that segments
    itself (aws) does not.

    Attributes:
        threshold: Silero speech probability (0-1) at or above which a 32 ms window is speech.
        min_speech_s: speech needed to start an utterance (seconds).
        min_silence_s: silence that ends one: the end-of-speech hangover (seconds).
        interim: whether interim text is produced while someone speaks. An AI's turn loop reads
            none: without them, no interim decode holds a core when the caller pauses and the
            speculative final is decoded.
    """

    threshold: float | None = None
    min_speech_s: float | None = None
    min_silence_s: float | None = None
    interim: bool = True

    def settings_update(self) -> dict[str, float | int]:
        """The `SpeechSettings` fields this tuning overrides (``vad_threshold``, ``vad_min_*_ms``)."""
        update: dict[str, float | int] = {}
        if self.threshold is not None:
            update["vad_threshold"] = self.threshold
        if self.min_speech_s is not None:
            update["vad_min_speech_ms"] = round(self.min_speech_s * 1000)
        if self.min_silence_s is not None:
            update["vad_min_silence_ms"] = round(self.min_silence_s * 1000)
        return update


@runtime_checkable
class TranscriptionStream(Protocol):
    """One audio stream being transcribed. Created inside a running event loop."""

    sample_rate: int

    def feed(self, frame: bytes) -> None:
        """Queue PCM16 audio (normally one 20 ms frame). Never blocks.

        Raises:
            ValueError: odd byte count, or the stream is closed.
        """
        ...

    def close(self) -> None:
        """End of audio: an utterance in progress is finalized, then `events` ends."""
        ...

    def events(self) -> AsyncIterator[SpeechEvent]:
        """The stream's events, in order; ends after `close` once all are delivered."""
        ...

    async def aclose(self) -> None:
        """Abort: stop at once, dropping pending work and events."""
        ...


@runtime_checkable
class Recognizer(Protocol):
    """A speech-to-text provider."""

    name: str

    def check(self, *, language: str) -> str:
        """Validate a language; return it normalized (BCP 47).

        Raises:
            SpeechConfigError: invalid tag, or a language this recognizer cannot hear.
        """
        ...

    def open_stream(self, *, language: str, sample_rate: int = 16000,
                    vad: VadTuning | None = None) -> TranscriptionStream:
        """Start transcribing a stream of `sample_rate` Hz PCM16 frames (`vad`: this stream's tuning)."""
        ...
