"""The researcher's link to the workspace names the hub server JupyterHub will accept."""

from sandbox.workspaces.availability import workspace_url


def test_link_uses_the_lower_case_server_name():
    url = workspace_url("http://127.0.0.1:8081/", "alice", "AGR-2026-0001")
    assert url == "http://127.0.0.1:8081/hub/spawn/alice/agr-2026-0001"


def test_no_link_while_the_hub_does_not_answer_only_what_the_operator_must_do():
    from sandbox.settings import Settings
    from sandbox.workspaces.availability import hub_answers, workspace_link
    from tests.workspaces.hub import free_port

    settings = Settings(environment="test", hub_url=f"http://127.0.0.1:{free_port()}")
    assert not hub_answers(settings.hub_url)  # nothing listens there
    down = workspace_link(settings, False, "alice", "AGR-2026-0001")
    assert down.url is None and "must start JupyterHub" in down.why_not[1]
    told = settings.model_copy(update={"workspaces_missing": "no Docker engine answers"})
    missing = workspace_link(told, False, "alice", "AGR-2026-0001")
    assert missing.url is None and "no Docker engine answers" in missing.why_not[0]
    assert workspace_link(settings, True, "alice", "AGR-2026-0001").url
