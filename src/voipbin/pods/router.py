"""What the API calls to run a command where it must run (issue 19).

:meth:`PodRouter.route` runs a command for an existing resource on the pod that holds it
(:class:`~voipbin.pods.directory.PodDirectory` finds it); :meth:`PodRouter.place` runs a command
that starts something live (a new call, a conference room) here when this pod has media, else on
the least-loaded live media pod, trying the next one when the chosen pod does not answer (it died
within its heartbeat expiry) or answers 503 (it is draining). In one process (``memory://`` bus) both run here without a look-up,
as before scale-out.
"""

from __future__ import annotations

from typing import Any

from voipbin.common.errors import DomainError
from voipbin.pods.commands import Commands, PodUnavailable
from voipbin.pods.directory import PodDirectory

MAX_PLACEMENT_TRIES = 3
"""Media pods tried for one new call before it is a 503."""


class PodRouter:
    """Routing of the named commands of ``commands`` (``has_media``: this pod runs SIP and media)."""

    def __init__(self, commands: Commands, directory: PodDirectory, *, has_media: bool) -> None:
        self.commands = commands
        self.directory = directory
        self.has_media = has_media

    async def route(self, kind: str, resource_id: str, name: str, **args: Any) -> Any:
        """Run ``name(**args)`` on the pod holding ``kind``/``resource_id`` (see
        :meth:`PodDirectory.holder`); here when none holds it. Raises the command's errors, and
        PodUnavailable (503) naming the pod when it does not answer."""
        pod_id = await self.directory.holder(kind, resource_id) if self.commands.routed else ""
        return await self.commands.run(pod_id, name, holds=f"{kind} {resource_id}", **args)

    async def place(self, name: str, *, near: tuple[str, str] | None = None, **args: Any) -> Any:
        """Run ``name(**args)`` here if this pod has media, else on a live media pod: the pod holding
        ``near`` (kind, id: the conference a new call joins) when there is one, else the least loaded.
        Raises the command's errors; PodUnavailable (503) when no media pod answers."""
        if not self.commands.routed:
            return await self.commands.run("", name, holds="", **args)
        tried: list[str] = []
        holder = await self.directory.holder(*near) if near is not None else ""
        if self.has_media and not holder:
            return await self.commands.run("", name, holds="", **args)
        while len(tried) < MAX_PLACEMENT_TRIES:
            pod_id = holder or await self.directory.least_loaded_media(exclude=tried)
            holder = ""
            if pod_id is None:
                break
            try:
                return await self.commands.run(pod_id, name, holds="the new call", **args)
            except DomainError as exc:
                if exc.http_status != 503:  # PodUnavailable, or the pod drains (CallsUnavailable)
                    raise
                tried.append(pod_id)
        raise PodUnavailable("no media pod is available to take the call"
                             + (f" (tried {', '.join(tried)})" if tried else ""), reason="NO_MEDIA_POD")
