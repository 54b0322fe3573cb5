"""SDP parse/serialize (RFC 4566) and offer/answer (RFC 3264)."""

import pytest

from voipbin.media.sdp import (
    Direction,
    NoCommonCodecError,
    OfferAnswerError,
    SdpParseError,
    SessionDescription,
    create_answer,
    create_offer,
    process_answer,
)

# what baresip 1.0 offers (trimmed): PCMU/PCMA + telephone-event at 101
BARESIP_OFFER = (
    "v=0\r\n"
    "o=- 1234567 7654321 IN IP4 192.0.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "a=tool:baresip 1.0.0\r\n"
    "m=audio 30002 RTP/AVP 8 0 101\r\n"
    "b=AS:64\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=sendrecv\r\n"
    "a=label:1\r\n"
    "a=ssrc:2236785411 cname:sip:x@y\r\n"
)


def offer_with(media_lines: str, session_lines: str = "c=IN IP4 192.0.2.1\r\n") -> SessionDescription:
    return SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n" + session_lines + "t=0 0\r\n" + media_lines
    )


def test_parse_baresip_offer() -> None:
    sdp = SessionDescription.parse(BARESIP_OFFER)
    assert sdp.origin.session_id == "1234567"
    assert sdp.connection is not None and sdp.connection.host == "192.0.2.10"
    (audio,) = sdp.media
    assert (audio.media, audio.port, audio.proto, audio.formats) == ("audio", 30002, "RTP/AVP", ["8", "0", "101"])
    assert audio.rtpmaps()[101].encoding_name == "telephone-event"
    assert audio.fmtp(101) == "0-15"
    assert audio.direction() is Direction.SENDRECV
    assert audio.attribute("ssrc") == "2236785411 cname:sip:x@y"
    assert audio.other_lines == [("b", "AS:64")]


def test_serialize_round_trip() -> None:
    sdp = SessionDescription.parse(BARESIP_OFFER)
    text = str(sdp)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert SessionDescription.parse(text) == sdp
    assert text == BARESIP_OFFER


def test_parse_lf_only_and_bytes() -> None:
    sdp = SessionDescription.parse(BARESIP_OFFER.replace("\r\n", "\n").encode())
    assert sdp.media[0].port == 30002


@pytest.mark.parametrize(
    "body",
    [
        "",
        "v=0\r\ns=-\r\n",  # no o=
        "o=- 1 1 IN IP4 1.2.3.4\r\n",  # no v=
        "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio abc RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n",
        "v=0\r\no=- 1 1\r\n",
        "v=0\r\nthis is not sdp\r\n",
        b"v=0\r\no=\xff\r\n",
    ],
)
def test_parse_errors(body) -> None:
    with pytest.raises(SdpParseError):
        SessionDescription.parse(body)


def test_answer_picks_first_common_codec_in_offerer_order() -> None:
    answer, media = create_answer(SessionDescription.parse(BARESIP_OFFER), "198.51.100.1", 10000)
    assert media.codec_name == "PCMA" and media.payload_type == 8  # offerer listed 8 first
    assert media.remote_address == ("192.0.2.10", 30002)
    assert media.telephone_event_payload_type == 101
    assert media.direction is Direction.SENDRECV
    (audio,) = answer.media
    assert audio.port == 10000 and audio.formats == ["8", "101"]
    assert audio.attribute("ptime") == "20"
    assert answer.connection is not None and answer.connection.host == "198.51.100.1"
    assert "a=rtpmap:101 telephone-event/8000" in str(answer)


def test_answer_respects_our_codec_list() -> None:
    _, media = create_answer(SessionDescription.parse(BARESIP_OFFER), "198.51.100.1", 10000, codecs=["PCMU"])
    assert media.codec_name == "PCMU" and media.payload_type == 0


def test_static_payload_types_without_rtpmap() -> None:
    offer = offer_with("m=audio 4000 RTP/AVP 18 0\r\n")
    _, media = create_answer(offer, "198.51.100.1", 10000)
    assert media.codec_name == "PCMU"
    assert media.telephone_event_payload_type is None


def test_dynamic_telephone_event_payload_type_kept() -> None:
    offer = offer_with("m=audio 4000 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n")
    answer, media = create_answer(offer, "198.51.100.1", 10000)
    assert media.telephone_event_payload_type == 96
    assert answer.media[0].formats == ["0", "96"]


def test_no_common_codec_raises_488_error() -> None:
    offer = offer_with("m=audio 4000 RTP/AVP 18 9\r\na=rtpmap:18 G729/8000\r\na=rtpmap:9 G722/8000\r\n")
    with pytest.raises(NoCommonCodecError, match="G729"):
        create_answer(offer, "198.51.100.1", 10000)


