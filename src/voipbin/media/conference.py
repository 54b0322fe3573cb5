"""An N-party conference room's audio: a mix-minus mixer on the media clock.

Mix-minus (as in conference bridges and broadcast desks): every participant hears the sum of
everyone else, never itself. Each tick of the one :class:`~voipbin.media.clock.MediaClock` (20 ms)
the room takes at most one frame from each participant's input and one from ``announcements``,
sums them once into ``S`` (int32, so nothing wraps), and gives each participant ``i`` that hears::

    out_i = clip(S - own_i, -32768, 32767)          # int16, sample-exact

Shapes and units: every frame is PCM16 LE mono, 8000 Hz, 20 ms: 160 samples, ``FRAME_BYTES``
(320) bytes (:mod:`.pcm`). The speakers of a tick are stacked into a ``(k, 160)`` int16 array
(``k`` participants who sent a frame), ``S`` is ``(160,)`` int32, the mix-minus outputs
``(k, 160)`` int32 clipped into int16 in arrays allocated once per room size (they grow on join,
never shrink). Participants who said nothing this tick all hear the same ``clip(S)`` bytes.
One speaker and no announcement (the usual case) mixes nothing: the others get the speaker's
frame as is, the speaker gets silence.

Each participant's leg is an :class:`~voipbin.media.session.RtpSession`. Its *incoming side*
(the endpoint's voice plus an ``in`` speaking on that call, ``add_inbound_consumer(...,
injected=True)``, as a two-party bridge takes it, :mod:`voipbin.calls.bridge`) feeds a bounded
input queue (at most ``max_input_frames``, 100 ms by default; a late tick drops the oldest,
never builds delay). What the room gives it is an :class:`AudioSource` in ``media.outbound``
holding at most ``max_output_frames`` (the room's clock phase and the leg's differ; at most
3 frames, oldest dropped). A participant with nothing to hear (no other speaker, no
announcement) gets None, so the leg's silence suppression still works. Each leg encodes with
its own codec: PCMU and PCMA participants mix together. RFC 4733 telephone-events are not
frames (:mod:`.dtmf`): DTMF never enters the mix.

Latency added: the wait in the input queue for the room's tick and in the output for the
leg's tick, at most one 20 ms tick in steady state.

``sends()`` false (``in`` muted, on hold): the participant's frames are dropped at the tick, the
others hear nothing of it. ``hears()`` false: it gets silence (it still speaks to the room).
``announcements`` is a :class:`Mixer` whose sources (the room's speakings) every participant
hears; the announcement taps get each announcement frame actually mixed (the ``out`` of a
room's transcription).

    room = ConferenceMixer()                                # the running loop's media clock
    room.join(call_id, session, sends=lambda: not muted, hears=lambda: not held)
    room.announcements.add(StreamPlayer(...))               # a speaking everyone hears
    room.leave(call_id); room.close()
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import numpy as np

from .clock import MediaClock, get_media_clock
from .frames import FrameConsumer
from .mixer import Mixer
from .pcm import FRAME_BYTES, SAMPLES_PER_FRAME
from .session import RtpSession
from .sources import AudioSource

__all__ = ["ConferenceMixer", "ConferenceOutput"]

logger = logging.getLogger(__name__)

#: frames a participant's input holds before the oldest is dropped (100 ms)
DEFAULT_MAX_INPUT_FRAMES = 5
#: frames a participant's output holds (clock phase differences) before the oldest is dropped
DEFAULT_MAX_OUTPUT_FRAMES = 3

_PCM16 = np.dtype("<i2")
_SILENCE = bytes(FRAME_BYTES)
_INT16_MIN, _INT16_MAX = -32768, 32767


def _always() -> bool:
    return True


def _saturate(samples: np.ndarray) -> np.ndarray:
    """Clip int32 ``samples`` to the int16 range, in place (minimum + maximum: np.clip costs twice as much)."""
    np.minimum(samples, _INT16_MAX, out=samples)
    return np.maximum(samples, _INT16_MIN, out=samples)


class ConferenceOutput(AudioSource):
    """What the room gives one participant: the frames the room's ticks computed, in order.

    Holds at most ``max_frames`` (oldest dropped); None entries are silence. A flush of the
    leg's outbound (barge-in) drops what is queued but does not take it out of the room.
    """

    def __init__(self, max_frames: int = DEFAULT_MAX_OUTPUT_FRAMES) -> None:
        self._frames: deque[bytes | None] = deque(maxlen=max_frames)
        self.push = self._frames.append

    def read_frame(self) -> bytes | None:
        frames = self._frames
        return frames.popleft() if frames else None

    def flush(self) -> None:
        self._frames.clear()

    def stop(self) -> None:
        self._frames.clear()
        self._finish()


class _Participant:
    __slots__ = ("key", "media", "inbound", "output", "sends", "hears")

    def __init__(self, key: str, media: RtpSession, inbound: deque[bytes], output: ConferenceOutput,
                 sends: Callable[[], bool], hears: Callable[[], bool]) -> None:
        self.key = key
        self.media = media
        self.inbound = inbound
        self.output = output
        self.sends = sends
        self.hears = hears


class ConferenceMixer:
    """One room: mix-minus of its participants and ``announcements``, on the media clock.

    clock: the media clock to tick on (default: :func:`get_media_clock`, which needs a running
    event loop); the room registers at once and stays until :meth:`close`.
    max_input_frames / max_output_frames: the bounds of each participant's queues (see the
    module docstring).
    """

    def __init__(self, *, clock: MediaClock | None = None, max_input_frames: int = DEFAULT_MAX_INPUT_FRAMES,
                 max_output_frames: int = DEFAULT_MAX_OUTPUT_FRAMES) -> None:
        #: the room's own audio (speakings): heard by every participant that hears
        self.announcements = Mixer()
        self._max_input_frames = max_input_frames
        self._max_output_frames = max_output_frames
        self._by_key: dict[str, _Participant] = {}
        self._members: tuple[_Participant, ...] = ()
        self._taps: list[FrameConsumer] = []
        self._total = np.zeros(SAMPLES_PER_FRAME, dtype=np.int32)
        self._everyone = np.zeros(SAMPLES_PER_FRAME, dtype=np.int32)
        self._minus = np.zeros((0, SAMPLES_PER_FRAME), dtype=np.int32)
        self._minus16 = np.zeros((0, SAMPLES_PER_FRAME), dtype=_PCM16)
        self._closed = False
        self._clock = clock if clock is not None else get_media_clock()
        self._clock.register(self)

    # ------------------------------------------------------------------ membership

    @property
    def participants(self) -> tuple[str, ...]:
        """The keys of the participants, in joining order."""
        return tuple(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    @property
    def closed(self) -> bool:
        return self._closed

    def join(self, key: str, media: RtpSession, *, sends: Callable[[], bool] = _always,
             hears: Callable[[], bool] = _always) -> None:
        """Put ``media``'s leg in the room under ``key`` (e.g. the call id).

        sends: asked every tick; false drops its audio (muted ``in``, hold).
        hears: asked every tick it has something to hear; false gives it silence.
        Raises ValueError if ``key`` is already in the room, RuntimeError once closed.
        """
        if self._closed:
            raise RuntimeError("conference mixer is closed")
        if key in self._by_key:
            raise ValueError(f"participant {key!r} is already in the room")
        inbound: deque[bytes] = deque(maxlen=self._max_input_frames)
        participant = _Participant(key, media, inbound, ConferenceOutput(self._max_output_frames), sends, hears)
        media.add_inbound_consumer(inbound.append, injected=True)
        media.outbound.add(participant.output)
        self._by_key[key] = participant
        self._members = tuple(self._by_key.values())
        if len(self._members) > len(self._minus):
            capacity = max(len(self._members), 2 * len(self._minus))
            self._minus = np.zeros((capacity, SAMPLES_PER_FRAME), dtype=np.int32)
            self._minus16 = np.zeros((capacity, SAMPLES_PER_FRAME), dtype=_PCM16)

    def leave(self, key: str) -> None:
        """Take ``key``'s leg out of the room (its consumer and output source). Unknown keys are ignored."""
        participant = self._by_key.pop(key, None)
        if participant is None:
            return
        self._members = tuple(self._by_key.values())
        participant.media.remove_inbound_consumer(participant.inbound.append)
        participant.media.outbound.remove(participant.output)
        participant.output.stop()
        participant.inbound.clear()

    def close(self) -> None:
        """Every participant leaves, the announcements stop, the room leaves the clock. Idempotent."""
        for key in list(self._by_key):
            self.leave(key)
        self._closed = True
        self.announcements.clear()
        self._taps.clear()
        self._clock.unregister(self)

    # ------------------------------------------------------------------ announcements

    def add_announcement_tap(self, consumer: FrameConsumer) -> FrameConsumer:
        """Call ``consumer(frame)`` on every tick with the 20 ms PCM16 frame of ``announcements`` mixed
        into the room (what the room's speakings said), silence when none plays. Must not block;
        returns ``consumer``."""
        self._taps.append(consumer)
        return consumer

    def remove_announcement_tap(self, consumer: FrameConsumer) -> None:
        """Stop calling ``consumer``; unknown consumers are ignored."""
        if consumer in self._taps:
            self._taps.remove(consumer)

    # ------------------------------------------------------------------ the tick

    def on_clock_tick(self, frames: int, now: float) -> None:
        """Media clock tick: one frame in from each participant and the announcements, one frame
        out to each (``frames`` > 1 after a stall changes nothing: each leg sends one packet a tick)."""
        announcements = self.announcements
        announcement = announcements.read_frame() if len(announcements) else None
        if self._taps:  # every tick, silence too: a speech segmenter needs the silence that ends a sentence
            self._tap(announcement if announcement is not None else _SILENCE)
        members = self._members
        if not members:
            return
        speakers: list[int] = []
        said: list[bytes] = []
        for index, member in enumerate(members):
            inbound = member.inbound
            if inbound:
                frame = inbound.popleft()
                if member.sends():
                    speakers.append(index)
                    said.append(frame)
        heard: list[bytes | None]
        if announcement is None and len(said) <= 1:
            heard = [said[0] if said else None] * len(members)  # nothing to sum
            if said:
                heard[speakers[0]] = None
        else:
            heard = self._mix_minus(len(members), speakers, said, announcement)
        for member, frame in zip(members, heard):
            member.output.push(frame if frame is None or member.hears() else None)

    def _mix_minus(self, size: int, speakers: list[int], said: list[bytes],
                   announcement: bytes | None) -> list[bytes | None]:
        """The frame each of ``size`` members hears: ``S`` for those not in ``speakers``, ``S - own``
        for each speaker (``said`` in the same order), clipped to int16."""
        count = len(said)
        total = self._total
        if count:
            spoken = np.frombuffer(b"".join(said), dtype=_PCM16).reshape(count, SAMPLES_PER_FRAME)
            np.add.reduce(spoken, axis=0, dtype=np.int32, out=total)
        else:
            total.fill(0)
        if announcement is not None:
            total += np.frombuffer(announcement, dtype=_PCM16)
        everyone: bytes | None = None
        if count < size:
            np.copyto(self._everyone, total)
            everyone = _saturate(self._everyone).astype(_PCM16).tobytes()
        heard: list[bytes | None] = [everyone] * size
        if count:
            minus, minus16 = self._minus[:count], self._minus16[:count]
            np.subtract(total, spoken, out=minus)
            np.copyto(minus16, _saturate(minus), casting="unsafe")
            data = minus16.tobytes()
            for row, index in enumerate(speakers):
                heard[index] = data[row * FRAME_BYTES:(row + 1) * FRAME_BYTES]
        return heard

    def _tap(self, frame: bytes) -> None:
        for tap in self._taps:
            try:
                tap(frame)
            except Exception:
                logger.exception("announcement tap %r failed", tap)
