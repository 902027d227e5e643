"""The resource limits of a workspace, read where the hub reads them, to be shown.

An applicant should know before applying what a workspace can do (memory, CPU, disk,
idle time), and a researcher sees the same on the agreement and in the welcome
notebook. The hub's settings (``hub_config.settings.HubSettings``) inherit these
fields, so the figures shown are the ones the spawner applies (``SANDBOX_HUB_MEMORY``,
``_CPUS``, ``_PIDS``, ``_IDLE_TIMEOUT``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic_settings import BaseSettings, SettingsConfigDict

from sandbox.workspaces.hardening import WorkspaceLimits


class WorkspaceLimitSettings(BaseSettings):
    """The limits the hub gives every workspace container, from the environment."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_HUB_", extra="ignore")

    memory: str = "2g"
    cpus: float = 1.0
    pids: int = 512
    #: Seconds without activity before a workspace is stopped.
    idle_timeout: int = 3600

    def container_limits(self) -> WorkspaceLimits:
        return WorkspaceLimits(memory=self.memory, cpus=self.cpus, pids=self.pids)


@dataclass(frozen=True)
class ShownLimits:
    """What a workspace may use, as pages and the welcome notebook state it."""

    memory: str
    cpus: float
    pids: int
    tmp_size: str
    idle_minutes: int
    query_timeout_s: float
    query_memory: str

    def rows(self) -> list[tuple[str, str, str]]:
        """(key, Chinese, English) lines, e.g. for a Markdown table or a definition list."""
        cpus = f"{self.cpus:g}"
        return [
            ("memory", f"内存 {self.memory}（无交换空间）", f"memory {self.memory} (no swap)"),
            ("cpus", f"CPU {cpus} 核", f"{cpus} CPU"),
            ("pids", f"进程数 {self.pids}", f"{self.pids} processes"),
            (
                "disk",
                f"临时目录 /tmp {self.tmp_size}；个人目录为本协议专用卷，不设固定容量，"
                "协议终止时销毁",
                f"/tmp {self.tmp_size}; the home folder is a volume of this agreement's own, "
                "with no fixed quota, destroyed when the agreement ends",
            ),
            (
                "idle",
                f"空闲 {self.idle_minutes} 分钟后自动停止（文件保留）",
                f"stopped after {self.idle_minutes} minutes idle (files are kept)",
            ),
            (
                "query",
                f"每次查询最长 {self.query_timeout_s:g} 秒；"
                f"本协议的查询引擎内存 {self.query_memory}",
                f"each query at most {self.query_timeout_s:g} s; the agreement's query engine "
                f"has {self.query_memory} of memory",
            ),
        ]


def shown_limits(settings: WorkspaceLimitSettings | None = None) -> ShownLimits:
    """The limits in force: the hub's settings, the container's fixed /tmp, the query engine's."""
    # Imported here: the hub imports this module for its settings and needs no query engine.
    from query_guard.engine import DEFAULT_MEMORY_LIMIT
    from query_guard.service.queries import QUERY_TIMEOUT_S

    s = settings or WorkspaceLimitSettings()
    return ShownLimits(
        memory=s.memory,
        cpus=s.cpus,
        pids=s.pids,
        tmp_size=WorkspaceLimits().tmp_size,
        idle_minutes=max(1, round(s.idle_timeout / 60)),
        query_timeout_s=QUERY_TIMEOUT_S,
        query_memory=DEFAULT_MEMORY_LIMIT,
    )
