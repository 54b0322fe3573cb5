"""Whisper on short utterances: no repeated words, the same text every time, long speech as good as before.

Short utterances: Allison Smith's recorded Asterisk prompts (tests_support/short_utterances.py,
Debian asterisk-core-sounds-en-wav, 8 kHz telephone audio). Before the loop guards, tiny.en in its
10 s window gave "Transfer. Transfer. ..." (8 times), "message message ..." (to the 224-token
limit), "4 4 4 ..." for "for". Long utterances: the LibriVox recordings (speech_samples.py).
"""

import asyncio

import pytest

from speech_samples import librivox_utterances
from tests_support.short_utterances import SAMPLE_RATE_HZ, normalize, prompt_pcm, short_utterances, wer
from voipbin.media.codecs import PcmuCodec
from voipbin.media.pcm import pcm16_to_float, resample, split_frames
from voipbin.speech import SpeechSettings, inference
from voipbin.speech.repetition import ends_in_repeat
from voipbin.speech.stt.base import FinalTranscript
from voipbin.speech.stt.whisper import WhisperRecognizer, bundled_model_path

pytestmark = pytest.mark.slow

LOOPED = ["pbx-transfer", "added", "location", "vm-message", "vm-messages", "vm-for", "spy-local", "digits/10"]
"""Prompts tiny.en repeated in its 10 s window before the guards (at most 3 words each)."""


@pytest.fixture(scope="module")
def whisper() -> WhisperRecognizer:
    # four interims at once queue on the one interim worker: what is asked here is the same text, not the
    # shedding of interims that waited over the default 0.3 s (tests/unit/speech/test_workers*)
    return WhisperRecognizer(SpeechSettings(stt_interim_max_wait_ms=10_000))


def as_segmented(pcm8k: bytes) -> bytes:
    """16 kHz, with the silence the VAD keeps around speech (192 ms before, ~300 ms after)."""
    return b"\0\0" * 3072 + resample(pcm8k, 8000, 16000) + b"\0\0" * 4800


async def test_words_that_used_to_loop_come_back_once(whisper: WhisperRecognizer) -> None:
    texts = {}
    for name in LOOPED:
        texts[name] = await whisper.transcribe(as_segmented(prompt_pcm(name)), language="en-US")
    print(texts)
    for name, text in texts.items():
        assert not ends_in_repeat(text), (name, text)
        assert 1 <= len(normalize(text).split()) <= 2, (name, text)
    assert normalize(texts["pbx-transfer"]) == "transfer"
    assert normalize(texts["location"]) == "location"


async def test_the_short_utterance_corpus_through_the_stream(whisper: WhisperRecognizer) -> None:
    """All 51 prompts, G.711-coded as a call carries them, each fed to a production stream (VAD and
    whisper workers) as fast as it takes it: the call test (speakings_transcribes/
    test_short_utterances_call.py) without the real-time clock, so the VAD cuts the same way every
    run. Beside it, in the same run, each whole prompt transcribed without the VAD: the decoder alone.

    Measured (tiny.en): whole prompts 0.24 every run; through the VAD 0.375-0.413 over four runs
    (the ONNX Silero v6 of stt/silero.py finds onsets 0.1-0.4 s late on these prompts and misses
    "Calling."; the cuts vary from run to run). The issue's target, 0.10, needs a stronger English
    model than tiny.en."""
    corpus = short_utterances()
    codec = PcmuCodec()
    gap = bytes(int(0.5 * SAMPLE_RATE_HZ) * 2)
    segmented, whole = [], []
    for u in corpus:
        coded = codec.decode(codec.encode(u.pcm))
        whole.append(await whisper.transcribe(as_segmented(coded), language="en-US"))
        stream = whisper.open_stream(language="en-US", sample_rate=SAMPLE_RATE_HZ)
        for frame in split_frames(gap + coded + gap, SAMPLE_RATE_HZ):
            stream.feed(frame)
        stream.close()
        segmented.append(" ".join([e.text async for e in stream.events() if isinstance(e, FinalTranscript)]))
    references = [u.text for u in corpus]
    print("\n".join(f"{u.text!r}: {w!r} / {s!r}" for u, w, s in zip(corpus, whole, segmented)))
    print(f"short utterances ({len(corpus)} prompts, G.711): WER whole {wer(references, whole):.3f},"
          f" through the stream {wer(references, segmented):.3f}")
    assert not [t for t in whole + segmented if ends_in_repeat(t)]
    assert wer(references, whole) <= 0.27, whole
    assert wer(references, segmented) <= 0.45, segmented


async def test_the_same_audio_gives_the_same_text_every_time(whisper: WhisperRecognizer) -> None:
    audio = [as_segmented(prompt_pcm(n)) for n in ("pbx-transfer", "hello", "one-moment-please")]
    audio.append(librivox_utterances()[0][1])
    runs = [[await whisper.transcribe(pcm, language="en-US") for pcm in audio] for _ in range(3)]
    assert runs[0] == runs[1] == runs[2], runs
    await whisper.warm_up()  # the interim worker is up (an interim is skipped while it loads)
    in_parallel = await asyncio.gather(*(whisper.transcribe(pcm, language="en-US", interim=True) for pcm in audio))
    assert list(in_parallel) == runs[0]  # the interim worker decodes the same way


async def test_long_utterances_are_transcribed_as_by_faster_whispers_own_decoder(whisper: WhisperRecognizer) -> None:
    """Reference in the same run: faster-whisper's `transcribe` (30 s window, greedy, no fallback)."""
    utterances = librivox_utterances()
    references = [text for text, _ in utterances]
    ours = [await whisper.transcribe(pcm, language="en-US") for _, pcm in utterances]
    model = inference.load_whisper(str(bundled_model_path()), "int8", 0)

    def reference_decoder(pcm: bytes) -> str:
        segments, _ = model.transcribe(pcm16_to_float(pcm), language="en", beam_size=1, temperature=0.0,  # type: ignore[attr-defined]
                                       without_timestamps=True, condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments)

    theirs = [await asyncio.to_thread(reference_decoder, pcm) for _, pcm in utterances]
    ours_wer, theirs_wer = wer(references, ours), wer(references, theirs)
    print(f"LibriVox WER: ours {ours_wer:.3f}, faster-whisper's transcribe {theirs_wer:.3f}")
    assert ours_wer <= theirs_wer + 0.02, (ours, theirs)
    assert ours_wer <= 0.15, ours
