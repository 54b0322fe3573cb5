"""The local synthesizers whose sentences run in worker processes (piper, kokoro): one base class.

A text is cut into sentences (`sentences`, each engine its own rule); each sentence is one job
(`sentence_job`: a module-level function and its arguments) run on the engine's `WorkerPool`,
every sentence of one text on the same worker, in order, one at a time (a cancelled synthesis
stops at the next sentence). With a `SpeechClient` (``VOIPBIN_SPEECH_REMOTE=nats``, issue 20) the
sentences are spoken by the speech pods instead (subject ``voipbin.speech.tts.<name>.<remote_voice>``)
and no worker starts here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from voipbin.speech.tts.base import check_text
from voipbin.speech.workers import WorkerPool, close_shared_pool, prestart, worker_pid

if TYPE_CHECKING:
    from voipbin.speech.remote import SpeechClient


class PooledSynthesizer(ABC):
    """A `Synthesizer` whose sentences are jobs of one `WorkerPool` (or of the speech pods).

    Subclasses set ``name``, ``sample_rate`` (Hz) and ``remote_voice`` (the voice as one subject
    token), and give `worker_pool`, `sentences`, `sentence_job` and `check`. ``pool_key`` is the
    key of their shared pool (closed by `aclose`).
    """

    name: str
    sample_rate: int
    remote_voice: str

    def __init__(self, pool_key: tuple, *, remote: SpeechClient | None = None, prestart_workers: bool = True) -> None:
        self._pool_key = pool_key
        self._remote = remote
        if remote is None and prestart_workers:
            prestart(self.worker_pool())  # load the voice in the workers now, off the loop

    @abstractmethod
    def worker_pool(self) -> WorkerPool:
        """The workers synthesizing with this voice (shared by synthesizers of the same voice)."""

    @abstractmethod
    def sentences(self, text: str) -> list[str]:
        """`text` cut into the units synthesized one after the other."""

    @abstractmethod
    def sentence_job(self, sentence: str, voice: str | None) -> tuple[Callable[..., bytes], tuple]:
        """The worker job speaking one sentence: ``(function, arguments)``, the function returning
        PCM16 at `sample_rate`."""

    @abstractmethod
    def check(self, *, language: str, voice: str | None = None) -> str:
        """Validate a request (see `Synthesizer.check`); the normalized language."""

    async def synthesize_sentence(self, sentence: str, voice: str | None = None, *, worker: int | None = None) -> bytes:
        """PCM16 of one sentence at `sample_rate`, on worker ``worker`` (None: the least busy one)
        or on a speech pod. Raises `Overloaded` or `SpeechProviderError` when the workers fail."""
        if self._remote is not None:
            return await self._remote.synthesize(self.name, self.remote_voice, sentence, voice)
        fn, args = self.sentence_job(sentence, voice)
        return await self.worker_pool().run(fn, *args, worker=worker)

    async def synthesize(self, text: str, *, language: str, voice: str | None = None) -> AsyncIterator[bytes]:
        """PCM16 chunks of `text`, one per sentence (see `Synthesizer.synthesize`)."""
        self.check(language=language, voice=voice)
        check_text(text)
        worker = None if self._remote is not None else self.worker_pool().least_busy()  # one text, one worker
        for sentence in self.sentences(text):
            pcm = await self.synthesize_sentence(sentence, voice, worker=worker)
            if pcm:
                yield pcm

    async def warm_up(self) -> None:
        """Start the workers: each loads the voice and speaks once, so the first real request is
        not the slow one (nothing here when the speech pods speak)."""
        if self._remote is None:
            await self.worker_pool().run_all(worker_pid)

    async def aclose(self) -> None:
        """Stop the workers (the next use starts new ones)."""
        await close_shared_pool(self._pool_key)
