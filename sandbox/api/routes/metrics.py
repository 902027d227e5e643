"""``GET /metrics`` for Prometheus, on the platform and on every query worker.

Scraping needs ``Authorization: Bearer $SANDBOX_METRICS_TOKEN``; without a token configured
only loopback may scrape. A query worker listens on an agreement's network, where
workspaces could otherwise read how busy their neighbours are.
"""

from __future__ import annotations

import secrets
from ipaddress import ip_address

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from sandbox.errors import PermissionDenied
from sandbox.http import metrics
from sandbox.http.deps import bearer_token

RULE = "metrics-token"


def _loopback(host: str) -> bool:
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def check_scraper(request: Request) -> None:
    """Let the scraper in: the configured bearer token, or loopback when none is set."""
    expected = request.app.state.settings.metrics_token
    if expected:
        presented = bearer_token(request) or ""
        if secrets.compare_digest(presented.encode(), expected.encode()):
            return
        raise PermissionDenied(
            "/metrics needs the bearer token configured in SANDBOX_METRICS_TOKEN", rule=RULE
        )
    peer = request.client.host if request.client else ""
    if not _loopback(peer):
        raise PermissionDenied(
            "/metrics answers loopback only while SANDBOX_METRICS_TOKEN is not set", rule=RULE
        )


def install_metrics(app: FastAPI, *collectors: object) -> None:
    """Count this process's committed work and serve it, with ``collectors``' gauges, at
    ``/metrics`` (outside the OpenAPI schema)."""
    metrics.install_counting()

    @app.get("/metrics", include_in_schema=False)
    def scrape(request: Request) -> Response:
        check_scraper(request)
        return Response(metrics.exposition(*collectors), media_type=CONTENT_TYPE_LATEST)
