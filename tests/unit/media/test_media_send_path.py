"""The send hot path's shortcuts keep behaviour: cached G.711 frames, the clock's phase grid, a timeout
set after the session opened (as the call manager does)."""

import numpy as np

from voipbin.media.clock import ManualScheduler, MediaClock
from voipbin.media.codecs import PcmaCodec, PcmuCodec
from voipbin.media.players import BufferPlayer
from voipbin.media.session import RtpSession


class Recorder:
    def __init__(self) -> None:
        self.ticks: list[float] = []

    def on_clock_tick(self, frames: int, now: float) -> None:
        self.ticks.append(now)


def _tone(frames: int) -> np.ndarray:
    return (4000 * np.sin(np.arange(160 * frames) / 3)).astype(np.int16)


def test_buffer_player_payloads_are_the_encoded_frames_for_each_codec_and_loop() -> None:
    audio = _tone(3)
    player = BufferPlayer(audio, loop=True)
    ulaw, alaw = PcmuCodec(), PcmaCodec()
    frames = [audio[i * 160 : (i + 1) * 160].tobytes() for i in range(3)]
    got = [player.read_payload(ulaw) for _ in range(4)] + [player.read_payload(alaw) for _ in range(2)]
    assert got == [ulaw.encode(frames[i]) for i in (0, 1, 2, 0)] + [alaw.encode(frames[i]) for i in (1, 2)]
    assert not player.finished


def test_buffer_player_once_finishes_after_its_last_payload() -> None:
    player = BufferPlayer(_tone(2))
    codec = PcmuCodec()
    assert [p is not None for p in (player.read_payload(codec), player.read_payload(codec))] == [True, True]
    assert player.finished and player.read_payload(codec) is None


def test_origin_and_phase_place_every_listener_on_its_tick() -> None:
    scheduler = ManualScheduler()
    clock = MediaClock(scheduler=scheduler, slots=4)
    recorders = [Recorder() for _ in range(6)]
    assert clock.origin_s() is None  # idle
    for recorder in recorders:
        clock.register(recorder)
    scheduler.advance(0.013)  # mid-period: some phases have ticked, some not
    origin = clock.origin_s()
    scheduler.advance(0.1)
    for recorder in recorders:
        due = [(t - origin - clock.phase_s(recorder)) / 0.02 for t in recorder.ticks]
        assert all(abs(d - round(d)) < 1e-6 for d in due)
    assert sorted({clock.phase_s(r) for r in recorders}) == [0.0, 0.005, 0.01, 0.015]


async def test_rtp_timeout_set_after_open_fires() -> None:
    scheduler = ManualScheduler()
    fired: list[float] = []
    session = await RtpSession.open("127.0.0.1", codec=PcmuCodec(), on_timeout=lambda s: fired.append(scheduler.time()),
                                    clock=MediaClock(scheduler=scheduler))
    scheduler.advance(0.5)
    assert fired == []  # no timeout configured
    session.rtp_timeout_s = 0.2  # counts from the last packet received (none: from the open)
    scheduler.advance(0.02)
    assert len(fired) == 1
    session.rtp_timeout_s = None
    scheduler.advance(1.0)
    assert len(fired) == 1
    session.close()


def test_players_of_the_same_audio_share_one_copy_of_its_payloads() -> None:
    audio, codec = _tone(3), PcmuCodec()
    first, second, other = BufferPlayer(audio), BufferPlayer(audio.copy()), BufferPlayer(_tone(3) // 2)
    assert first.read_payload(codec) is second.read_payload(codec)  # equal audio, distinct buffers: one payload
    assert other.read_payload(codec) != first.read_payload(codec)
