"""Speech latency on a live call, end to end through the API, the media pipeline and RTP.

Run: .venv/bin/python bench/speech_latency.py [--runs 20]

In-process: one Runtime (SQLite in a temp dir, memory bus, uvloop), the REST API over httpx's
ASGI transport, and a scripted call leg (tests/tests_support/fake_legs.py: no SIP) whose media
is real RTP over 127.0.0.1 between our RtpSession and a "phone" RtpSession. Events are taken
from a bus subscription in the same process (not a WebSocket: the hub adds one JSON encode and
a socket write on top). Figures, p50/p90/max over --runs runs:

  * POST /say -> first RTP packet carrying speech, at our socket (target p50 <= the engine's first
    chunk + 20 ms), and at the phone (after its jitter buffer); beside it, the reference: the TTS
    engine alone, from its call to its first chunk of the same first unit, run just before each /say;
  * POST /flush -> last RTP packet carrying speech, at our socket (target <= 40 ms) and at the phone;
  * end of the caller's speech (the last voiced packet the phone sent) -> transcript_created published
    (target p50 <= 700 ms): LibriVox recordings (Debian pocketsphinx-testdata) spoken by the phone;
  * the same for one-to-three-word utterances (Asterisk's prompts, Debian asterisk-core-sounds-en-wav,
    see tests/tests_support/short_utterances.py), with their WER and how many ended in a repeated phrase;
  * real-time factor of TTS (piper) and STT (whisper) as configured;
  * the end-of-speech hangover's trade-off, in audio time (`endpointing`, or --endpointing-only):
    how soon the VAD ends a sentence against how many sentences with a comma it cuts in two.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import re
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from tests_support.fake_legs import FakeOriginator, register  # noqa: E402
from tests_support.short_utterances import SAMPLE_RATE_HZ as SHORT_RATE_HZ  # noqa: E402
from tests_support.short_utterances import short_utterances  # noqa: E402
from tests_support.short_utterances import wer as short_wer  # noqa: E402
from tests_support.short_utterances import SOUNDS_DIR, TRANSCRIPTS  # noqa: E402
from voipbin.media.codecs.g711 import PcmuCodec  # noqa: E402
from voipbin.media.pcm import StreamResampler, resample, split_frames  # noqa: E402
from voipbin.speech.audio import STT_SAMPLE_RATE  # noqa: E402
from voipbin.speech.repetition import ends_in_repeat  # noqa: E402
from voipbin.speech.settings import SpeechSettings  # noqa: E402
from voipbin.speech.stt.silero import silero_detector  # noqa: E402
from voipbin.speech.stt.vad import WINDOW_BYTES, VadEnd, VadSegmenter, segmenter_config  # noqa: E402
from voipbin.speech.tts.base import split_first_clause  # noqa: E402
from voipbin.api.app import create_app  # noqa: E402
from voipbin.config import Settings  # noqa: E402
from voipbin.media.players import BufferPlayer  # noqa: E402
from voipbin.runtime import Runtime  # noqa: E402
from voipbin.media.pcm import duration_s  # noqa: E402
from voipbin.store.migrate import upgrade  # noqa: E402

LIBRIVOX = sorted(Path("/usr/share/pocketsphinx/test/data/librivox").glob("*.wav"))
VOICED_RMS = 300.0
HANGOVERS_MS = (192, 224, 256)
"""End-of-speech hangovers compared with the configured one (``VOIPBIN_VAD_MIN_SILENCE_MS``)."""
SHORT = "Hello, how can I help you today?"
LONG = ("Thank you for calling the support line. Your order has been shipped and will arrive on Monday. "
        "If you would like to change the delivery address, please stay on the line.")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def line(name: str, values: list[float], target: str = "") -> None:
    ms = [v * 1000 for v in values]
    print(f"{name:52s} p50 {statistics.median(ms):6.1f} ms  p90 {pct(ms, 0.9):6.1f} ms  max {max(ms):6.1f} ms"
          f"  (n={len(ms)}){'  target ' + target if target else ''}")


def rms(frame: bytes) -> float:
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples ** 2)))


class Tap:
    """(loop time, rms) of every 20 ms frame passing a media tap or consumer."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, float]] = []
        self._waiter: tuple[Any, asyncio.Future[None]] | None = None

    def __call__(self, frame: bytes) -> None:
        self.frames.append((asyncio.get_running_loop().time(), rms(frame)))
        if self._waiter is not None and not self._waiter[1].done() and self._waiter[0]():
            self._waiter[1].set_result(None)

    async def until(self, cond: Any, timeout: float = 30) -> None:
        if cond():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter = (cond, fut)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self._waiter = None

    def first_voiced_after(self, t0: float) -> float | None:
        return next((t for t, r in self.frames if t >= t0 and r > VOICED_RMS), None)

    def last_voiced(self) -> float:
        return max(t for t, r in self.frames if r > VOICED_RMS)

    def silent_since(self, seconds: float) -> bool:
        n = int(seconds / 0.02)
        return len(self.frames) >= n and all(r <= VOICED_RMS for _, r in self.frames[-n:])


