"""Delivering an approved import into the agreement's project folder, ``project/imports/``.

The only way a file enters a workspace from outside (the Jupyter server refuses uploads,
query_guard/workspace_ingress.py). The project folder is shared by the agreement's
researchers and ends with the agreement (R16), so an import does too.

* Docker: the agreement's project volume is mounted into a container of the workspace
  image that never starts (no network, no capabilities, read-only root, the workspace's
  user), and the file is copied in through Docker's archive API, owned by that user; the
  volume is created if no workspace has made it yet, as the hub would.
* Development workspace: the agreement's project folder under the hub's state directory
  (``<data_dir>/hub/dev-projects/<server name>``, hub_config/dev_workspace.py).
"""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sandbox.workspaces.hardening import PROJECT_DIR, WORKSPACE_USER
from sandbox.workspaces.names import LABEL_AGREEMENT, LABEL_ROLE, server_name

if TYPE_CHECKING:
    import docker

#: The folder inside the project folder that approved imports arrive in.
IMPORTS_DIR = "imports"
#: The development workspaces' project folders, inside the hub's state directory.
DEV_PROJECTS = "dev-projects"


def workspace_path(name: str) -> str:
    """Where an import named ``name`` appears, relative to the researcher's home."""
    return f"{Path(PROJECT_DIR).name}/{IMPORTS_DIR}/{name}"


def deliver_to_folder(projects: Path, agreement_id: str, name: str, data: bytes) -> Path:
    """Write the file into the agreement's development project folder under ``projects``;
    written to a hidden name first, so a half-written file never appears under its name."""
    folder = projects / server_name(agreement_id) / IMPORTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{name}.partial"
    partial.write_bytes(data)
    target = folder / name
    partial.replace(target)
    return target


def _archive(name: str, data: bytes) -> bytes:
    uid, gid = (int(part) for part in WORKSPACE_USER.split(":"))
    now = time.time()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo(IMPORTS_DIR)
        folder.type, folder.mode, folder.uid, folder.gid, folder.mtime = (
            tarfile.DIRTYPE, 0o755, uid, gid, now
        )  # fmt: skip
        tar.addfile(folder)
        member = tarfile.TarInfo(f"{IMPORTS_DIR}/{name}")
        member.size, member.mode, member.uid, member.gid, member.mtime = (
            len(data), 0o644, uid, gid, now
        )  # fmt: skip
        tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def deliver_to_volume(
    client: docker.DockerClient, image: str, agreement_id: str, name: str, data: bytes
) -> None:
    """Copy the file into the agreement's project volume through a container that never
    runs (see the module's docstring)."""
    from sandbox.workspaces.network import ensure_project_volume

    volume = ensure_project_volume(client, agreement_id)
    host_config = client.api.create_host_config(
        binds={volume: {"bind": PROJECT_DIR, "mode": "rw"}},
        network_mode="none",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges:true"],
    )
    created = client.api.create_container(
        image,
        ["true"],
        user=WORKSPACE_USER,
        network_disabled=True,
        host_config=host_config,
        labels={LABEL_AGREEMENT: agreement_id, LABEL_ROLE: "workspace-import"},
    )
    try:
        client.api.put_archive(created["Id"], PROJECT_DIR, _archive(name, data))
    finally:
        client.api.remove_container(created["Id"], force=True)
