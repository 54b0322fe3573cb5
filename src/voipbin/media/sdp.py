"""SDP (RFC 4566) parse/serialize and the RFC 3264 offer/answer model for one audio stream.

We offer and accept ``RTP/AVP`` audio with PCMU (PT 0), PCMA (PT 8) and RFC 4733
telephone-event (dynamic PT, 8000 Hz), ptime 20 ms, and the four direction attributes.

Typical use by the call layer::

    # the peer sent an offer (INVITE with SDP, or a re-INVITE)
    answer, media = create_answer(SessionDescription.parse(body), "203.0.113.5", session.local_port)
    session.apply(media)                  # may raise NoCommonCodecError -> reply 488

    # we offer (outgoing INVITE, or a delayed-offer INVITE: our offer in the 200 OK)
    offer = create_offer("203.0.113.5", session.local_port)
    ...
    media = process_answer(offer, SessionDescription.parse(answer_body))
    session.apply(media)

About 590 lines, on purpose one module: the model and parser (first half) and offer/answer
(second half, from :class:`NegotiatedMedia`) are what the call layer imports together, from
one place, in a dozen modules; the offer/answer half could move to its own module once those
imports are updated (issue 16 left the callers in calls/ and sip/ untouched).
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field

from .codecs import CODECS_BY_NAME
from .codecs.telephone_event import (
    DEFAULT_TELEPHONE_EVENT_PAYLOAD_TYPE,
    TELEPHONE_EVENT_CLOCK_RATE_HZ,
    TELEPHONE_EVENT_ENCODING,
)

DEFAULT_PTIME_MS = 20
SUPPORTED_PROTO = "RTP/AVP"
DEFAULT_CODEC_NAMES = ("PCMU", "PCMA")
#: RFC 3551 table 4: static audio payload types we understand without a=rtpmap
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
_CRLF = "\r\n"


class SdpError(ValueError):
    """Base class of SDP errors."""


class SdpParseError(SdpError):
    """The body is not valid SDP (the SIP layer answers 400)."""


class OfferAnswerError(SdpError):
    """An offer or answer that RFC 3264 does not allow us to accept."""


class NoCommonCodecError(OfferAnswerError):
    """No audio stream with a codec both sides support (the SIP layer answers 488)."""


class Direction(enum.Enum):
    """RFC 4566 §6 / RFC 3264 §5.1 media direction, from the point of view of the SDP's author."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def from_flags(cls, sends: bool, receives: bool) -> Direction:
        if sends and receives:
            return cls.SENDRECV
        if sends:
            return cls.SENDONLY
        if receives:
            return cls.RECVONLY
        return cls.INACTIVE

    def reversed(self) -> Direction:
        """The direction the other side sees (sendonly <-> recvonly)."""
        return Direction.from_flags(sends=self.receives, receives=self.sends)

    def intersect(self, other: Direction) -> Direction:
        return Direction.from_flags(self.sends and other.sends, self.receives and other.receives)


_DIRECTION_VALUES = {d.value for d in Direction}


@dataclass(slots=True)
class Origin:
    """RFC 4566 §5.2 ``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>``."""

    username: str = "-"
    session_id: str = "0"
    session_version: str = "0"
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return " ".join(
            (self.username, self.session_id, self.session_version, self.nettype, self.addrtype, self.address)
        )