def comma_prompts() -> list[tuple[str, bytes]]:
    """Asterisk's prompts that are one sentence of five words or more with a comma in it
    ("Please enter a new extension, followed by pound."): (name, 8 kHz PCM16)."""
    prompts = []
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8") as fh:
        for line_ in fh:
            name, sep, text = line_.strip().partition(": ")
            if line_.startswith(";") or not sep or "," not in text or "/" in name or text.startswith("..."):
                continue
            if re.search(r"[.!?]", text.rstrip(".!? ")) or len(text.split()) < 5:
                continue  # several sentences: a cut between them is right
            if (path := SOUNDS_DIR / f"{name}.wav").exists():
                with wave.open(str(path)) as w:
                    prompts.append((name, w.readframes(w.getnframes())))
    return prompts


def over_pcmu(pcm8k: bytes) -> tuple[bytes, list[float]]:
    """`pcm8k` with 0.5 s of silence before and 1.5 s after, through PCMU and up to 16 kHz as a
    transcribe hears it; and the RMS of each 20 ms frame."""
    codec = PcmuCodec()
    frames = [codec.decode(codec.encode(f)) for f in split_frames(bytes(8000) + pcm8k + bytes(24000), 8000)]
    up = StreamResampler(8000, STT_SAMPLE_RATE)
    return b"".join(up.process(f) for f in frames) + up.flush(), [rms(f) for f in frames]


def endpointing(hangovers_ms: tuple[int, ...]) -> None:
    """The end-of-speech hangover's trade-off, in audio time (no clock: the same figures on any
    machine): when the VAD ends a LibriVox sentence after its last voiced 20 ms frame, and how
    many Asterisk one-sentence prompts with a comma it cuts in several utterances (each cut is
    a sentence split in two transcripts). The configured hangover is the reference row."""
    settings = SpeechSettings()
    sentences = []
    for path in LIBRIVOX:
        with wave.open(str(path)) as w:
            sentences.append(over_pcmu(resample(w.readframes(w.getnframes()), w.getframerate(), 8000)))
    prompts = [over_pcmu(pcm) for _, pcm in comma_prompts()]
    print(f"VAD end of speech, audio time (LibriVox over PCMU; {len(prompts)} Asterisk one-sentence prompts with a comma):")
    for hangover in sorted({*hangovers_ms, settings.vad_min_silence_ms}):
        config = {**segmenter_config(settings), "min_silence_ms": hangover}
        lags, pieces = [], []
        for pcm, levels in sentences:
            segmenter = VadSegmenter(silero_detector(), **config)
            detected = 0.0
            for pos in range(0, len(pcm), WINDOW_BYTES):
                if any(isinstance(e, VadEnd) for e in segmenter.process(pcm[pos : pos + WINDOW_BYTES])):
                    detected = segmenter.offset_s
            last_voiced = (max(i for i, r in enumerate(levels) if r > VOICED_RMS) + 1) * 0.02
            lags.append(detected - last_voiced)
        cut = 0
        for pcm, _ in prompts:
            segmenter = VadSegmenter(silero_detector(), **config)
            n = sum(isinstance(e, VadEnd) for e in segmenter.process(pcm) + segmenter.flush())
            pieces.append(n)
            cut += n > 1
        ms = sorted(lag * 1000 for lag in lags)
        print(f"  hangover {hangover:3d} ms{' (configured)' if hangover == settings.vad_min_silence_ms else '             '}"
              f"  end detected after the last voiced frame: p50 {statistics.median(ms):4.0f} ms, max {ms[-1]:4.0f} ms"
              f"  | prompts cut: {cut} of {len(prompts)} ({sum(pieces)} utterances)")


