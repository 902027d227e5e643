"""What an agreement's running workspaces use, for the operator's list (issue 5, item 3).

Operators see resource use, never the contents of a workspace (R16; Rizhao Art.31):
the figures come from the engine's statistics, not from inside the container.
"""

from __future__ import annotations

from typing import Any

import docker

from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_RESEARCHER, LABEL_ROLE

MIB = 2**20


def workspace_usage(client: docker.DockerClient, agreement_id: str) -> list[dict[str, Any]]:
    """One entry per running workspace container of the agreement (on Swarm its query
    worker's container carries the agreement's label too, and is not a workspace)."""
    out = []
    labels = [f"{LABEL_AGREEMENT}={agreement_id}", f"{LABEL_ROLE}=workspace"]
    containers = client.containers.list(filters={"label": labels})
    for container in containers:
        stats = container.stats(stream=False)
        memory = stats.get("memory_stats", {})
        cpu = stats.get("cpu_stats", {}).get("cpu_usage", {})
        out.append(
            {
                "researcher": container.labels.get(LABEL_RESEARCHER),
                "status": container.status,
                "memory_mib": round(memory.get("usage", 0) / MIB, 1),
                "memory_limit_mib": round(memory.get("limit", 0) / MIB, 1),
                "processes": stats.get("pids_stats", {}).get("current"),
                "cpu_seconds": round(cpu.get("total_usage", 0) / 1e9, 2),
            }
        )
    return out
