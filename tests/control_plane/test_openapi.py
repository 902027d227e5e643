"""The API documents itself: every resource of the control plane is in the OpenAPI schema."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_openapi_covers_the_control_plane(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/api/auth/token",
        "/api/catalog",
        "/api/catalog/{name}/objections",
        "/api/catalog/{name}/complaints",
        "/api/applications/{application_id}/submit",
        "/api/applications/{application_id}/approve",
        "/api/agreements/{agreement_id}/yaml",
        "/api/agreements/{agreement_id}/{action}",
        "/api/agreements/{agreement_id}/usage-reports",
        "/api/audit/verify",
        "/api/audit/checkpoints",
        "/api/filings",
        "/api/workspaces/{agreement_id}/provision",
        "/api/exports/{request_id}/{action}",
        "/api/hub/spawn-authorization",
        "/qs/query",
    ):
        assert path in paths, path
