"""Fixtures for the SIP unit tests (fakes live in sip_fakes.py)."""

from __future__ import annotations

import pytest
from sip_fakes import FakeClock, FakeTransport


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def udp() -> FakeTransport:
    return FakeTransport()
