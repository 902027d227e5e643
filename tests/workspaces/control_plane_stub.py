"""A tiny real HTTP server speaking the control plane's hub API (hub_config/control_plane.py).

The control plane is not under test in the hub tests: this stands in for its two
endpoints with fixed answers, and records the calls it received.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sandbox.workspaces.names import network_name, server_name

HUB_TOKEN = "hub-to-platform-test-token"
WORKSPACE_TOKEN = "workspace-token-for-the-agreement"


class ControlPlaneStub:
    """Accepts ``password`` for every user; authorizes only ``grants`` (user, agreement)."""

    def __init__(self, grants: set[tuple[str, str]]):
        stub = self
        self.grants = grants
        self.calls: list[tuple[str, dict]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.calls.append((self.path, body))
                if self.headers.get("Authorization") != f"Bearer {HUB_TOKEN}":
                    self._send(401, {"error": "bad service token", "rule": "auth"})
                elif self.path == "/api/hub/authenticate":
                    self._send(200, {"authenticated": body["password"] == "password"})
                elif granted := [
                    agreement
                    for user, agreement in stub.grants
                    if user == body["username"] and server_name(agreement) == body["server_name"]
                ]:
                    answer = {
                        "agreement_id": granted[0],
                        "token": WORKSPACE_TOKEN,
                        "expires_at": "2027-05-31T23:59:59+08:00",
                        "network_name": network_name(granted[0]),
                    }
                    self._send(200, answer)
                else:
                    self._send(403, {"error": "no active agreement", "rule": "R5", "article": None})

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
