"""Whether a researcher's workspace link can open, and what the page says when it cannot.

A link to the hub is shown only while the hub answers: a researcher who follows it must
reach a workspace, not a closed port. Otherwise the page says, in both languages, why no
workspace opens and what the operator must do. The development workspace (``sandbox run``
without Docker) is not isolated, and every page says so.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from sandbox.settings import Settings
from sandbox.workspaces.names import server_name

#: Seconds the page waits for the hub; a loopback hub answers in milliseconds.
HUB_PROBE_TIMEOUT_S = 1.0

#: The label on every page while workspaces are development workspaces (Chinese, English).
NOT_ISOLATED = ("开发工作空间，未隔离", "development workspace, not isolated")
NOT_ISOLATED_DETAIL = (
    "工作空间是本机上的 JupyterLab 进程，没有容器隔离，只提供演示数据；生产环境不可用。",
    "Workspaces are local JupyterLab processes without container isolation and serve demo "
    "data only; refused in production.",
)


@dataclass(frozen=True)
class WorkspaceLink:
    """The researcher's way into a workspace: a URL, or why there is none (zh, en)."""

    url: str | None
    why_not: tuple[str, str] = ("", "")


def workspace_url(hub_url: str, username: str, agreement_id: str) -> str:
    """One named JupyterHub server per (researcher, agreement); JupyterHub names servers
    in lower case only (:func:`sandbox.workspaces.names.server_name`)."""
    return f"{hub_url.rstrip('/')}/hub/spawn/{username}/{server_name(agreement_id)}"


def hub_answers(hub_url: str, ca: Path | None = None) -> bool:
    """Whether JupyterHub answers its public API root at ``hub_url`` now (an HTTPS hub
    verified against ``ca``, else the system's authorities)."""
    verify = ssl.create_default_context(cafile=str(ca)) if ca else True
    try:
        url = f"{hub_url.rstrip('/')}/hub/api/"
        response = httpx.get(url, timeout=HUB_PROBE_TIMEOUT_S, verify=verify)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def workspace_link(
    settings: Settings, hub_up: bool, username: str, agreement_id: str
) -> WorkspaceLink:
    """The link while the hub answers (``hub_up``); otherwise what the operator must do."""
    if hub_up:
        return WorkspaceLink(workspace_url(settings.hub_url, username, agreement_id))
    if settings.workspaces_missing:
        return WorkspaceLink(
            None,
            (
                f"工作空间未启动：{settings.workspaces_missing}。请联系平台运维。",
                f"Workspaces are not running: {settings.workspaces_missing}. "
                "Ask the platform operator.",
            ),
        )
    return WorkspaceLink(
        None,
        (
            f"工作空间服务（{settings.hub_url}）没有响应：平台运维需要启动 JupyterHub"
            "（开发环境中 `make run` 会自动启动）。",
            f"The workspace hub ({settings.hub_url}) does not answer: the platform operator "
            "must start JupyterHub (in development, `make run` starts it).",
        ),
    )
