"""Ingress under review, at the workspace's Jupyter server (issue 15, item 4): a real
JupyterLab started with the development workspace's own arguments refuses JupyterLab's
upload (a base64 ``type=file`` save, whole or in chunks) and a notebook carrying
attachments, naming the rule and article; ``/files/``, ``/view/`` and ``/nbconvert/`` are
closed and binary files are not read out; notebooks and text files written in the editor
keep saving. The same in a workspace container of the built image."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from traitlets.config import Config

from hub_config import dev_workspace
from hub_config.settings import HubSettings
from query_guard.workspace_ingress import ART_EGRESS, ART_INGRESS, DOWNLOAD, UPLOAD
from sandbox.workspaces import hardening, network
from sandbox.workspaces.imports import deliver_to_volume
from tests.waiting import eventually
from tests.workspaces.conftest import run_python, start_workspace
from tests.workspaces.hub import free_port

TOKEN = "ingress-test-token"
CSV = b"district,visits\nA,12\n"
NOTEBOOK = {
    "cells": [{"cell_type": "code", "source": "print(1)", "metadata": {}, "outputs": [],
               "execution_count": None}],
    "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
}  # fmt: skip


def upload(client: httpx.Client, name: str, data: bytes, **extra: object) -> httpx.Response:
    """The request JupyterLab's file browser makes for a dropped or picked file."""
    body = {"type": "file", "format": "base64", "name": name,
            "content": base64.b64encode(data).decode(), **extra}  # fmt: skip
    return client.put(f"/api/contents/{name}", json=body)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    """A JupyterLab server with exactly the development workspace's arguments (the hub's
    ``Spawner.args``), serving a fresh home on a loopback port."""
    config = Config()
    state = tmp_path_factory.mktemp("hub")
    dev_workspace.configure(config, HubSettings(state_dir=str(state)), control_plane=None)
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.token={TOKEN}",
               f"--ServerApp.root_dir={home}", *config.Spawner.args]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"token {TOKEN}"}
    )
    try:
        eventually(lambda: client.get("/api/status").status_code == 200, "jupyterlab", proc=proc)
        yield client, home
    finally:
        client.close()
        proc.terminate()
        proc.communicate(timeout=60)


def refused(answer: httpx.Response, rule: str, article: str) -> str:
    assert answer.status_code == 403, answer.text
    message = answer.json()["message"]
    assert f"[{rule}; {article}]" in message, message
    return message


def test_a_dropped_file_is_refused_at_the_server_whole_or_in_chunks(lab) -> None:
    client, home = lab
    message = refused(upload(client, "x.csv", CSV), UPLOAD, ART_INGRESS)
    assert "project/imports/" in message and "不能直接上传" in message
    refused(upload(client, "y.csv", CSV, chunk=1), UPLOAD, ART_INGRESS)
    chunked_text = {"type": "file", "format": "text", "content": "a,b\n", "chunk": 1}
    refused(client.put("/api/contents/z.csv", json=chunked_text), UPLOAD, ART_INGRESS)
    assert not any((home / n).exists() for n in ("x.csv", "y.csv", "z.csv"))


def test_a_notebook_with_attachments_is_refused_and_one_without_saves(lab) -> None:
    client, home = lab
    saved = client.put("/api/contents/analysis.ipynb", json={
        "type": "notebook", "format": "json", "content": NOTEBOOK})  # fmt: skip
    assert saved.status_code == 201, saved.text
    again = client.put("/api/contents/analysis.ipynb", json={
        "type": "notebook", "format": "json", "content": NOTEBOOK})  # fmt: skip
    assert again.status_code == 200, again.text  # saving over it keeps working
    cell = json.loads((home / "analysis.ipynb").read_text())["cells"][0]
    assert "".join(cell["source"]) == "print(1)"
    png = base64.b64encode(b"\x89PNG").decode()
    picture = {"cell_type": "markdown", "source": "![x](attachment:x.png)", "metadata": {},
               "attachments": {"x.png": {"image/png": png}}}  # fmt: skip
    carrying = {**NOTEBOOK, "cells": [*NOTEBOOK["cells"], picture]}
    answer = client.put("/api/contents/analysis.ipynb", json={
        "type": "notebook", "format": "json", "content": carrying})  # fmt: skip
    refused(answer, UPLOAD, ART_INGRESS)
    assert "attachments" not in (home / "analysis.ipynb").read_text()


