"""RFC 4028 header values and negotiation rules, without sockets."""

from __future__ import annotations

import pytest

from voipbin.sip.errors import SipParseError
from voipbin.sip.message import Headers, Request, Response
from voipbin.sip.session_timer import (
    SessionExpires,
    SessionTimer,
    for_2xx_we_send,
    from_2xx,
    header_in_2xx,
    min_se_of,
    too_small,
)
from voipbin.sip.uri import parse_uri


def _request(*headers: tuple[str, str]) -> Request:
    h = Headers()
    for name, value in headers:
        h.add(name, value)
    return Request(h, method="INVITE", uri=parse_uri("sip:a@127.0.0.1"))


def _response(*headers: tuple[str, str]) -> Response:
    h = Headers()
    for name, value in headers:
        h.add(name, value)
    return Response(h, status=200, reason="OK")


@pytest.mark.parametrize(("value", "expected"), [
    ("1800", SessionExpires(1800)), ("90;refresher=UAS", SessionExpires(90, "uas")),
    ("300 ; refresher=uac;x=1", SessionExpires(300, "uac"))])
def test_parse(value: str, expected: SessionExpires) -> None:
    assert SessionExpires.parse(value) == expected


@pytest.mark.parametrize("value", ["", "abc", "-5", "90;refresher=both"])
def test_parse_rejects(value: str) -> None:
    with pytest.raises(SipParseError):
        SessionExpires.parse(value)


def test_uac_side_from_the_2xx() -> None:
    assert from_2xx(_response()) is None  # the peer does not do timers: none at all (§7.2)
    assert from_2xx(_response(("x", "600;refresher=uac"))) == SessionTimer(600, we_refresh=True)
    assert from_2xx(_response(("Session-Expires", "600;refresher=uas"))) == SessionTimer(600, we_refresh=False)


def test_uas_side_keeps_the_requesters_choice_and_our_min_se() -> None:
    assert for_2xx_we_send(_request(), 90) is None
    timer = for_2xx_we_send(_request(("Session-Expires", "1800;refresher=uac")), 90)
    assert timer == SessionTimer(1800, we_refresh=False)
    assert str(header_in_2xx(timer)) == "1800;refresher=uac"
    # no refresher chosen: a requester that supports timers refreshes, else we do
    assert for_2xx_we_send(_request(("Session-Expires", "1800"), ("Supported", "100rel, timer")), 90).we_refresh is False
    assert for_2xx_we_send(_request(("Session-Expires", "1800")), 90).we_refresh is True


def test_422_and_min_se() -> None:
    assert too_small(_request(("Session-Expires", "60")), 90)
    assert not too_small(_request(("Session-Expires", "90")), 90) and not too_small(_request(), 90)
    assert min_se_of(_response(("Min-SE", "120"))) == 120 and min_se_of(_response()) is None


def test_refresh_and_expiry_points() -> None:
    assert SessionTimer(1800, True).refresh_after_s == 900
    assert SessionTimer(1800, False).expire_after_s == 1800 - 32  # min(32, interval/3)
    assert SessionTimer(90, False).expire_after_s == 60
