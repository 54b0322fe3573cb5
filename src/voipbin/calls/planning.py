"""Planning a call before anything is written: its flow and the endpoints each destination rings.

A destination becomes a :data:`~voipbin.calls.records.Plan`: an ``extension`` rings every
registered binding of the extension (a groupcall), a ``sip`` URI is dialled as is, a ``tel``
number through the configured trunk (a groupcall too: seed 002 reads ``groupcalls[0].call_ids``).
Anything that cannot be dialled is an InvalidArgument (-> 400) naming the field.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from voipbin.calls.leg import DialTarget
from voipbin.calls.records import Plan
from voipbin.common.errors import InvalidArgument, NotFound
from voipbin.extensions.service import ExtensionService
from voipbin.flows.actions import NIL_UUID
from voipbin.flows.service import FlowService
from voipbin.numbers.service import NumberService
from voipbin.sip.location import Binding, LocationService
from voipbin.store.models import Flow


@dataclass
class CallSettings:
    """What the call manager needs of the process settings."""

    sip_domain: str
    ring_timeout_seconds: float = 60.0
    rtp_timeout_seconds: float = 30.0
    trunk_uri: str = ""
    trunk_username: str = ""
    trunk_password: str = ""
    pod_id: str = ""


class CallPlanner:
    """Resolves flows, owned numbers and destinations (reads only)."""

    def __init__(self, settings: CallSettings, *, numbers: NumberService, extensions: ExtensionService,
                 flows: FlowService, location: LocationService) -> None:
        self.settings = settings
        self._numbers = numbers
        self._extensions = extensions
        self._flows = flows
        self._location = location

    async def owns_number(self, customer_id: str, number: str) -> bool:
        """Whether ``number`` (E.164) is a number of ``customer_id``."""
        return await self._numbers.find_owned(customer_id, number) is not None

    async def flow(self, customer_id: str, flow_id: str) -> Flow:
        """A stored flow of ``customer_id`` (NotFound otherwise)."""
        return await self._flows.get(customer_id, flow_id)

    async def resolve_flow(self, customer_id: str, body: dict[str, Any]) -> Flow:
        """The flow of ``POST /calls``: ``flow_id`` (of this account), else a non-persisted flow of
        ``actions`` (validated), else an empty one. InvalidArgument for a foreign or unknown flow."""
        flow_id = body.get("flow_id")
        if flow_id and str(flow_id) != NIL_UUID:
            try:
                return await self._flows.get(customer_id, str(uuid.UUID(str(flow_id))))
            except (ValueError, NotFound) as exc:
                raise InvalidArgument("flow_id does not name a flow of this account", field="flow_id") from exc
        # no flow (absent or the nil UUID) and no actions: an empty flow (seed 002 step 1)
        actions = body.get("actions")
        return Flow(id=str(uuid.uuid4()), customer_id=customer_id, type="flow", name="", detail="",
                    persist=False, actions=[] if actions in (None, []) else await self._flows.validate_actions(actions))

    async def plan(self, customer_id: str, index: int, dest: dict[str, str], src: dict[str, str]) -> Plan:
        """The endpoints to ring for ``destinations[index]``: (destination, targets, is_groupcall)."""
        where = f"destinations[{index}]"
        caller = src["target"] or "anonymous"
        from_uri = f"sip:{caller}@{self.settings.sip_domain}"
        if dest["type"] == "extension":
            # target_name is the extension's name (seeds 000/003); the upstream reference dials by the
            # ``extension`` (SIP user) instead, so that matches too when no name does
            ext = None
            if dest["target_name"]:
                ext = (await self._extensions.find(customer_id, name=dest["target_name"])
                       or await self._extensions.find(customer_id, extension=dest["target_name"]))
            if ext is None and dest["target"]:
                try:
                    ext = await self._extensions.get(customer_id, str(uuid.UUID(dest["target"])))
                except (ValueError, NotFound):
                    ext = None
            if ext is None:
                raise InvalidArgument(
                    f"{where}.target_name: no extension named {dest['target_name'] or dest['target']!r}",
                    field=f"{where}.target_name")
            dest = {**dest, "target": ext.id, "target_name": ext.name}
            aor = f"sip:{ext.extension}@{customer_id}.registrar.{self.settings.sip_domain}".lower()
            bindings = await self._location.lookup(aor)
            return dest, [_binding_target(b, aor, from_uri, src) for b in bindings], True
        if dest["type"] == "sip":
            return dest, [DialTarget(request_uri=dest["target"], to_uri=dest["target"], from_uri=from_uri,
                                     from_display=src.get("name", ""))], False
        # tel: through the configured trunk
        if not self.settings.trunk_uri:
            raise InvalidArgument(f"{where}.type: tel destinations need a SIP trunk (VOIPBIN_TRUNK_URI is not set)",
                                  field=f"{where}.type")
        host = self.settings.trunk_uri.split(":", 1)[1] if ":" in self.settings.trunk_uri else self.settings.trunk_uri
        uri = f"sip:{dest['target']}@{host.split(';')[0]}"
        creds = ((self.settings.trunk_username, self.settings.trunk_password)
                 if self.settings.trunk_username else None)
        return dest, [DialTarget(request_uri=uri, to_uri=uri, from_uri=f"sip:{caller}@{host.split(';')[0]}",
                                 credentials=creds)], True  # a groupcall too: seed 002 reads groupcalls[0].call_ids


def _binding_target(binding: Binding, aor: str, from_uri: str, src: dict[str, str]) -> DialTarget:
    return DialTarget(request_uri=binding.contact, to_uri=aor, from_uri=from_uri,
                      from_display=src.get("name", ""), destination=tuple(binding.received),  # type: ignore[arg-type]
                      transport=binding.transport.upper(), route=binding.path)