@dataclass(slots=True)
class Connection:
    """RFC 4566 §5.7 ``c=<nettype> <addrtype> <connection-address>`` (TTL/count suffix kept verbatim)."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @property
    def host(self) -> str:
        """The address without any ``/ttl/count`` multicast suffix."""
        return self.address.split("/", 1)[0]

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(slots=True)
class RtpMap:
    """RFC 4566 §6 ``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]``."""

    payload_type: int
    encoding_name: str
    clock_rate_hz: int
    channels: int = 1

    def __str__(self) -> str:
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.payload_type} {self.encoding_name}/{self.clock_rate_hz}{suffix}"


Attribute = tuple[str, "str | None"]


@dataclass(slots=True)
class MediaDescription:
    """One ``m=`` section (RFC 4566 §5.14) with its ``c=`` and ``a=`` lines.

    formats are the payload types as strings, in preference order. ``other_lines``
    keeps lines we do not model (``i=``, ``b=``, ``k=``) as ``(type, value)``.
    """

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=name:value`` (``""`` for a flag), or None if absent."""
        for key, value in self.attributes:
            if key == name:
                return "" if value is None else value
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [value or "" for key, value in self.attributes if key == name]

    def rtpmaps(self) -> dict[int, RtpMap]:
        """``a=rtpmap`` lines by payload type; malformed ones are skipped."""
        result: dict[int, RtpMap] = {}
        for value in self.attribute_values("rtpmap"):
            try:
                pt_text, encoding = value.split(None, 1)
                parts = encoding.strip().split("/")
                channels = int(parts[2]) if len(parts) > 2 and parts[2] else 1
                result[int(pt_text)] = RtpMap(int(pt_text), parts[0], int(parts[1]), channels)
            except (ValueError, IndexError):
                continue
        return result

    def fmtp(self, payload_type: int) -> str | None:
        for value in self.attribute_values("fmtp"):
            pt_text, _, params = value.partition(" ")
            if pt_text == str(payload_type):
                return params.strip()
        return None

    def direction(self, session_default: Direction = Direction.SENDRECV) -> Direction:
        for key, _ in self.attributes:
            if key in _DIRECTION_VALUES:
                return Direction(key)
        return session_default

    def ptime_ms(self) -> int | None:
        value = self.attribute("ptime")
        try:
            return int(float(value)) if value else None
        except ValueError:
            return None

    def lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        out = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}".rstrip()]
        out += [f"{t}={v}" for t, v in self.other_lines if t == "i"]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"{t}={v}" for t, v in self.other_lines if t != "i"]
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        return out


