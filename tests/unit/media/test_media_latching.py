"""The RTP source rule (media/latching.py) as plain state: no sockets, time passed in."""

from __future__ import annotations

import pytest

from voipbin.media.latching import LATCH_CONFIRM_PACKETS, LATCH_WINDOW_S, MAX_CANDIDATES, SourceFilter, is_reachable

PHONE_PUBLIC = ("203.0.113.7", 31000)
ATTACKER = ("127.0.0.2", 40000)


@pytest.mark.parametrize(("host", "reachable"), [
    ("127.0.0.1", True), ("::1", True), ("8.8.8.8", True), ("2001:4860:4860::8888", True),
    ("10.1.2.3", False), ("172.16.0.9", False), ("192.168.1.20", False), ("100.64.0.1", False),
    ("169.254.1.1", False), ("0.0.0.0", False), ("fe80::1", False), ("fd00::1", False),
    ("192.0.2.10", False), ("224.0.0.1", False), ("phone.example.com", False), ("", False),
])
def test_reachable_addresses(host: str, reachable: bool) -> None:
    assert is_reachable(host) is reachable


def test_reachable_sdp_address_is_the_only_source_ever() -> None:
    f = SourceFilter()
    f.reset(("127.0.0.1", 4000))
    assert not f.learning
    assert f.accept(("127.0.0.1", 4000), 1, 0.0)
    for i in range(50):  # a steady stranger, even on the same host, never takes over
        assert not f.accept(("127.0.0.1", 4002), 7, 0.02 * i)
        assert not f.accept(ATTACKER, 7, 0.02 * i)
    assert f.latched is None and f.send_address == ("127.0.0.1", 4000)


def test_private_sdp_address_latches_once_to_the_first_confirmed_source() -> None:
    f = SourceFilter()
    f.reset(("10.0.0.5", 4000))
    assert f.learning
    assert not f.accept(ATTACKER, 9, 0.0)  # one stray packet: a candidate, not a latch
    results = [f.accept(PHONE_PUBLIC, 1, 0.02 * i) for i in range(LATCH_CONFIRM_PACKETS)]
    assert results == [False] * (LATCH_CONFIRM_PACKETS - 1) + [True]
    assert f.latched == PHONE_PUBLIC and f.send_address == PHONE_PUBLIC and not f.learning
    for i in range(100):
        assert not f.accept(ATTACKER, 9, 1 + 0.02 * i)
        assert not f.accept(("10.0.0.5", 4000), 1, 1 + 0.02 * i)  # nor the SDP address, once latched
    assert f.latched == PHONE_PUBLIC
    assert f.accept(PHONE_PUBLIC, 2, 3.0)  # the latched source may change SSRC (re-INVITE, PBX)


def test_a_source_whose_ssrc_changes_is_not_confirmed() -> None:
    f = SourceFilter(confirm_packets=3)
    f.reset(("192.168.1.2", 4000))
    assert [f.accept(ATTACKER, ssrc, 0.01 * ssrc) for ssrc in range(10)] == [False] * 10
    assert f.latched is None and f.learning


def test_interleaved_sources_are_counted_apart() -> None:
    f = SourceFilter(confirm_packets=3)
    f.reset(("192.168.1.2", 4000))
    got = []
    for i in range(3):
        got.append(f.accept(ATTACKER, 9, 0.02 * i) and "attacker")
        got.append(f.accept(PHONE_PUBLIC, 1, 0.02 * i + 0.01) and "phone")
    assert got[-2] == "attacker" and f.latched == ATTACKER  # the first to confirm wins (documented)


def test_the_sdp_address_itself_is_taken_at_once() -> None:
    f = SourceFilter()
    f.reset(("192.168.1.2", 4000))
    assert f.accept(("192.168.1.2", 4000), 5, 0.0) and f.latched == ("192.168.1.2", 4000)
    assert not f.accept(PHONE_PUBLIC, 1, 0.02)


def test_learning_ends_with_the_window() -> None:
    f = SourceFilter(window_s=LATCH_WINDOW_S)
    f.reset(("10.0.0.5", 4000))
    assert not f.accept(PHONE_PUBLIC, 1, 100.0)  # the first packet opens the window
    assert not f.accept(PHONE_PUBLIC, 1, 100.0 + LATCH_WINDOW_S + 0.01)
    assert not f.learning
    assert [f.accept(PHONE_PUBLIC, 1, 104.0 + i) for i in range(5)] == [False] * 5
    assert f.accept(("10.0.0.5", 4000), 1, 110.0)  # only the SDP address is left


def test_spoofed_flood_cannot_grow_the_candidate_table() -> None:
    f = SourceFilter(confirm_packets=3)
    f.reset(("10.0.0.5", 4000))
    for port in range(10000, 10000 + 5000):
        assert not f.accept(("198.51.100.1", port), port, 0.001)
    assert f.candidate_count == MAX_CANDIDATES
    assert f.latched is None


def test_reset_starts_again_and_latching_can_be_disabled() -> None:
    f = SourceFilter()
    f.reset(("10.0.0.5", 4000))
    for i in range(LATCH_CONFIRM_PACKETS):
        f.accept(PHONE_PUBLIC, 1, 0.02 * i)
    f.reset(("127.0.0.1", 5000))
    assert f.latched is None and not f.learning and not f.accept(PHONE_PUBLIC, 1, 1.0)
    strict = SourceFilter(latching=False)
    strict.reset(("10.0.0.5", 4000))
    assert not strict.learning and not strict.accept(PHONE_PUBLIC, 1, 0.0)
    f.reset(None)
    assert not f.accept(PHONE_PUBLIC, 1, 2.0) and f.send_address is None


def test_addresses_compare_by_value_not_spelling() -> None:
    f = SourceFilter()
    f.reset(("::1", 4000))
    assert f.accept(("0:0:0:0:0:0:0:1", 4000), 1, 0.0)
    assert not f.accept(("::1", 4001), 1, 0.0)
    f.reset(("Phone.Example", 4000))  # not an IP literal: unreachable, learnt by NAT latching
    assert f.learning and f.accept(("phone.example", 4000), 1, 0.0)
