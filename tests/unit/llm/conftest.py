"""The fake providers run once per test module (in the module's event loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from .providers import Fakes, started


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fakes() -> AsyncIterator[Fakes]:
    async with started() as running:
        yield running
