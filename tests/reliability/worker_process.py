"""A real ``sandbox query-worker`` process for the reliability tests, on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.query_service.conftest import World
from tests.workspaces.hub import free_port

SANDBOX = str(Path(sys.executable).with_name("sandbox"))


class Worker:
    """One worker process serving one agreement; ``url`` is its base address."""

    def __init__(self, world: World, agreement: str, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "SANDBOX_DATABASE_URL": world.settings.db_url,
            "SANDBOX_DATA_DIR": str(world.settings.data_dir),
            "SANDBOX_ENVIRONMENT": "test",
            **(env or {}),
        }
        command = [SANDBOX, "query-worker", "--agreement", agreement, "--port", str(self.port)]
        # A file, not a pipe: a worker logging many errors must never block on a full pipe.
        self.log = world.settings.data_dir / f"worker-{self.port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, env=environment, stdout=subprocess.DEVNULL, stderr=log
            )

    def wait_until_up(self) -> None:
        """Return once the worker answers HTTP; fail when it ends first."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the worker ended early: {self.errors()}")
            try:
                httpx.get(f"{self.url}/qs/agreement", timeout=5)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the query worker never answered")

    def errors(self) -> str:
        """The end of what the worker wrote to stderr."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


@contextmanager
def running_worker(
    world: World, agreement: str, env: dict[str, str] | None = None
) -> Iterator[Worker]:
    """A worker that answers, stopped (SIGTERM) afterwards."""
    worker = Worker(world, agreement, env)
    try:
        worker.wait_until_up()
        yield worker
    finally:
        worker.stop()
