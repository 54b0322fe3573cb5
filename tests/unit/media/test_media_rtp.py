"""RFC 3550 §5.1 header parse/serialize, incl. property tests and malformed packets."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voipbin.media.rtp import RtpPacket, RtpParseError, pack_header, seq_diff


def test_parse_known_packet() -> None:
    data = bytes.fromhex("80e0 1234 0001e240 deadbeef".replace(" ", "")) + b"\xff" * 160
    packet = RtpPacket.parse(data)
    assert packet.marker and packet.payload_type == 0x60
    assert packet.sequence_number == 0x1234
    assert packet.timestamp == 123456
    assert packet.ssrc == 0xDEADBEEF
    assert packet.payload == b"\xff" * 160
    assert packet.serialize() == data


def test_csrc_extension_padding() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence_number=65535,
        timestamp=2**32 - 1,
        ssrc=1,
        payload=b"abc",
        csrc=[1, 2, 3],
        extension_profile=0xBEDE,
        extension_data=b"\x10\xaa\x00\x00",
        padding_size=5,
    )
    data = packet.serialize()
    assert data[0] == 0x80 | 0x20 | 0x10 | 3
    assert data[-1] == 5 and len(data) == 12 + 12 + 4 + 4 + 3 + 5
    assert RtpPacket.parse(data) == packet


def test_pack_header_matches_serialize() -> None:
    assert pack_header(0, True, 7, 160, 99) == RtpPacket(0, 7, 160, 99, b"", marker=True).serialize()


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15),
    extension_profile=st.none() | st.integers(0, 0xFFFF),
    extension_data=st.integers(0, 4).map(lambda n: b"\x01" * (4 * n)),
    padding_size=st.integers(0, 255),
)


@given(packets)
def test_round_trip_property(packet: RtpPacket) -> None:
    if packet.extension_profile is None:
        packet.extension_data = b""
    assert RtpPacket.parse(packet.serialize()) == packet


@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_parse_error(data: bytes) -> None:
    try:
        RtpPacket.parse(data)
    except RtpParseError:
        pass


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00\x00",  # short
        b"\x40" + bytes(11),  # version 1
        b"\x00" + bytes(11),  # version 0
        b"\x83" + bytes(11) + bytes(8),  # 3 CSRCs announced, 2 present
        b"\x90" + bytes(11) + b"\xbe\xde",  # extension header truncated
        b"\x90" + bytes(11) + b"\xbe\xde\x00\x05" + bytes(8),  # extension longer than packet
        b"\xa0" + bytes(11) + b"\x01\x00",  # padding count 0
        b"\xa0" + bytes(11) + b"\x01\x09",  # padding count larger than payload
    ],
)
def test_malformed_rejected(data: bytes) -> None:
    with pytest.raises(RtpParseError):
        RtpPacket.parse(data)


def test_serialize_rejects_bad_fields() -> None:
    with pytest.raises(ValueError):
        RtpPacket(csrc=list(range(16))).serialize()
    with pytest.raises(ValueError):
        RtpPacket(extension_profile=1, extension_data=b"abc").serialize()
    with pytest.raises(struct.error):
        RtpPacket(sequence_number=70000).serialize()


def test_seq_diff_wraps() -> None:
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(100, 50) == 50
    assert seq_diff(5, 5) == 0
