"""The development workspace: a local JupyterLab process per researcher and agreement, so
the whole path can be tried with ``sandbox run`` on a machine without Docker.

It is not isolated: the kernel runs as the platform's own user and could open any file the
platform keeps, past the guard. So the hub refuses it in production, ``sandbox run``
starts it only while every dataset on the platform is marked demo data, and the hub's,
the platform's and JupyterLab's pages say so. Everything else is the Docker workspace's:
the control plane authorizes each spawn, and the kernel reaches its agreement's query
worker with the agreement-bound token the platform hands out, through the same notebook
client.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from functools import partial
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner
from traitlets import Unicode, default

from hub_config import hooks
from hub_config.control_plane import ControlPlane
from hub_config.settings import HubSettings
from sandbox.errors import SandboxError
from sandbox.settings import get_settings
from sandbox.workspaces.availability import NOT_ISOLATED, NOT_ISOLATED_DETAIL
from sandbox.workspaces.hardening import SINGLEUSER_ARGS

#: The environment's own commands: the hub passes no PATH of its own to a workspace.
BIN = Path(sys.executable).parent
#: The agreement's shared project folder, as it appears in each home.
PROJECT = "project"
#: JupyterLab's own stylesheet hook (``LabApp.custom_css``): ``~/.jupyter/custom/custom.css``.
LAB_CSS = Path(".jupyter") / "custom" / "custom.css"


def not_isolated_css() -> str:
    """A label fixed to every JupyterLab page of a development workspace, in both languages
    (JupyterLab's ``custom.css``; it takes no clicks, so nothing under it is hidden)."""
    text = f"{NOT_ISOLATED[0]} · {NOT_ISOLATED[1]}"
    return (
        "/* Written by the development workspace at every start (hub_config/dev_workspace.py). */\n"
        "body::before {\n"
        f"  content: {json.dumps(text, ensure_ascii=False)};\n"
        "  position: fixed; top: 0; right: 0; z-index: 100000; pointer-events: none;\n"
        "  padding: 2px 10px; font: bold 12px sans-serif;\n"
        "  color: #fff; background: #b3261e;\n"
        "}\n"
    )


class DevelopmentWorkspaceRefused(SandboxError):
    """A development workspace was asked for where data must be isolated."""

    rule = "dev-workspace-production"


def refuse_in_production(environment: str) -> None:
    """Raise unless ``environment`` may run workspaces that are not isolated."""
    if environment == "production":
        raise DevelopmentWorkspaceRefused(
            "the development workspace (a local JupyterLab, not isolated) is refused when "
            "SANDBOX_ENVIRONMENT=production: run workspaces in Docker "
            "(SANDBOX_HUB_SPAWNER=docker, images/build.sh)"
        )


class DevWorkspaceSpawner(SimpleLocalProcessSpawner):
    """A home per researcher and agreement, with the agreement's project folder shared by
    its researchers as ``project`` in each home (as the Docker workspace mounts its project
    volume). Removing the named server removes its home, and the project folder with the
    agreement's last home, as an ended agreement's volumes are destroyed (R16)."""

    homes = Unicode(help="The directory holding one home per researcher and agreement.").tag(
        config=True
    )
    projects = Unicode(help="The directory holding one project folder per agreement.").tag(
        config=True
    )

    @default("home_dir")
    def _default_home_dir(self) -> str:
        return str(Path(self.homes) / self.user.name / self.name)

    @property
    def project_dir(self) -> Path:
        return Path(self.projects) / self.name

    def prepare_home(self) -> Path:
        """The home with JupyterLab's label (written anew each start) and the link to the
        agreement's project folder; returns the home."""
        home = Path(self.home_dir)
        css = home / LAB_CSS
        css.parent.mkdir(parents=True, exist_ok=True)
        css.write_text(not_isolated_css(), encoding="utf-8")
        self.project_dir.mkdir(parents=True, exist_ok=True)
        link = home / PROJECT
        if not link.is_symlink():
            link.symlink_to(self.project_dir, target_is_directory=True)
        return home

    async def start(self):  # type: ignore[no-untyped-def]
        refuse_in_production(get_settings().environment)
        self.prepare_home()
        return await super().start()

    def delete_forever(self) -> None:
        shutil.rmtree(self.home_dir, ignore_errors=True)
        last = not any(Path(self.homes).glob(f"*/{self.name}"))  # no researcher's home left
        if self.name and last:  # (the unnamed server, refused anyway, has no project)
            shutil.rmtree(self.project_dir, ignore_errors=True)


def _worker_url(workers_file: str, agreement_id: str) -> str | None:
    """The agreement's worker in ``sandbox run``'s list, read anew (it grows as the operator
    provisions agreements)."""
    try:
        workers = json.loads(Path(workers_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return workers.get(agreement_id)


async def pre_spawn(
    spawner, *, control_plane: ControlPlane, workers_file: str, wait: float
) -> None:
    """Refuse unless the control plane authorizes the spawn and the agreement's query
    worker answers (within ``wait`` seconds); then hand the workspace its agreement,
    worker and token."""
    grant = await hooks.authorize(spawner, control_plane)
    ca = get_settings().tls_ca  # the workers' CA, read in place: nothing is isolated here
    ca = str(ca) if ca else None
    url = await hooks.wait_for_query_service(
        lambda: _worker_url(workers_file, grant.agreement_id), wait, grant.agreement_id, ca
    )
    spawner.environment = {**spawner.environment, **hooks.workspace_environment(grant, url, ca)}


def configure(c, hub: HubSettings, control_plane: ControlPlane) -> None:  # type: ignore[no-untyped-def]
    """The hub's settings for development workspaces (refused in production)."""
    refuse_in_production(get_settings().environment)
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{hub.api_port}"  # nothing reaches in
    c.JupyterHub.spawner_class = DevWorkspaceSpawner
    c.JupyterHub.template_vars = {
        "announcement": f"{NOT_ISOLATED[0]} · {NOT_ISOLATED[1]}: {NOT_ISOLATED_DETAIL[1]}"
    }
    c.DevWorkspaceSpawner.homes = str(Path(hub.state_dir).resolve() / "dev-homes")
    c.DevWorkspaceSpawner.projects = str(Path(hub.state_dir).resolve() / "dev-projects")
    c.Spawner.cmd = [
        sys.executable,
        "-m",
        "query_guard.workspace_start",
        str(BIN / "jupyterhub-singleuser"),
    ]
    c.Spawner.environment = {"PATH": f"{BIN}{os.pathsep}{os.defpath}"}
    # Every JupyterLab page loads ~/.jupyter/custom/custom.css: the "not isolated" label.
    c.Spawner.args = [*SINGLEUSER_ARGS, "--LabApp.custom_css=True"]
    if os.geteuid() == 0:  # the platform's own user, root on a bare machine or in CI
        c.Spawner.args = [*c.Spawner.args, "--allow-root"]
    c.Spawner.pre_spawn_hook = partial(
        pre_spawn,
        control_plane=control_plane,
        workers_file=hub.dev_workers_file,
        wait=hub.query_service_wait,
    )
