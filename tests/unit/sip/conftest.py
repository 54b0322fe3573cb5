"""Fixtures for the SIP unit tests (fakes live in sip_fakes.py, the UA tests' peers in ua_peers.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sip_fakes import FakeClock, FakeTransport
from ua_peers import T1, Callee

from voipbin.sip.stack import SipStack, StackConfig
from voipbin.sip.transaction import Clock
from voipbin.sip.ua import UserAgent


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def udp() -> FakeTransport:
    return FakeTransport()


@asynccontextmanager
async def _two_uas(caller_clock: Clock | None = None) -> AsyncIterator[tuple[UserAgent, UserAgent, Callee]]:
    """Two UserAgents on loopback stacks (short T1): (caller, callee's UA, its :class:`Callee`)."""
    a = SipStack(StackConfig(port=0, user_agent="uac", timers={"t1": T1}))
    b = SipStack(StackConfig(port=0, user_agent="uas", timers={"t1": T1}))
    await a.start()
    await b.start()
    caller, callee_ua = UserAgent(a, clock=caller_clock), UserAgent(b)
    callee = Callee(callee_ua)
    callee_ua.on_incoming_invite = callee
    yield caller, callee_ua, callee
    caller.close()
    callee_ua.close()
    await a.stop()
    await b.stop()


@pytest.fixture
async def pair() -> AsyncIterator[tuple[UserAgent, UserAgent, Callee]]:
    """A caller UA and a callee UA over loopback, every timer real."""
    async with _two_uas() as uas:
        yield uas


@pytest.fixture
async def clocked_pair(clock: FakeClock) -> AsyncIterator[tuple[UserAgent, UserAgent, Callee]]:
    """:func:`pair` with the caller's own timers on the fake ``clock`` (the callee's and the
    transaction layers' stay real)."""
    async with _two_uas(clock) as uas:
        yield uas
