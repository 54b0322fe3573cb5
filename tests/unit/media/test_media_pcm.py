import numpy as np

from voipbin.media.pcm import (
    FRAME_MS,
    StreamResampler,
    bytes_per_frame,
    resample,
    samples_per_frame,
    split_frames,
)


def tone(rate: int, seconds: float, hz: float = 440.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 10000).astype("<i2").tobytes()


def test_frame_sizes() -> None:
    assert FRAME_MS == 20
    assert samples_per_frame(16000) == 320
    assert samples_per_frame(8000) == 160
    assert bytes_per_frame(16000) == 640


def test_resample_changes_length_by_the_rate_ratio() -> None:
    out = resample(tone(22050, 1.0), 22050, 16000)
    assert abs(len(out) // 2 - 16000) <= 2


def test_stream_resampler_matches_length_and_keeps_odd_bytes() -> None:
    pcm = tone(8000, 1.0)
    resampler = StreamResampler(8000, 16000)
    out = b"".join(resampler.process(pcm[i : i + 161]) for i in range(0, len(pcm), 161))
    out += resampler.flush()
    assert abs(len(out) // 2 - 16000) <= 2
    samples = np.frombuffer(out, dtype="<i2")
    assert np.abs(samples[1000:-1000]).max() > 9000  # the tone survived


def test_split_frames_pads_the_last_frame() -> None:
    frames = split_frames(b"\x01\x00" * 500, 16000)
    assert [len(f) for f in frames] == [640, 640]
    assert frames[-1].endswith(b"\x00" * 2 * 140)
