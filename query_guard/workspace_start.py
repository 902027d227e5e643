"""The workspace's start: put the welcome notebook into a new home, then run the server.

The hub starts every workspace container as
``python -m query_guard.workspace_start jupyterhub-singleuser [ARGS…]``
(``c.DockerSpawner.cmd`` in hub_config/jupyterhub_config.py). A home without
``welcome.ipynb`` gets the agreement's, fetched from the query service with the
workspace's own token (``SANDBOX_QUERY_URL``, ``SANDBOX_TOKEN``: the only door the
container has); a home that has one keeps it, since the researcher may have edited it.
Nothing here may keep a workspace from starting: a failed fetch is printed and the
server starts all the same. Only the standard library and the notebook client are
used: the image has nothing else of the platform.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx

from query_guard.client import Connection, QueryRefused, connect

WELCOME = "welcome.ipynb"
#: Seconds the fetch may take before the server starts without it (the hub waits 120 s).
FETCH_TIMEOUT_S = 20.0


def place_welcome(home: Path, connection: Connection) -> Path | None:
    """Write the agreement's welcome notebook to ``home`` unless one is there; return its
    path when written. Written to a hidden file first, so a half-written notebook never
    appears under its name."""
    target = home / WELCOME
    if target.exists():
        return None
    notebook = connection.welcome_notebook()
    partial = home / f".{WELCOME}.partial"
    partial.write_text(json.dumps(notebook, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> None:
    """Place the welcome notebook, then replace this process with ``argv``."""
    command = list(sys.argv[1:] if argv is None else argv)
    if not command:
        sys.exit("usage: python -m query_guard.workspace_start COMMAND [ARGS...]")
    try:
        with connect(timeout_s=FETCH_TIMEOUT_S, progress=None) as db:
            placed = place_welcome(Path.home(), db)
        if placed is not None:
            print(f"workspace start: wrote {placed}", file=sys.stderr)
    except (QueryRefused, httpx.HTTPError, OSError, ValueError) as exc:
        print(f"workspace start: no welcome notebook ({exc})", file=sys.stderr)
    sys.stderr.flush()
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
