"""SIGTERM/SIGINT for server processes: drain the runtime, then stop the HTTP servers; exit 0.

uvicorn's own handling re-raises the signal once ``serve()`` returns, which kills the process before
the runtime's shutdown path runs (calls were never hung up). Here the servers leave the signals to
:func:`install_drain`: the first SIGTERM or SIGINT drains (``Runtime.drain``: no new calls, BYE to
every live call, sessions stopped, webhooks flushed, within ``drain_grace_seconds``) and then asks
the servers to exit; a second signal stops them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING

import structlog
import uvicorn

if TYPE_CHECKING:
    from voipbin.runtime import Runtime

log = structlog.get_logger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class DrainingServer(uvicorn.Server):
    """A uvicorn server that does not capture (nor re-raise) SIGTERM/SIGINT: see :func:`install_drain`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def install_drain(runtime: Runtime, servers: Sequence[uvicorn.Server]) -> Callable[[], None]:
    """Handle SIGTERM/SIGINT on the running loop as described above; returns a function that removes
    the handlers."""
    loop = asyncio.get_running_loop()
    draining: list[asyncio.Task[None]] = []

    async def drain() -> None:
        try:
            await runtime.drain()
        except Exception:
            log.exception("drain failed")
        finally:
            for server in servers:
                server.should_exit = True

    def on_signal(sig: signal.Signals) -> None:
        if not draining:
            log.info("shutdown requested; draining", signal=sig.name)
            draining.append(loop.create_task(drain(), name="drain"))
            return
        log.warning("second signal; stopping now", signal=sig.name)
        for server in servers:
            server.should_exit = server.force_exit = True

    for sig in SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)

    def remove() -> None:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)

    return remove
