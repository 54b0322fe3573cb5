"""The send hot path's shortcuts keep behaviour: cached G.711 frames, the clock's phase grid, a timeout
set after the session opened (as the call manager does)."""

import numpy as np

from voipbin.media.clock import ManualScheduler, MediaClock
from voipbin.media.codecs import PcmaCodec, PcmuCodec
from voipbin.media.gate import GatedMixer
from voipbin.media.players import BufferPlayer
from voipbin.media.rtp import RtpPacket
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


class Wire:
    """A datagram transport without a socket: the session sends through its ``sendto``."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []

    def get_extra_info(self, name: str) -> object:
        return ("127.0.0.1", 40000) if name == "sockname" else None

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        self.payloads.append(RtpPacket.parse(data).payload)

    def close(self) -> None:
        pass


def _session_on_wire() -> tuple[RtpSession, Wire, ManualScheduler]:
    scheduler = ManualScheduler()
    session = RtpSession(codec=PcmuCodec(), remote_address=("127.0.0.1", 9), clock=MediaClock(scheduler=scheduler, slots=1))
    wire = Wire()
    session.connection_made(wire)  # type: ignore[arg-type]
    return session, wire, scheduler


def test_mixer_passthrough_is_its_only_source_unless_gated_or_overridden() -> None:
    one, two = BufferPlayer(_tone(2)), BufferPlayer(_tone(2))
    mixer = GatedMixer(one)
    assert mixer.passthrough is one
    mixer.add(two)
    assert mixer.passthrough is None  # two sources are mixed
    mixer.remove(two)
    assert mixer.passthrough is one
    mixer.gated = True
    assert mixer.passthrough is None
    mixer.gated, mixer.override = False, two
    assert mixer.passthrough is None
    mixer.override = None
    assert mixer.passthrough is one
    one.flush()
    mixer.prune()
    assert mixer.passthrough is None and not mixer.sources


def test_the_tick_sends_the_gated_mixers_silence_and_override_while_its_source_plays_on() -> None:
    session, wire, scheduler = _session_on_wire()
    codec, audio, music = PcmuCodec(), _tone(10), _tone(10) // 3
    frames = [codec.encode(audio[i * 160 : (i + 1) * 160].tobytes()) for i in range(10)]
    mixer = GatedMixer(BufferPlayer(audio))
    session.outbound = mixer  # as MediaControls does on answer
    scheduler.advance(0.04)
    sent = len(wire.payloads)
    assert sent >= 1 and wire.payloads == frames[:sent]
    mixer.gated = True  # hold: silence, the prompt goes on in time
    scheduler.advance(0.04)
    assert wire.payloads[sent:] == [codec.silence_payload()] * (len(wire.payloads) - sent)
    mixer.override = BufferPlayer(music)  # music on hold
    scheduler.advance(0.02)
    assert wire.payloads[-1] == codec.encode(music[:160].tobytes())
    mixer.gated, mixer.override = False, None
    before = len(wire.payloads)
    scheduler.advance(0.02)
    assert wire.payloads[before:] == frames[before : len(wire.payloads)]  # the prompt played on meanwhile
    session.close()


def test_a_finished_prompt_leaves_the_outbound_mixer_on_the_tick_of_its_last_frame() -> None:
    session, wire, scheduler = _session_on_wire()
    player = session.outbound.add(BufferPlayer(_tone(2)))
    while len(wire.payloads) < 2:
        scheduler.advance(0.02)
    assert player.finished and not session.outbound.sources and session.outbound.passthrough is None
    scheduler.advance(0.02)
    assert wire.payloads[-1] == PcmuCodec().silence_payload()
    session.close()