def test_text_written_in_the_editor_saves_and_more_than_it_writes_is_refused(lab) -> None:
    client, home = lab
    text = {"type": "file", "format": "text", "content": "x = 1\n"}
    assert client.put("/api/contents/notes.py", json=text).status_code == 201
    assert (home / "notes.py").read_text() == "x = 1\n"
    shown = client.get("/api/contents/notes.py", params={"content": 1})
    assert shown.status_code == 200 and shown.json()["content"] == "x = 1\n"
    large = {**text, "content": "1,2\n" * (300 * 1024)}  # 1.2 MB pasted as "text"
    refused(client.put("/api/contents/big.csv", json=large), UPLOAD, ART_INGRESS)
    assert not (home / "big.csv").exists()


def test_download_and_export_routes_are_closed_and_binary_files_not_read_out(lab) -> None:
    client, home = lab
    (home / "x.csv").write_bytes(CSV)  # as a kernel would write it
    (home / "figure.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    routes = ("/files/x.csv", "/files/x.csv?download=1", "/view/x.csv",
              "/nbconvert/html/analysis.ipynb?download=true",
              "/nbconvert/script/a.ipynb")  # fmt: skip
    for route in routes:
        answer = client.get(route)
        assert answer.status_code == 403, route
        assert answer.json()["rule"] == DOWNLOAD and answer.json()["article"] == ART_EGRESS
    refused(client.get("/api/contents/figure.png"), DOWNLOAD, ART_EGRESS)
    refused(client.get("/api/contents/x.csv?format=base64"), DOWNLOAD, ART_EGRESS)
    listing = client.get("/api/contents/figure.png", params={"content": 0})
    assert listing.status_code == 200  # the file browser still lists it
    # Copying a binary file would read it out and save it again: refused as well.
    copied = client.post("/api/contents/", json={"copy_from": "figure.png"})
    assert copied.status_code == 403, copied.text


# --- The same server in a workspace container of the built image -------------------------

#: A server config file a researcher could leave in her home: it runs, and undoes the refusals.
HOME_CONFIG = """
open("/tmp/home-config-ran", "w").close()
c.ServerApp.contents_manager_class = (
    "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"
)
"""

PROBE = """
import base64, json, sys, time, urllib.request, urllib.error
base, token = "http://127.0.0.1:8888", %r
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method,
        headers={"Authorization": "token " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
for _ in range(300):
    try:
        if call("GET", "/api/status")[0] == 200: break
    except OSError: time.sleep(0.2)
out = {
  "upload": call("PUT", "/api/contents/x.csv", {"type": "file", "format": "base64",
                 "content": base64.b64encode(b"a,b\\n1,2\\n").decode()}),
  "notebook": call("PUT", "/api/contents/n.ipynb", {"type": "notebook", "format": "json",
                   "content": json.loads(%r)}),
  "files": call("GET", "/files/project/imports/visits.csv"),
  "import": call("GET", "/api/contents/project/imports/visits.csv?content=1"),
  "home_config_ran": __import__("os").path.exists("/tmp/home-config-ran"),
}
print(json.dumps(out))
"""


@pytest.mark.docker
@pytest.mark.xdist_group("host-firewall")
def test_the_workspace_image_refuses_uploads_and_shows_a_delivered_import(
    docker_client, workspace_image, agreement
) -> None:
    net = network.provision(docker_client, agreement, [])
    deliver_to_volume(docker_client, workspace_image, agreement, "visits.csv", CSV)
    server = ["jupyter", "lab", "--no-browser", "--ip=127.0.0.1", "--port=8888",
              f"--ServerApp.token={TOKEN}", *hardening.SINGLEUSER_ARGS]  # fmt: skip
    # The researcher leaves config files in her home that would run in the server and
    # put the ordinary contents manager back: the server must not read them.
    plant = ('for d in "$HOME/.jupyter" "$HOME/.local/etc/jupyter"; do mkdir -p "$d" && '
             'printf %s "$0" > "$d/jupyter_server_config.py"; done; exec "$@"')  # fmt: skip
    command = ["sh", "-c", plant, HOME_CONFIG, *server]
    container = start_workspace(docker_client, workspace_image, net, "alice", command)
    code, out = run_python(docker_client, container, PROBE % (TOKEN, json.dumps(NOTEBOOK)))
    assert code == 0, out
    seen = json.loads(out.strip().splitlines()[-1])
    status, body = seen["upload"]
    assert status == 403 and f"[{UPLOAD}; {ART_INGRESS}]" in body["message"]
    assert seen["notebook"][0] == 201
    assert seen["files"][0] == 403 and seen["files"][1]["rule"] == DOWNLOAD
    status, model = seen["import"]  # the approved import, in the agreement's project folder
    assert status == 200 and model["content"] == CSV.decode() and model["writable"] is True
    assert seen["home_config_ran"] is False
