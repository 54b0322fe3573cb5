"""RTP port allocation from a configured range (even ports, RFC 3550 §11)."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from typing import Callable, TypeVar

DEFAULT_MIN_PORT = 10000
DEFAULT_MAX_PORT = 20000

P = TypeVar("P", bound=asyncio.DatagramProtocol)


class PortsExhaustedError(RuntimeError):
    """No even port in the range could be bound."""


class PortAllocator:
    """Hands out even UDP ports in ``[min_port, max_port)`` in random order.

    A released port goes to the back of the queue, so a port is not reused soon after a
    call ended (late packets of the old call would otherwise reach the new one).
    """

    def __init__(self, min_port: int = DEFAULT_MIN_PORT, max_port: int = DEFAULT_MAX_PORT) -> None:
        if not 0 < min_port < max_port <= 65536:
            raise ValueError(f"bad RTP port range {min_port}-{max_port}")
        ports = list(range(min_port + (min_port % 2), max_port, 2))
        random.shuffle(ports)
        self.min_port = min_port
        self.max_port = max_port
        self._free: deque[int] = deque(ports)
        self._in_use: set[int] = set()

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    async def bind(
        self, host: str, protocol_factory: Callable[[], P]
    ) -> tuple[asyncio.DatagramTransport, P, int]:
        """Bind a UDP socket on ``host`` at the next free even port.

        Returns (transport, protocol, port). Raises PortsExhaustedError if every port in the
        range is taken or fails to bind.
        """
        loop = asyncio.get_running_loop()
        for _ in range(len(self._free)):
            port = self._free.popleft()
            try:
                transport, protocol = await loop.create_datagram_endpoint(protocol_factory, local_addr=(host, port))
            except OSError:
                self._free.append(port)  # used by another process: try it again much later
                continue
            self._in_use.add(port)
            return transport, protocol, port
        raise PortsExhaustedError(f"no free RTP port in {self.min_port}-{self.max_port} on {host}")

    def release(self, port: int) -> None:
        """Give back a port returned by :meth:`bind` (after closing its transport)."""
        if port in self._in_use:
            self._in_use.remove(port)
            self._free.append(port)
