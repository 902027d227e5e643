"""DockerSpawner with one addition no hook can make: after the container starts,
its default route is deleted (Docker before 26 adds one on internal networks)."""

from __future__ import annotations

import asyncio

from dockerspawner import DockerSpawner

from sandbox.workspaces.network import drop_default_route


class SandboxSpawner(DockerSpawner):
    async def start_object(self) -> None:
        await super().start_object()
        info = await self.docker("inspect_container", self.container_id)
        await asyncio.to_thread(drop_default_route, info["State"]["Pid"])
