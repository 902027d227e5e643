"""A researcher's side of Jupyter: the hub's login form, the REST API and a kernel over
its websocket (the Jupyter messaging protocol, JSON frames), as a browser would use them."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field

import httpx
from websockets.sync.client import connect


def log_in(hub_url: str, username: str, password: str) -> httpx.Client:
    """Sign in through the hub's login form; return a client holding the session cookies.

    The hub hands the password to the platform (``ControlPlaneAuthenticator``)."""
    client = httpx.Client(base_url=hub_url, timeout=60)
    form = client.get("/hub/login")
    form.raise_for_status()
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    assert xsrf, "the hub's login form has no _xsrf field"
    answer = client.post(
        "/hub/login",
        data={"username": username, "password": password, "_xsrf": xsrf.group(1)},
    )
    assert answer.status_code == 302, f"login refused: {answer.status_code} {answer.text[:300]}"
    return client


def api_token(session: httpx.Client, username: str) -> str:
    """A hub API token for the signed-in user, requested with her own session (as the
    hub's token page does)."""
    answer = session.post(
        f"/hub/api/users/{username}/tokens",
        json={"note": "end-to-end test"},
        headers={"X-XSRFToken": session.cookies["_xsrf"]},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


@dataclass
class Execution:
    """What one cell printed, and the exception it raised if any."""

    stdout: str = ""
    error: str | None = None
    messages: list[str] = field(default_factory=list)


class Kernel:
    """A kernel started through the single-user server's REST API, driven over its websocket."""

    def __init__(self, server_url: str, token: str):
        headers = {"Authorization": f"token {token}"}
        self._http = httpx.Client(base_url=server_url, headers=headers, timeout=60)
        started = self._http.post("/api/kernels", json={"name": "python3"})
        assert started.status_code == 201, started.text
        self.id = started.json()["id"]
        ws_url = server_url.replace("http://", "ws://", 1) + f"/api/kernels/{self.id}/channels"
        self._ws = connect(ws_url, additional_headers=headers, open_timeout=60)
        self._session = uuid.uuid4().hex

    def _send(self, msg_type: str, content: dict) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "researcher",
            "session": self._session,
            "version": "5.3",
        }
        message = {
            "header": header,
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
            "buffers": [],
        }
        self._ws.send(json.dumps(message))
        return msg_id

    def run(self, code: str, *, limit: float = 180) -> Execution:
        """Execute ``code``; collect stdout and the error until the kernel is idle again."""
        msg_id = self._send(
            "execute_request",
            {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
        )
        result = Execution()
        while True:
            message = json.loads(self._ws.recv(timeout=limit))
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            result.messages.append(kind)
            if kind == "stream" and content["name"] == "stdout":
                result.stdout += content["text"]
            elif kind == "error":
                result.error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                return result

    def close(self) -> None:
        self._ws.close()
        self._http.delete(f"/api/kernels/{self.id}")
        self._http.close()
