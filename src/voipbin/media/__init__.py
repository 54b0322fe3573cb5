"""Media layer: SDP offer/answer, RTP sessions, codecs, jitter buffer, media clock, players.

Knows nothing of SIP messages, customers or HTTP (DESIGN.md "Layout"). Audio inside is
PCM16 little-endian mono, 8000 Hz for G.711, in 20 ms frames of 160 samples (320 bytes);
rates, frame sizes, resampling and mixing are declared once, in :mod:`.pcm` (``speech`` uses
it too). An :class:`RtpSession` composes a sender (:mod:`.rtp_sender`), a receiver
(:mod:`.rtp_receiver`), RFC 4733 DTMF both ways (:mod:`.dtmf`) and the source check
(:mod:`.latching`), ticked by the one :class:`MediaClock`.

The call layer's path through it::

    ports = PortAllocator(10000, 20000)                      # one per process
    session = await RtpSession.open(rtp_host, ports, rtp_timeout_s=30, on_timeout=..., on_dtmf=...)
    answer, media = create_answer(SessionDescription.parse(body), public_ip, session.local_port)
    session.apply(media)                                     # NoCommonCodecError -> 488
    session.outbound.add(BufferPlayer.from_wav(path))       # or StreamPlayer for TTS
    frames = session.inbound_frames()                       # "in" audio for STT
    session.flush(); session.close()
"""

from .clock import MediaClock, get_media_clock
from .codecs import Codec, PcmaCodec, PcmuCodec, create_codec
from .codecs.telephone_event import DtmfDigit
from .conference import ConferenceMixer
from .echo import EchoSource
from .frames import FrameQueue
from .mixer import Mixer
from .players import BufferPlayer, SilenceSource, StreamPlayer
from .ports import PortAllocator, PortsExhaustedError
from .recorder import FrameCollector, WavRecorder
from .sdp import (
    Direction,
    NegotiatedMedia,
    NoCommonCodecError,
    OfferAnswerError,
    SdpError,
    SdpParseError,
    SessionDescription,
    create_answer,
    create_offer,
    process_answer,
)
from .rtp_stats import RtpStats
from .session import RtpSession
from .sources import AudioSource

__all__ = [
    "AudioSource",
    "BufferPlayer",
    "Codec",
    "ConferenceMixer",
    "Direction",
    "DtmfDigit",
    "EchoSource",
    "FrameCollector",
    "FrameQueue",
    "MediaClock",
    "Mixer",
    "NegotiatedMedia",
    "NoCommonCodecError",
    "OfferAnswerError",
    "PcmaCodec",
    "PcmuCodec",
    "PortAllocator",
    "PortsExhaustedError",
    "RtpSession",
    "RtpStats",
    "SdpError",
    "SdpParseError",
    "SessionDescription",
    "SilenceSource",
    "StreamPlayer",
    "WavRecorder",
    "create_answer",
    "create_codec",
    "create_offer",
    "get_media_clock",
    "process_answer",
]