@dataclass(slots=True)
class SessionDescription:
    """A whole SDP body (RFC 4566 §5). ``str(sdp)`` serializes it with CRLF line ends."""

    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    media: list[MediaDescription] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    times: list[str] = field(default_factory=lambda: ["0 0"])
    version: int = 0
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    def direction(self) -> Direction:
        """The session-level direction attribute (default sendrecv, RFC 4566 §6)."""
        for key, _ in self.attributes:
            if key in _DIRECTION_VALUES:
                return Direction(key)
        return Direction.SENDRECV

    def __str__(self) -> str:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        lines += [f"{t}={v}" for t, v in self.other_lines if t in "iuepb"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"t={t}" for t in self.times]
        lines += [f"{t}={v}" for t, v in self.other_lines if t not in "iuepb"]
        lines += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for media in self.media:
            lines += media.lines()
        return _CRLF.join(lines) + _CRLF

    def serialize(self) -> bytes:
        """The body as UTF-8 bytes, ready for a SIP message."""
        return str(self).encode()

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        """Parse an SDP body (CRLF or LF line ends). Raises SdpParseError."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpParseError(f"SDP is not UTF-8: {exc}") from None
        sdp = cls(times=[])
        current: MediaDescription | None = None
        seen_version = seen_origin = False
        for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
                raise SdpParseError(f"line {number}: expected '<type>=<value>', got {line[:40]!r}")
            kind, value = line[0], line[2:]
            try:
                if kind == "v":
                    sdp.version = int(value)
                    if sdp.version != 0:
                        raise SdpParseError(f"unsupported SDP version {sdp.version}")
                    seen_version = True
                elif kind == "m":
                    current = _parse_media(value)
                    sdp.media.append(current)
                elif kind == "c":
                    conn = _parse_connection(value)
                    if current is None:
                        sdp.connection = conn
                    else:
                        current.connection = conn
                elif kind == "a":
                    name, sep, attr_value = value.partition(":")
                    attribute: Attribute = (name, attr_value if sep else None)
                    (sdp.attributes if current is None else current.attributes).append(attribute)
                elif current is not None:
                    current.other_lines.append((kind, value))
                elif kind == "o":
                    parts = value.split()
                    if len(parts) != 6:
                        raise SdpParseError(f"line {number}: o= needs 6 fields")
                    sdp.origin = Origin(*parts)
                    seen_origin = True
                elif kind == "s":
                    sdp.session_name = value
                elif kind == "t":
                    sdp.times.append(value)
                else:
                    sdp.other_lines.append((kind, value))
            except SdpParseError as exc:
                raise SdpParseError(f"line {number}: {exc}") from None
            except ValueError as exc:
                raise SdpParseError(f"line {number}: {exc}") from None
        if not seen_version:
            raise SdpParseError("missing v= line")
        if not seen_origin:
            raise SdpParseError("missing o= line")
        if not sdp.times:
            sdp.times = ["0 0"]
        return sdp


def _parse_media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpParseError(f"m= needs at least 3 fields: {value!r}")
    port_text, _, count_text = parts[1].partition("/")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise SdpParseError(f"m= port out of range: {port}")
    return MediaDescription(
        media=parts[0],
        port=port,
        port_count=int(count_text) if count_text else None,
        proto=parts[2],
        formats=parts[3:],
    )


def _parse_connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3:
        raise SdpParseError(f"c= needs 3 fields: {value!r}")
    return Connection(nettype=parts[0], addrtype=parts[1], address=parts[2])


# ---------------------------------------------------------------- offer/answer (RFC 3264)


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """The result of offer/answer for our one audio stream: what the RTP session needs.

    codec_name/payload_type/clock_rate_hz: the codec we send with (and expect to receive).
    remote_host/remote_port: where to send RTP (None = not known, e.g. ``c=0.0.0.0`` hold);
    symmetric RTP may later latch to another address.
    direction: OUR direction (sendrecv = we send and receive).
    telephone_event_payload_type: RFC 4733 PT both sides agreed on, or None.
    telephone_event_clock_rate_hz: its clock rate (the ``a=rtpmap`` rate: the audio codec's, RFC 4733 §2.1).
    ptime_ms: packetization time the peer asked for (we send 20 ms).
    """

    codec_name: str
    payload_type: int
    clock_rate_hz: int
    remote_host: str | None
    remote_port: int | None
    direction: Direction
    telephone_event_payload_type: int | None = None
    ptime_ms: int = DEFAULT_PTIME_MS
    telephone_event_clock_rate_hz: int = TELEPHONE_EVENT_CLOCK_RATE_HZ

    @property
    def remote_address(self) -> tuple[str, int] | None:
        if self.remote_host is None or not self.remote_port:
            return None
        return (self.remote_host, self.remote_port)


def _new_origin(address: str, session_id: str | None, session_version: int) -> Origin:
    return Origin(
        username="voipbin",
        session_id=session_id if session_id is not None else str(secrets.randbelow(10**12)),
        session_version=str(session_version),
        addrtype="IP6" if ":" in address else "IP4",
        address=address,
    )


def _audio_attributes(
    rtpmaps: list[RtpMap], telephone_event_pt: int | None, direction: Direction, ptime_ms: int
) -> list[Attribute]:
    attributes: list[Attribute] = [("rtpmap", str(m)) for m in rtpmaps]
    if telephone_event_pt is not None:
        attributes.append(("fmtp", f"{telephone_event_pt} 0-16"))
    attributes.append(("ptime", str(ptime_ms)))
    attributes.append((direction.value, None))
    return attributes


def create_offer(
    address: str,
    port: int,
    *,
    codecs: tuple[str, ...] | list[str] = DEFAULT_CODEC_NAMES,
    telephone_event_payload_type: int | None = DEFAULT_TELEPHONE_EVENT_PAYLOAD_TYPE,
    direction: Direction = Direction.SENDRECV,
    ptime_ms: int = DEFAULT_PTIME_MS,
    session_id: str | None = None,
    session_version: int = 1,
) -> SessionDescription:
    """An SDP offer for one audio stream at ``address:port`` (RFC 3264 §5).

    codecs: encoding names in our preference order (must be in CODECS_BY_NAME).
    Re-offers in the same dialog must pass the same session_id and a higher session_version.
    Raises ValueError for an unknown codec name.
    """
    rtpmaps = []
    for name in codecs:
        codec_class = CODECS_BY_NAME.get(name.upper())
        if codec_class is None or codec_class.STATIC_PAYLOAD_TYPE is None:
            raise ValueError(f"cannot offer codec {name!r}")
        rtpmaps.append(RtpMap(codec_class.STATIC_PAYLOAD_TYPE, codec_class.name, codec_class.clock_rate_hz))
    if telephone_event_payload_type is not None:
        rtpmaps.append(RtpMap(telephone_event_payload_type, TELEPHONE_EVENT_ENCODING, TELEPHONE_EVENT_CLOCK_RATE_HZ))
    origin = _new_origin(address, session_id, session_version)
    media = MediaDescription(
        media="audio",
        port=port,
        proto=SUPPORTED_PROTO,
        formats=[str(m.payload_type) for m in rtpmaps],
        attributes=_audio_attributes(rtpmaps, telephone_event_payload_type, direction, ptime_ms),
    )
    return SessionDescription(
        origin=origin, connection=Connection(address, addrtype=origin.addrtype), media=[media]
    )


def _format_of(media: MediaDescription, payload_type: int) -> RtpMap | None:
    rtpmap = media.rtpmaps().get(payload_type)
    if rtpmap is not None:
        return rtpmap
    static = STATIC_PAYLOAD_TYPES.get(payload_type)
    return RtpMap(payload_type, static[0], static[1]) if static else None


def _usable_audio(media: MediaDescription) -> bool:
    return media.media == "audio" and media.port != 0 and media.proto.upper() == SUPPORTED_PROTO


def _remote_address(sdp: SessionDescription, media: MediaDescription) -> tuple[str | None, int | None]:
    connection = media.connection or sdp.connection
    if connection is None:
        raise OfferAnswerError("no c= line for the audio stream")
    host = connection.host
    if host in ("0.0.0.0", "::"):
        return None, media.port  # RFC 3264 §8.4 old-style hold
    return host, media.port


def _telephone_event_pt(media: MediaDescription, clock_rate_hz: int = TELEPHONE_EVENT_CLOCK_RATE_HZ) -> int | None:
    """The PT of ``media``'s telephone-event at ``clock_rate_hz`` (the audio codec's rate), or None."""
    for pt, rtpmap in media.rtpmaps().items():
        if (
            rtpmap.encoding_name.lower() == TELEPHONE_EVENT_ENCODING
            and rtpmap.clock_rate_hz == clock_rate_hz
            and str(pt) in media.formats
        ):
            return pt
    return None


def _pick_codec(media: MediaDescription, supported: set[str]) -> RtpMap | None:
    """The first format of ``media`` (in its author's order) that we support."""
    for fmt in media.formats:
        try:
            pt = int(fmt)
        except ValueError:
            continue
        rtpmap = _format_of(media, pt)
        if rtpmap is None or rtpmap.channels != 1:
            continue
        codec_class = CODECS_BY_NAME.get(rtpmap.encoding_name.upper())
        if codec_class and codec_class.name in supported and rtpmap.clock_rate_hz == codec_class.clock_rate_hz:
            return rtpmap
    return None


def create_answer(
    offer: SessionDescription,
    address: str,
    port: int,
    *,
    codecs: tuple[str, ...] | list[str] = DEFAULT_CODEC_NAMES,
    direction: Direction = Direction.SENDRECV,
    accept_telephone_event: bool = True,
    ptime_ms: int = DEFAULT_PTIME_MS,
    session_id: str | None = None,
    session_version: int = 1,
) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer ``offer`` (RFC 3264 §6): accept its first usable audio stream, reject the rest.

    The codec is the first of the offerer's formats that is in ``codecs`` (offerer's order,
    RFC 3264 §6.1). Our answer keeps the offerer's payload type numbers. ``direction`` is what
    we want; the answer's direction is its intersection with the reverse of the offer's.
    Every other m= line is answered with port 0 (same count and order, §6).

    Returns (answer SDP, negotiated media). Raises NoCommonCodecError (-> 488) when no audio
    stream has a common codec, OfferAnswerError for an offer without a usable c= line.
    """
    supported = {c.upper() for c in codecs}
    origin = _new_origin(address, session_id, session_version)
    answer = SessionDescription(origin=origin, connection=Connection(address, addrtype=origin.addrtype))
    negotiated: NegotiatedMedia | None = None
    session_direction = offer.direction()
    for offered in offer.media:
        chosen = _pick_codec(offered, supported) if negotiated is None and _usable_audio(offered) else None
        if chosen is None:
            answer.media.append(
                MediaDescription(
                    media=offered.media, port=0, proto=offered.proto, formats=offered.formats[:1] or ["0"]
                )
            )
            continue
        remote_host, remote_port = _remote_address(offer, offered)
        offered_direction = offered.direction(session_direction)
        our_direction = direction.intersect(offered_direction.reversed())
        te_pt = _telephone_event_pt(offered, chosen.clock_rate_hz) if accept_telephone_event else None
        rtpmaps = [chosen] + (
            [RtpMap(te_pt, TELEPHONE_EVENT_ENCODING, chosen.clock_rate_hz)] if te_pt is not None else []
        )
        answer.media.append(
            MediaDescription(
                media="audio",
                port=port,
                proto=offered.proto,
                formats=[str(m.payload_type) for m in rtpmaps],
                attributes=_audio_attributes(rtpmaps, te_pt, our_direction, ptime_ms),
            )
        )
        negotiated = NegotiatedMedia(
            codec_name=CODECS_BY_NAME[chosen.encoding_name.upper()].name,
            payload_type=chosen.payload_type,
            clock_rate_hz=chosen.clock_rate_hz,
            remote_host=remote_host,
            remote_port=remote_port,
            direction=our_direction,
            telephone_event_payload_type=te_pt,
            ptime_ms=offered.ptime_ms() or DEFAULT_PTIME_MS,
            telephone_event_clock_rate_hz=chosen.clock_rate_hz,
        )
    if negotiated is None:
        offered_names = [
            m.encoding_name for md in offer.media if md.media == "audio" for m in md.rtpmaps().values()
        ]
        raise NoCommonCodecError(
            f"no common audio codec: offer has {offered_names or 'no rtpmap'}, we support {sorted(supported)}"
        )
    return answer, negotiated


def process_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """Read the peer's answer to our ``offer`` (RFC 3264 §7).

    Uses the answer's first audio stream with a non-zero port whose first supported format
    was in our offer. Raises NoCommonCodecError if the answer rejects audio or picks a
    codec we did not offer, OfferAnswerError for a structurally wrong answer.
    """
    if len(answer.media) != len(offer.media):
        raise OfferAnswerError(
            f"answer has {len(answer.media)} m= lines, offer had {len(offer.media)} (RFC 3264 §6)"
        )
    session_direction = answer.direction()
    for ours, theirs in zip(offer.media, answer.media):
        if not _usable_audio(ours) or not _usable_audio(theirs):
            continue
        offered = {m.encoding_name.upper() for m in (_format_of(ours, int(f)) for f in ours.formats if f.isdigit()) if m}
        chosen = _pick_codec(theirs, offered)
        if chosen is None:
            continue
        remote_host, remote_port = _remote_address(answer, theirs)
        their_direction = theirs.direction(session_direction)
        our_direction = ours.direction().intersect(their_direction.reversed())
        rate = chosen.clock_rate_hz
        te_pt = _telephone_event_pt(theirs, rate) if _telephone_event_pt(ours, rate) is not None else None
        return NegotiatedMedia(
            codec_name=CODECS_BY_NAME[chosen.encoding_name.upper()].name,
            payload_type=chosen.payload_type,
            clock_rate_hz=chosen.clock_rate_hz,
            remote_host=remote_host,
            remote_port=remote_port,
            direction=our_direction,
            telephone_event_payload_type=te_pt,
            ptime_ms=theirs.ptime_ms() or DEFAULT_PTIME_MS,
            telephone_event_clock_rate_hz=rate,
        )
    raise NoCommonCodecError("the answer accepts no audio stream with a codec we offered")
