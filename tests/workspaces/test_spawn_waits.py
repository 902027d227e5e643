"""A spawn waits for its agreement's query service (``SANDBOX_HUB_QUERY_SERVICE_WAIT``, set
by ``sandbox run``, which starts a newly provisioned agreement's worker within seconds):
it goes on once a real server answers, even one whose address is known only later, and is
refused with the reason when none does; and the development workspace's label for
JupyterLab's pages."""

from __future__ import annotations

import asyncio

import pytest
from tornado import web

from hub_config.dev_workspace import not_isolated_css
from hub_config.hooks import wait_for_query_service
from sandbox.workspaces.availability import NOT_ISOLATED
from tests.workspaces.conftest import serve_http
from tests.workspaces.hub import free_port


def test_the_spawn_goes_on_once_the_query_service_answers() -> None:
    server = serve_http("127.0.0.1")
    url = f"http://127.0.0.1:{server.server_address[1]}/qs"
    try:
        asked: list[int] = []

        def later() -> str | None:  # not in `sandbox run`'s list on the first two looks
            asked.append(1)
            return url if len(asked) > 2 else None

        assert asyncio.run(wait_for_query_service(later, 60, "AGR-1")) == url
        assert len(asked) == 3
    finally:
        server.shutdown()


def test_the_spawn_is_refused_with_the_reason_when_none_answers() -> None:
    url = f"http://127.0.0.1:{free_port()}/qs"  # nothing listens there
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(wait_for_query_service(lambda: url, 1, "AGR-1"))
    assert refused.value.status_code == 503
    assert "query service of agreement AGR-1 does not answer at" in refused.value.log_message
    with pytest.raises(web.HTTPError) as unknown:
        asyncio.run(wait_for_query_service(lambda: None, 0, "AGR-2"))
    assert "AGR-2 does not answer: the operator must start its query worker" in str(
        unknown.value.log_message
    )


def test_jupyterlab_pages_of_the_development_workspace_carry_the_label() -> None:
    css = not_isolated_css()
    assert css.startswith("/*") and "body::before" in css
    assert f'"{NOT_ISOLATED[0]} · {NOT_ISOLATED[1]}"' in css
