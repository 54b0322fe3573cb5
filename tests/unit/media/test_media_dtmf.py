"""RFC 4733 DTMF parts of an RTP session: durations follow the negotiated telephone-event rate."""

import asyncio

from voipbin.media.codecs.telephone_event import TelephoneEvent
from voipbin.media.dtmf import DtmfReceiver, DtmfSender
from voipbin.media.rtp import RtpPacket
from voipbin.media.rtp_sender import RtpSender
from voipbin.media.rtp_stats import RtpStats
from voipbin.media.sdp import SessionDescription, create_answer, create_offer, process_answer


class Sink:
    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []

    def sendto(self, data: bytes, addr: object) -> None:
        self.packets.append(RtpPacket.parse(data))


def run_job(rate_hz: int, duration_ms: int) -> tuple[list[RtpPacket], RtpStats, asyncio.Future]:
    stats = RtpStats()
    sender, dtmf, sink = RtpSender(stats), DtmfSender(stats, 101, rate_hz), Sink()
    done = dtmf.send(sender, "5", duration_ms, 60)
    while dtmf.jobs:
        sender.advance(1)
        dtmf.tick(sender, sink, ("127.0.0.1", 4000))  # type: ignore[arg-type]
    return sink.packets, stats, done


async def test_event_durations_are_in_units_of_the_telephone_event_rate() -> None:
    for rate_hz in (8000, 16000):
        packets, stats, done = run_job(rate_hz, 100)
        events = [TelephoneEvent.parse(p.payload) for p in packets]
        assert [e.end for e in events] == [False] * 5 + [True] * 3  # 5 x 20 ms, end sent 3 times
        assert events[0].duration == rate_hz // 50 and events[-1].duration == rate_hz // 10
        assert packets[0].marker and not any(p.marker for p in packets[1:])
        assert len({p.timestamp for p in packets}) == 1 and {p.payload_type for p in packets} == {101}
        assert stats.dtmf_sent == 1 and done.done()


def test_received_duration_is_converted_with_the_negotiated_rate() -> None:
    for rate_hz in (8000, 16000):
        digits = []
        receiver = DtmfReceiver(RtpStats(), 101, rate_hz, digits.append)
        end = TelephoneEvent(11, end=True, duration=rate_hz // 10).serialize()  # "#", 100 ms
        for _ in range(3):
            receiver.receive(RtpPacket(101, 1, 1234, 7, end))
        assert [(d.digit, d.duration_ms, d.timestamp) for d in digits] == [("#", 100, 1234)]


def test_negotiated_media_carries_the_telephone_event_rate() -> None:
    offer = create_offer("127.0.0.1", 4000)
    _, answered = create_answer(SessionDescription.parse(str(offer)), "127.0.0.1", 5000)
    assert (answered.telephone_event_payload_type, answered.telephone_event_clock_rate_hz) == (101, 8000)
    answer, _ = create_answer(SessionDescription.parse(str(offer)), "127.0.0.1", 5000)
    media = process_answer(offer, answer)
    assert (media.telephone_event_payload_type, media.telephone_event_clock_rate_hz) == (101, 8000)
