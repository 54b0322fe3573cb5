"""Speech engine figures: TTS time-to-first-chunk and real-time factor, STT real-time
factor, end-of-speech -> final transcript latency on recorded audio fed at real time.

Run: PYTHONPATH=src .venv/bin/python bench/speech_engines.py [--runs 20] [--mode process|thread]

--mode: where piper, whisper and the VAD run (VOIPBIN_*_WORKER_MODE; default: the settings').
"Loop max block" is the longest a 1 ms ticker on the event loop ran late (target <= 2 ms).

Human speech: LibriVox "Sense and Sensibility" recordings (public domain) from the Debian
package pocketsphinx-testdata. Targets: TTS first chunk p50 <= 150 ms for a short
sentence; STT final <= 500 ms after the end of speech.
"""

import argparse
import asyncio
import statistics
import time
import wave
from pathlib import Path

from voipbin.speech import SpeechSettings
from voipbin.media.pcm import duration_s, split_frames
from voipbin.speech.stt.base import FinalTranscript, SpeechEnded
from voipbin.speech.stt.whisper import WhisperRecognizer
from voipbin.speech.tts.espeak import EspeakSynthesizer
from voipbin.speech.tts.piper import PiperSynthesizer

LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
SHORT = "Hello, how can I help you today?"
PARAGRAPH = (
    "Thank you for calling. Your order has been shipped and will arrive on Monday. "
    "If you would like to change the delivery address, please stay on the line. "
    "An agent will answer shortly."
)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


class LoopLag:
    """The longest the event loop was blocked, two ways.

    `max_lag`: how late a 1 ms ticker ran; includes the OS's timer wake-up latency (about
    3 ms on an idle 2-vCPU VM here: see `idle_floor`). `max_callback`: the longest one
    callback (a task step, a handle) ran, timed around each `Handle._run`: what the loop
    really spent without serving anything else (GIL waits and preemption included).
    """

    _active: "list[LoopLag]" = []
    _patched = False

    def __init__(self) -> None:
        self.max_lag = 0.0
        self.max_callback = 0.0
        self.worst: object = None
        self._task: asyncio.Task | None = None

    @classmethod
    def _patch(cls) -> None:
        if cls._patched:
            return
        cls._patched = True
        original = asyncio.events.Handle._run

        def timed_run(handle: asyncio.events.Handle) -> None:
            start = time.perf_counter()
            try:
                original(handle)
            finally:
                took = time.perf_counter() - start
                for lag in cls._active:
                    if took > lag.max_callback:
                        lag.max_callback, lag.worst = took, handle

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.001
            await asyncio.sleep(0.001)
            self.max_lag = max(self.max_lag, loop.time() - due)

    def __enter__(self) -> "LoopLag":
        self._patch()
        self._active.append(self)
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        self._active.remove(self)

    def __str__(self) -> str:
        return f"loop max block {self.max_callback * 1000:.1f} ms (ticker late by {self.max_lag * 1000:.1f} ms)"


async def idle_floor() -> None:
    """The ticker's lateness with nothing else running: the timer noise of this machine."""
    with LoopLag() as lag:
        await asyncio.sleep(2)
    print(f"idle: {lag}")


async def tts_figures(synth, runs: int) -> None:
    async for _ in synth.synthesize("Warm up.", language="en-US"):
        pass
    firsts = []
    with LoopLag() as lag:
        for _ in range(runs):
            start = time.perf_counter()
            stream = synth.synthesize(SHORT, language="en-US")
            await anext(stream)
            firsts.append(time.perf_counter() - start)
            async for _ in stream:
                pass
        start = time.perf_counter()
        pcm = b"".join([c async for c in synth.synthesize(PARAGRAPH, language="en-US")])
        elapsed = time.perf_counter() - start
    audio = duration_s(pcm, synth.sample_rate)
    print(
        f"TTS {synth.name:7s} first chunk p50 {statistics.median(firsts) * 1000:6.1f} ms"
        f"  p90 {pct(firsts, 0.9) * 1000:6.1f} ms  (short sentence, {runs} runs)"
    )
    print(
        f"TTS {synth.name:7s} real-time factor {elapsed / audio:.3f}"
        f"  ({audio:.1f} s of audio in {elapsed * 1000:.0f} ms)  {lag}"
    )


def read_wav(path: Path) -> bytes:
    with wave.open(str(path)) as w:
        return w.readframes(w.getnframes())


async def stt_rtf(whisper: WhisperRecognizer) -> None:
    total_audio = total_time = 0.0
    for path in LIBRIVOX:
        pcm = read_wav(path)
        start = time.perf_counter()
        await whisper.transcribe(pcm, language="en-US")
        total_time += time.perf_counter() - start
        total_audio += duration_s(pcm, 16000)
    print(
        f"STT whisper real-time factor {total_time / total_audio:.3f}"
        f"  ({total_audio:.1f} s of audio in {total_time * 1000:.0f} ms, whole utterances)"
    )


async def stt_latency(whisper: WhisperRecognizer) -> None:
    silence = bytes(2 * 16000)  # 1 s between utterances
    pcm = silence[:16000] + b"".join(read_wav(p) + silence for p in LIBRIVOX)
    stream = whisper.open_stream(language="en-US")
    loop = asyncio.get_running_loop()
    start = 0.0

    async def feed() -> None:
        nonlocal start
        start = loop.time()
        for i, frame in enumerate(split_frames(pcm, 16000)):
            stream.feed(frame)
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))
        stream.close()

    final_lat, ended_lat = [], []
    with LoopLag() as lag:
        feeder = asyncio.create_task(feed())
        async for event in stream.events():
            now = loop.time()
            if isinstance(event, SpeechEnded):
                ended_lat.append(now - (start + event.offset_s))
            elif isinstance(event, FinalTranscript):
                final_lat.append(now - (start + event.end_s))
                print(f"    final {final_lat[-1] * 1000:5.0f} ms after end of speech: {event.text!r}")
        await feeder
    print(
        f"STT whisper end of speech -> SpeechEnded p50 {statistics.median(ended_lat) * 1000:.0f} ms;"
        f" -> FinalTranscript p50 {statistics.median(final_lat) * 1000:.0f} ms,"
        f" max {max(final_lat) * 1000:.0f} ms ({len(final_lat)} utterances fed at real time)"
    )
    print(f"STT event {lag} while streaming")


async def main(runs: int, mode: str | None) -> None:
    modes = {f"{e}_worker_mode": mode for e in ("piper", "whisper", "vad")} if mode else {}
    settings = SpeechSettings(**modes)
    print(f"workers: piper {settings.piper_worker_mode}, whisper {settings.whisper_worker_mode}"
          f" (+{settings.whisper_interim_workers} interim), vad {settings.vad_worker_mode}")
    await idle_floor()
    piper = PiperSynthesizer(settings.piper_model_path, threads=settings.piper_threads,
                             workers=settings.piper_workers, mode=settings.piper_worker_mode,
                             nice=settings.speech_worker_nice)
    await piper.warm_up()
    await tts_figures(piper, runs)
    await piper.aclose()
    await tts_figures(EspeakSynthesizer(), runs)
    whisper = WhisperRecognizer(settings)
    await whisper.warm_up()
    await stt_rtf(whisper)
    await stt_latency(whisper)
    await whisper.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--mode", choices=("process", "thread"), default=None)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.mode))
