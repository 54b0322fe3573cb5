"""Who is calling: the result of authenticating a request, and permission bits (upstream's agent permissions)."""

from __future__ import annotations

from dataclasses import dataclass

PERMISSION_NONE = 0
PERMISSION_PROJECT_SUPER_ADMIN = 0x0001
PERMISSION_CUSTOMER_AGENT = 0x0010
PERMISSION_CUSTOMER_ADMIN = 0x0020
PERMISSION_CUSTOMER_MANAGER = 0x0040
PERMISSION_CUSTOMER_ALL = 0x00F0
PERMISSION_ALL = 0xFFFF


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller.

    ``kind`` is ``token`` (agent login JWT) or ``accesskey``. An accesskey acts with
    customer-admin rights on its own customer, as upstream does.
    """

    customer_id: str
    permission: int
    kind: str
    agent_id: str | None = None
    accesskey_id: str | None = None

    def has(self, permission: int) -> bool:
        """True when any bit of ``permission`` is held (admin implies manager)."""
        held = self.permission
        if held & PERMISSION_CUSTOMER_ADMIN:
            held |= PERMISSION_CUSTOMER_MANAGER
        return bool(held & permission)
