"""Password hashing with argon2id (argon2-cffi), off the event loop.

One argon2 verification costs tens to hundreds of milliseconds of CPU; on the event loop it would stall
SIP and RTP (issue 13, finding 6). The async functions run it in a dedicated thread pool sized to the
CPU cores (argon2-cffi releases the GIL while hashing), so concurrent logins use the cores and the loop
keeps answering.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="argon2")
    return _executor


def hash_password(password: str) -> str:
    """An argon2id PHC string for ``password`` (blocking: call from a thread or at start-up)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; never raises on a bad hash (blocking)."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` in the hashing pool."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), hash_password, password)


async def verify_password_async(password_hash: str, password: str) -> bool:
    """:func:`verify_password` in the hashing pool."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), verify_password, password_hash, password)
