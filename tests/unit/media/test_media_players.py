"""Outbound sources: buffer/WAV player, streaming (TTS) player with flush, mixer, echo."""

import asyncio
import wave
from pathlib import Path

import numpy as np
import pytest

from voipbin.media.codecs import PcmuCodec
from voipbin.media.echo import EchoSource
from voipbin.media.frames import FrameQueue
from voipbin.media.mixer import Mixer
from voipbin.media.pcm import mix_frames
from voipbin.media.players import BufferPlayer, SilenceSource, StreamPlayer
from voipbin.media.recorder import FrameCollector, WavRecorder


def tone(freq_hz: float, seconds: float, rate_hz: int, amplitude: float = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def dominant_hz(samples: np.ndarray, rate_hz: int = 8000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate_hz / len(samples))


def drain(source) -> list[bytes]:
    frames = []
    while (frame := source.read_frame()) is not None:
        frames.append(frame)
    return frames


def test_buffer_player_frames_and_padding() -> None:
    player = BufferPlayer(bytes(2 * 250))  # 250 samples -> 2 frames, last padded
    frames = drain(player)
    assert [len(f) for f in frames] == [320, 320]
    assert player.finished


def test_buffer_player_preencoded_payload_equals_encoding() -> None:
    samples = tone(440, 0.1, 8000)
    codec = PcmuCodec()
    player = BufferPlayer(samples)
    payloads = []
    while (payload := player.read_payload(codec)) is not None:
        payloads.append(payload)
    assert b"".join(payloads) == codec.encode(samples.tobytes())


def test_buffer_player_loop() -> None:
    player = BufferPlayer(bytes(320), loop=True)
    for _ in range(5):
        assert player.read_frame() == bytes(320)
    assert not player.finished
    player.stop()
    assert player.read_frame() is None


def test_wav_player_resamples_16k(tmp_path: Path) -> None:
    path = tmp_path / "tone16k.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        mono = tone(1000, 1.0, 16000)
        wav.writeframes(np.repeat(mono, 2).tobytes())
    player = BufferPlayer.from_wav(path)
    out = np.frombuffer(b"".join(drain(player)), "<i2")
    assert len(out) == 8000
    assert dominant_hz(out) == pytest.approx(1000, abs=5)


async def test_stream_player_frames_resampled_chunks() -> None:
    player = StreamPlayer(22050)
    samples = tone(500, 1.0, 22050)
    for start in range(0, len(samples), 1000):  # uneven chunks, as a TTS engine yields them
        player.feed(samples[start : start + 1000].tobytes())
    player.end()
    frames = drain(player)
    assert all(len(f) == 320 for f in frames)
    out = np.frombuffer(b"".join(frames), "<i2")
    assert abs(len(out) - 8000) <= 160
    assert dominant_hz(out[:4000]) == pytest.approx(500, abs=5)
    assert player.finished
    await player.wait()


async def test_stream_player_flush_drops_everything_at_once() -> None:
    player = StreamPlayer(16000)
    player.feed(tone(300, 2.0, 16000).tobytes())
    assert player.read_frame() is not None
    player.flush()
    assert player.read_frame() is None  # the very next tick is silence
    assert player.buffered_s == 0
    assert not player.finished  # still usable: a new utterance can follow
    player.feed(tone(300, 0.1, 16000).tobytes())
    player.end_utterance()  # soxr holds ~100 ms back until told the utterance is over
    frames = drain(player)
    assert len(frames) == 5  # 100 ms
    assert not player.finished


async def test_stream_player_play_from_async_producer_and_flush_cancels_it() -> None:
    player = StreamPlayer(8000)
    gate = asyncio.Event()

    async def producer():
        yield bytes(640)
        await gate.wait()
        yield bytes(640)

    task = player.play(producer())
    await asyncio.sleep(0.01)
    assert player.buffered_s == pytest.approx(0.04)
    player.flush()
    await asyncio.sleep(0)
    assert task.cancelled() or task.done()
    assert player.buffered_s == 0


async def test_stream_player_wait_drained() -> None:
    player = StreamPlayer(8000)
    player.feed(bytes(960))
    waiter = asyncio.create_task(player.wait_drained())
    for _ in range(3):
        await asyncio.sleep(0)
        player.read_frame()
    await asyncio.wait_for(waiter, 1)


async def test_stream_player_end_utterance_pads_the_last_frame_so_it_plays_and_drains() -> None:
    player = StreamPlayer(8000)
    player.feed(np.full(250, 1000, dtype="<i2").tobytes())  # 1 frame and 90 samples
    player.end_utterance()
    assert player.buffered_s == 0.04  # the partial frame, padded with silence
    frames = [player.read_frame(), player.read_frame()]
    assert all(f is not None for f in frames) and player.read_frame() is None
    tail = np.frombuffer(frames[1], dtype="<i2")  # type: ignore[arg-type]
    assert (tail[:90] == 1000).all() and (tail[90:] == 0).all()
    await asyncio.wait_for(player.wait_drained(), 1)  # nothing left: returns at once


def test_mixer_sums_with_clipping_and_drops_finished() -> None:
    loud = np.full(160, 30000, dtype="<i2").tobytes()
    mixer = Mixer(BufferPlayer(loud), BufferPlayer(loud + loud))
    first = np.frombuffer(mixer.read_frame(), "<i2")
    assert (first == 32767).all()
    assert len(mixer.sources) == 1
    assert mixer.read_frame() == loud
    assert mixer.read_frame() is None and not mixer.sources


def test_mix_frames_negative_clip() -> None:
    low = np.full(160, -30000, dtype="<i2").tobytes()
    assert (np.frombuffer(mix_frames([low, low, low]), "<i2") == -32768).all()


def test_mixer_single_source_passes_payload_through_and_flush() -> None:
    codec = PcmuCodec()
    player = BufferPlayer(tone(440, 0.2, 8000))
    mixer = Mixer(player)
    assert mixer.read_payload(codec) == codec.encode(tone(440, 0.2, 8000)[:160].tobytes())
    mixer.flush()
    assert mixer.read_payload(codec) is None and not mixer.sources


def test_silence_and_echo() -> None:
    assert SilenceSource().read_frame() == bytes(320)
    echo = EchoSource(max_delay_frames=2)
    for value in (1, 2, 3):
        echo.push(bytes([value]) * 320)
    assert echo.read_frame() == bytes([2]) * 320  # oldest dropped: delay stays bounded
    assert echo.read_frame() == bytes([3]) * 320
    assert echo.read_frame() is None


def test_recorders(tmp_path: Path) -> None:
    collector = FrameCollector()
    collector(bytes(320))
    assert len(collector.samples()) == 160
    path = tmp_path / "out.wav"
    with WavRecorder(path) as recorder:
        recorder(tone(1000, 0.02, 8000).tobytes())
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnframes()) == (8000, 160)


async def test_frame_queue_drops_oldest_and_closes() -> None:
    queue = FrameQueue(max_frames=2)
    for value in (1, 2, 3):
        queue(bytes([value]))
    assert queue.dropped == 1
    queue.close()
    assert [frame async for frame in queue] == [b"\x02", b"\x03"]


async def test_stream_player_wait_drained_can_be_cancelled() -> None:
    player = StreamPlayer(8000)
    player.feed(bytes(960))
    waiter = asyncio.create_task(player.wait_drained())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter  # a barge-in cancels a reply waiting for its audio to play out