async def main(runs: int, stt_only: bool = False, tts_only: bool = False) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="voipbin-bench-"))
    url = f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    settings = Settings(database_url=url, sip_port=0, webhook_worker=False,  # type: ignore[call-arg]
                        rtp_timeout_seconds=600, _env_file=None)
    originator = FakeOriginator()
    rt = Runtime(settings, originator=originator)
    await rt.start()
    await rt.warm_up()  # as a server does at start: the voice and the models load in their workers first
    seed = await rt.seed_sandbox()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, Any]] = asyncio.Queue()
    sub = await rt.bus.subscribe(f"customer_id:{seed.customer_id}", lambda e: queue.put_nowait((loop.time(), e)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(rt)), base_url="http://api") as api:
        token = (await api.post("/auth/login", json={"username": seed.username, "password": seed.password})).json()["token"]
        t = {"token": token}
        r = await api.post("/v1.0/extensions", params=t, json={
            "name": "bench-phone", "detail": "bench softphone", "extension": "bench1", "password": "bench-password"})
        assert r.status_code == 200, r.text
        ext = r.json()
        await register(rt, ext, "sip:bench1@127.0.0.1:35060", ("127.0.0.1", 35060))
        call = (await api.post("/v1.0/calls", params=t, json={
            "source": {"type": "tel", "target": seed.number},
            "destinations": [{"type": "extension", "target_name": "bench-phone"}],
            "actions": [{"type": "sleep", "option": {"duration": 3_600_000}}]})).json()["calls"][0]
        leg = await originator.next_leg()
        await leg.answer()

        async def next_event(kind: str | tuple[str, ...], timeout: float = 60, **data: Any) -> tuple[float, Any]:
            kinds = (kind,) if isinstance(kind, str) else kind
            while True:
                at, event = await asyncio.wait_for(queue.get(), timeout)  # at: when it was published
                if event.event_type in kinds and all(event.data.get(k) == v for k, v in data.items()):
                    return at, event

        await next_event("call_progressing")
        assert leg.media is not None and leg.phone is not None
        sent, heard = Tap(), Tap()
        leg.media.add_outbound_tap(sent)
        leg.phone.add_inbound_consumer(heard)

        # ---------------------------------------------------------------- speaking
        if not stt_only:
            sid = (await api.post("/v1.0/speakings", params=t, json={
                "reference_type": "call", "reference_id": call["id"], "language": "en-US", "direction": "out"})).json()["id"]
            await next_event("speaking_started")
            say_sent, say_heard, flush_sent, flush_heard, engine_first = [], [], [], [], []
            synth = rt.tts.get(None)
            for i in range(runs):
                text = SHORT if i % 2 else LONG
                # the reference, interleaved: the engine alone, from the call to its first chunk of the
                # unit the speaking synthesizes first (the same first-clause rule), run to its end
                # so that the /say below finds the engine idle. First the engine's queue is drained:
                # the last /say's flushed text may still be synthesizing in the worker.
                async for _ in synth.synthesize("Hi.", language="en-US"):
                    pass
                e0 = time.perf_counter()
                chunks = synth.synthesize(split_first_clause(text)[0], language="en-US")
                await anext(chunks)
                engine_first.append(time.perf_counter() - e0)
                async for _ in chunks:
                    pass
                t0 = loop.time()
                await api.post(f"/v1.0/speakings/{sid}/say", params=t, json={"text": text})
                await sent.until(lambda t0=t0: sent.first_voiced_after(t0) is not None)
                await heard.until(lambda t0=t0: heard.first_voiced_after(t0) is not None)
                say_sent.append(sent.first_voiced_after(t0) - t0)  # type: ignore[operator]
                say_heard.append(heard.first_voiced_after(t0) - t0)  # type: ignore[operator]
                await sent.until(lambda t0=t0: sum(1 for tt, r in sent.frames if tt >= t0 and r > VOICED_RMS) >= 25)
                t1 = loop.time()
                await api.post(f"/v1.0/speakings/{sid}/flush", params=t)
                await heard.until(lambda t1=t1: heard.frames[-1][0] - t1 > 0.5)
                flush_sent.append(max(0.0, sent.last_voiced() - t1))
                flush_heard.append(max(0.0, heard.last_voiced() - t1))
            await api.post(f"/v1.0/speakings/{sid}/stop", params=t)
            line("TTS engine alone: call -> first chunk (reference)", engine_first)
            line("POST /say -> first speech packet sent", say_sent, "p50 <= engine + 20 ms")
            gap = [s - e for s, e in zip(say_sent, engine_first)]
            line("  per run: /say -> first packet, minus the engine", gap)
            line("POST /say -> first speech frame at the phone", say_heard)
            line("POST /flush -> last speech packet sent", flush_sent, "<= 40 ms")
            line("POST /flush -> last speech frame at the phone", flush_heard)

        if tts_only:
            await sub.unsubscribe()
            await rt.stop()
            return
        # ---------------------------------------------------------------- transcription of the caller
        phone_sent = Tap()
        leg.phone.add_outbound_tap(phone_sent)
        tid = (await api.post("/v1.0/transcribes", params=t, json={
            "reference_type": "call", "reference_id": call["id"], "language": "en-US", "direction": "in"})).json()["id"]
        recordings = []
        for path in LIBRIVOX:
            with wave.open(str(path)) as w:
                recordings.append((w.readframes(w.getnframes()), w.getframerate()))

        async def phone_says(pcm: bytes, rate: int) -> tuple[float, float, list[str]]:
            """The phone plays `pcm`: (end of speech -> transcript_created, -> speech_ended, texts)."""
            t0 = loop.time()
            player = BufferPlayer(pcm, rate)
            leg.phone.outbound.add(player)  # type: ignore[union-attr]
            await player.wait()
            end_of_speech = max(tt for tt, r in phone_sent.frames if tt >= t0 and r > VOICED_RMS)
            texts: list[str] = []
            ended_at = 0.0
            while True:  # a recording with pauses gives several transcripts: the last one follows the end
                at, event = await next_event(("transcript_created", "transcribe_speech_ended"))
                if event.event_type == "transcribe_speech_ended":
                    ended_at = at
                    continue
                texts.append(event.data["message"])
                if at > end_of_speech:
                    break
            print(f"    {(at - end_of_speech) * 1000:5.0f} ms (speech_ended {(ended_at - end_of_speech) * 1000:4.0f} ms)"
                  f"  {' / '.join(texts)!r}")
            return at - end_of_speech, ended_at - end_of_speech, texts

        latencies: list[float] = []
        ended: list[float] = []
        for i in range(runs):
            latency, speech_ended, _ = await phone_says(*recordings[i % len(recordings)])
            latencies.append(latency)
            ended.append(speech_ended)
        line("end of caller speech -> transcribe_speech_ended (bus)", ended)
        line("end of caller speech -> transcript_created (bus)", latencies, "p50 <= 700 ms")

        # one-to-three-word utterances: Asterisk's prompts (Allison Smith), spread over the corpus
        corpus = short_utterances()
        picked = [corpus[(i * len(corpus)) // runs % len(corpus)] for i in range(runs)]
        short_latencies, said = [], []
        for u in picked:
            latency, _, texts = await phone_says(u.pcm + b"\0\0" * 4000, SHORT_RATE_HZ)
            short_latencies.append(latency)
            said.append(" ".join(texts))
        line("short utterance: end of speech -> transcript_created", short_latencies)
        looped = sum(1 for text in said if ends_in_repeat(text))
        print(f"short utterances: WER {short_wer([u.text for u in picked], said):.3f} over {len(picked)}"
              f" (Whisper's English normalizer), {looped} ending in a repeated phrase")
        await api.post(f"/v1.0/transcribes/{tid}/stop", params=t)
        leg.remote_bye()
        await next_event("call_hangup")

        # ---------------------------------------------------------------- real-time factors
        synth = rt.tts.get(None)
        start = time.perf_counter()
        audio = b"".join([c async for c in synth.synthesize(LONG, language="en-US")])
        elapsed = time.perf_counter() - start
        print(f"TTS {synth.name} real-time factor {elapsed / duration_s(audio, synth.sample_rate):.3f}"
              f"  ({duration_s(audio, synth.sample_rate):.1f} s of audio in {elapsed * 1000:.0f} ms)")
        recognizer = rt.stt.get(None)
        total_audio = total_time = 0.0
        for pcm, rate in recordings:
            start = time.perf_counter()
            await recognizer.transcribe(pcm, language="en-US")
            total_time += time.perf_counter() - start
            total_audio += duration_s(pcm, rate)
        print(f"STT {recognizer.name} real-time factor {total_time / total_audio:.3f}"
              f"  ({total_audio:.1f} s of audio in {total_time * 1000:.0f} ms, whole utterances)")
    await sub.unsubscribe()
    await rt.stop()
    endpointing(HANGOVERS_MS)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--stt-only", action="store_true", help="skip the speaking figures")
    parser.add_argument("--tts-only", action="store_true", help="only the speaking figures")
    parser.add_argument("--endpointing-only", action="store_true",
                        help="only the hangover trade-off (audio time, no call)")
    args = parser.parse_args()
    if args.endpointing_only:
        endpointing(HANGOVERS_MS)
        sys.exit(0)
    try:
        import uvloop

        uvloop.run(main(args.runs, args.stt_only, args.tts_only))
    except ImportError:
        asyncio.run(main(args.runs, args.stt_only, args.tts_only))
