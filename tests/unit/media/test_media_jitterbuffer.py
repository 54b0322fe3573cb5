from voipbin.media.jitterbuffer import JitterBuffer
from voipbin.media.rtp import RtpPacket


def pkt(seq: int) -> RtpPacket:
    return RtpPacket(payload_type=0, sequence_number=seq & 0xFFFF, timestamp=(seq * 160) & 0xFFFFFFFF, ssrc=1)


def feed(jb: JitterBuffer, seqs: list[int], now: float = 0.0) -> list[int]:
    out = []
    for s in seqs:
        out += [p.sequence_number for p in jb.put(pkt(s), now)]
    return out


def test_in_order_released_immediately() -> None:
    jb = JitterBuffer()
    assert feed(jb, [10, 11, 12]) == [10, 11, 12]
    assert len(jb) == 0


def test_reorder() -> None:
    jb = JitterBuffer()
    assert feed(jb, [1, 3, 4, 2, 5]) == [1, 2, 3, 4, 5]
    assert jb.stats.lost == 0


def test_wraparound_reorder() -> None:
    jb = JitterBuffer()
    assert feed(jb, [65534, 0, 65535, 1]) == [65534, 65535, 0, 1]


def test_late_and_duplicate_dropped() -> None:
    jb = JitterBuffer()
    assert feed(jb, [100, 101, 103, 103, 102, 99, 101]) == [100, 101, 102, 103]
    assert jb.stats.duplicate == 1
    assert jb.stats.late == 2


def test_capacity_skips_gap() -> None:
    jb = JitterBuffer(capacity=3)
    assert feed(jb, [1, 3, 4, 5]) == [1]
    assert feed(jb, [6]) == [3, 4, 5, 6]
    assert jb.stats.lost == 1
    assert feed(jb, [2]) == []  # arrived after being given up: late
    assert jb.stats.late == 1


def test_bounded_depth() -> None:
    jb = JitterBuffer(capacity=4)
    feed(jb, [0] + list(range(10, 40)))
    assert len(jb) <= 4


def test_poll_gives_up_after_max_delay() -> None:
    jb = JitterBuffer(capacity=10, max_delay_s=0.05)
    assert feed(jb, [1, 3], now=1.0) == [1]
    assert jb.poll(1.03) == []
    assert [p.sequence_number for p in jb.poll(1.06)] == [3]
    assert jb.stats.lost == 1


def test_big_jump_needs_probation() -> None:
    jb = JitterBuffer()
    assert feed(jb, [10, 11]) == [10, 11]
    assert feed(jb, [30000]) == []  # one stray packet is not believed
    assert feed(jb, [12]) == [12]
    assert feed(jb, [40000, 40001]) == [40000, 40001]  # a sender restart is
    assert jb.stats.resyncs == 1


def test_drain_releases_everything_in_order() -> None:
    jb = JitterBuffer(capacity=10)
    feed(jb, [1, 5, 3])
    assert [p.sequence_number for p in jb.drain()] == [3, 5]
