"""The researcher's link to the workspace names the hub server JupyterHub will accept."""

from sandbox.workspaces.availability import workspace_url


def test_link_uses_the_lower_case_server_name():
    url = workspace_url("http://127.0.0.1:8081/", "alice", "AGR-2026-0001")
    assert url == "http://127.0.0.1:8081/hub/spawn/alice/agr-2026-0001"
