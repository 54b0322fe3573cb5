"""Small helpers shared by tests: free loopback ports and the sandbox admin credentials."""

from __future__ import annotations

import socket

ADMIN_USERNAME = "admin@localhost"
ADMIN_PASSWORD = "admin@localhost"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """An unused port on 127.0.0.1 (bound then released)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
