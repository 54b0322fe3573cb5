"""Torture corpus (RFC 4475 style): valid messages parse; invalid ones get 400-class or are dropped."""

from __future__ import annotations

import asyncio

import pytest
from sip_fakes import FakeTransport
from torture_corpus import DROP, REPLY, VALID, VALID_RESPONSES

from voipbin.sip.message import Request, Response
from voipbin.sip.parser import parse_message, validate_request
from voipbin.sip.stack import SipStack, StackConfig

SOURCE = ("192.0.2.10", 5060)


def _stack() -> SipStack:
    return SipStack(StackConfig(port=5060))


@pytest.mark.parametrize(("name", "data"), VALID, ids=[v[0] for v in VALID])
async def test_valid_requests_parse_and_are_answered(name: str, data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Request)
    assert validate_request(message) is None
    again = parse_message(message.to_bytes())  # serializer output is parseable too
    assert isinstance(again, Request) and again.headers == message.headers

    stack, transport = _stack(), FakeTransport()
    stack.receive(data, SOURCE, transport)
    for _ in range(3):
        await asyncio.sleep(0)
    assert stack.stats["requests"] == 1, stack.stats
    statuses = [parse_message(d).status for d, _ in transport.sent]  # type: ignore[attr-defined]
    assert statuses and statuses[-1] in (200, 501)


@pytest.mark.parametrize(("name", "data"), VALID_RESPONSES, ids=[v[0] for v in VALID_RESPONSES])
def test_valid_responses_parse(name: str, data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Response)
    assert parse_message(message.to_bytes()).reason == message.reason  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "data", "status", "reason"), REPLY, ids=[r[0] for r in REPLY])
def test_invalid_requests_get_a_precise_reply(name: str, data: bytes, status: int, reason: str) -> None:
    stack, transport = _stack(), FakeTransport()
    stack.receive(data, SOURCE, transport)
    assert len(transport.sent) == 1, stack.stats
    response = parse_message(transport.sent[0][0])
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (status, reason)
    assert transport.sent[0][1] == SOURCE  # rport: back to the source
    assert stack.stats["rejected"] == 1 and stack.stats["internal_errors"] == 0


@pytest.mark.parametrize(("name", "data"), DROP, ids=[d[0] for d in DROP])
def test_hopeless_messages_are_dropped_and_counted(name: str, data: bytes) -> None:
    stack, transport = _stack(), FakeTransport()
    stack.receive(data, SOURCE, transport)
    assert transport.sent == []
    assert stack.stats["internal_errors"] == 0
    assert stack.stats["requests"] == 0
    dropped = stack.stats["unparseable"] + stack.stats["unanswerable"]
    assert dropped == 1 or data == b""
