"""Serve an ASGI app with a real uvicorn in a background thread (the platform, a query worker)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI


class Served:
    """``app`` listening on ``host:port`` until :meth:`stop`; ``url`` is its base address."""

    def __init__(self, app: FastAPI, host: str, port: int):
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