def test_pcmu_at_wrong_rate_is_not_common() -> None:
    offer = offer_with("m=audio 4000 RTP/AVP 97\r\na=rtpmap:97 PCMU/16000\r\n")
    with pytest.raises(NoCommonCodecError):
        create_answer(offer, "198.51.100.1", 10000)


def test_secure_rtp_only_is_no_common_codec() -> None:
    with pytest.raises(NoCommonCodecError):
        create_answer(offer_with("m=audio 4000 RTP/SAVP 0\r\n"), "198.51.100.1", 10000)


def test_other_streams_rejected_with_port_zero_in_order() -> None:
    offer = offer_with(
        "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "m=audio 4000 RTP/AVP 0\r\n"
        "m=audio 4002 RTP/AVP 0\r\n"
    )
    answer, media = create_answer(offer, "198.51.100.1", 10000)
    assert [(m.media, m.port) for m in answer.media] == [("video", 0), ("audio", 10000), ("audio", 0)]
    assert media.remote_port == 4000
    assert str(answer).count("m=") == 3


@pytest.mark.parametrize(
    ("offered", "wanted", "answered"),
    [
        ("sendrecv", Direction.SENDRECV, Direction.SENDRECV),
        ("sendonly", Direction.SENDRECV, Direction.RECVONLY),
        ("recvonly", Direction.SENDRECV, Direction.SENDONLY),
        ("inactive", Direction.SENDRECV, Direction.INACTIVE),
        ("sendrecv", Direction.SENDONLY, Direction.SENDONLY),
        ("sendonly", Direction.SENDONLY, Direction.INACTIVE),
    ],
)
def test_direction_negotiation(offered: str, wanted: Direction, answered: Direction) -> None:
    offer = offer_with(f"m=audio 4000 RTP/AVP 0\r\na={offered}\r\n")
    answer, media = create_answer(offer, "198.51.100.1", 10000, direction=wanted)
    assert media.direction is answered
    assert answer.media[0].direction() is answered


def test_session_level_direction_applies() -> None:
    offer = offer_with("m=audio 4000 RTP/AVP 0\r\n", session_lines="c=IN IP4 192.0.2.1\r\na=sendonly\r\n")
    _, media = create_answer(offer, "198.51.100.1", 10000)
    assert media.direction is Direction.RECVONLY


def test_media_level_connection_wins_and_hold_address() -> None:
    offer = offer_with("m=audio 4000 RTP/AVP 0\r\nc=IN IP4 203.0.113.9\r\n")
    assert create_answer(offer, "198.51.100.1", 10000)[1].remote_host == "203.0.113.9"
    hold = offer_with("m=audio 4000 RTP/AVP 0\r\n", session_lines="c=IN IP4 0.0.0.0\r\n")
    assert create_answer(hold, "198.51.100.1", 10000)[1].remote_address is None


def test_missing_connection_is_an_offer_answer_error() -> None:
    with pytest.raises(OfferAnswerError):
        create_answer(offer_with("m=audio 4000 RTP/AVP 0\r\n", session_lines=""), "198.51.100.1", 10000)


def test_offer_and_answer_processing() -> None:
    offer = create_offer("198.51.100.1", 12000, session_id="42", session_version=3)
    text = str(offer)
    assert "o=voipbin 42 3 IN IP4 198.51.100.1" in text
    assert "m=audio 12000 RTP/AVP 0 8 101" in text
    assert "a=ptime:20" in text and "a=sendrecv" in text
    peer_answer, peer_media = create_answer(SessionDescription.parse(text), "192.0.2.7", 30000, codecs=["PCMA"])
    assert peer_media.remote_address == ("198.51.100.1", 12000)
    media = process_answer(offer, SessionDescription.parse(str(peer_answer)))
    assert (media.codec_name, media.payload_type) == ("PCMA", 8)
    assert media.remote_address == ("192.0.2.7", 30000)
    assert media.telephone_event_payload_type == 101
    assert media.direction is Direction.SENDRECV


def test_process_answer_direction_and_rejection() -> None:
    offer = create_offer("198.51.100.1", 12000)
    answer = offer_with("m=audio 4000 RTP/AVP 0\r\na=recvonly\r\n")
    assert process_answer(offer, answer).direction is Direction.SENDONLY
    with pytest.raises(NoCommonCodecError):
        process_answer(offer, offer_with("m=audio 0 RTP/AVP 0\r\n"))
    with pytest.raises(NoCommonCodecError):
        process_answer(offer, offer_with("m=audio 4000 RTP/AVP 9\r\na=rtpmap:9 G722/8000\r\n"))
    with pytest.raises(OfferAnswerError):
        process_answer(offer, offer_with("m=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\n"))


def test_create_offer_unknown_codec() -> None:
    with pytest.raises(ValueError):
        create_offer("198.51.100.1", 12000, codecs=["opus"])
