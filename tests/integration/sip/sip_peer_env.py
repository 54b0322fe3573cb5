"""Shared constants and the registrar-equipped SipStack fixture for the real-peer tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from voipbin.sip.location import InMemoryCredentialStore, InMemoryLocationService
from voipbin.sip.registrar import BindingChange, Registrar
from voipbin.sip.stack import SipStack, StackConfig

CUSTOMER = "c1"
DOMAIN = f"{CUSTOMER}.registrar.voipbin.test"
USER = "100"
PASSWORD = "s3cret-pw"
AOR = f"sip:{USER}@{DOMAIN}"


@dataclass
class Registry:
    stack: SipStack
    registrar: Registrar
    location: InMemoryLocationService
    changes: asyncio.Queue[BindingChange] = field(default_factory=asyncio.Queue)

    @property
    def port(self) -> int:
        return self.stack.port

    async def next_change(self, timeout: float = 10.0) -> BindingChange:
        """The next on_binding_change event (awaited, never slept for)."""
        return await asyncio.wait_for(self.changes.get(), timeout)


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    creds = InMemoryCredentialStore()
    creds.add(CUSTOMER, USER, PASSWORD, owner_id="ext-100")
    location = InMemoryLocationService()
    changes: asyncio.Queue[BindingChange] = asyncio.Queue()
    registrar = Registrar(sip_domain="voipbin.test", credentials=creds, location=location,
                          nonce_secret=b"integration", on_binding_change=changes.put_nowait)
    stack = SipStack(StackConfig(host="127.0.0.1", port=0))
    stack.route("REGISTER", registrar.on_register)
    await stack.start()
    await registrar.start()
    yield Registry(stack, registrar, location, changes)
    await registrar.stop()
    await stack.stop()
