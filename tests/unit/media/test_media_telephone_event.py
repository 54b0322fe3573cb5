import pytest

from voipbin.media.codecs.telephone_event import TelephoneEvent, TelephoneEventError, event_for_digit


def test_round_trip() -> None:
    event = TelephoneEvent(event=11, end=True, volume=10, duration=800)
    data = event.serialize()
    assert data == bytes([11, 0x80 | 10, 0x03, 0x20])
    assert TelephoneEvent.parse(data) == event
    assert event.digit == "#"


def test_digits() -> None:
    assert [event_for_digit(d) for d in "0123456789*#abcd"] == list(range(16))
    with pytest.raises(TelephoneEventError):
        event_for_digit("x")


def test_reserved_bit_ignored_and_extra_events_ignored() -> None:
    parsed = TelephoneEvent.parse(bytes([5, 0x40 | 7, 0, 160, 9, 9, 9, 9]))
    assert parsed == TelephoneEvent(event=5, end=False, volume=7, duration=160)


@pytest.mark.parametrize("payload", [b"", b"\x01\x02\x03"])
def test_short_payload_rejected(payload: bytes) -> None:
    with pytest.raises(TelephoneEventError):
        TelephoneEvent.parse(payload)


def test_out_of_range_fields_rejected() -> None:
    with pytest.raises(TelephoneEventError):
        TelephoneEvent(event=1, volume=64).serialize()
    with pytest.raises(TelephoneEventError):
        TelephoneEvent(event=1, duration=70000).serialize()
