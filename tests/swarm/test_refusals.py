"""Swarm settings that would run a service less hardened than the rules require are refused
before anything starts, each naming its rule: a worker run from the host's checkout, as
root or without a certificate where workspaces reach it over TLS, and a workspace image
with a setuid file (a service cannot set no-new-privileges)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from hub_config.swarm import refuse_setuid_image
from sandbox.provisioning.swarm import SwarmRefused, SwarmSettings, worker_plan
from sandbox.settings import Settings
from sandbox.tls import development
from sandbox.workspaces.swarm_services import worker_service_name

AGREEMENT = "AGR-SWARM-REFUSALS"
NAME = worker_service_name(AGREEMENT)


def _settings(tmp_path: Path, environment: str, url: str = "http://127.0.0.1:8000/qs") -> Settings:
    return Settings(
        environment=environment,
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'platform.db'}",
        query_service_url=url,
        hub_api_token="hub-token",
        secret_key="not-the-development-secret",
    )


def _refused(settings: Settings, **swarm: object) -> str:
    with pytest.raises(SwarmRefused) as refused:
        worker_plan(settings, SwarmSettings(**swarm), AGREEMENT, "node-1")
    assert refused.value.rule in str(refused.value)  # the message names its rule
    return refused.value.rule


def test_production_refuses_a_worker_from_the_host_as_root_or_without_its_certificate(
    tmp_path: Path,
) -> None:
    production = _settings(tmp_path, "production")
    tls = tmp_path / "tls"
    assert _refused(production, worker_from_host=True) == "swarm-worker-from-host"
    assert _refused(production, worker_tls_dir=tls) == "swarm-worker-tls"  # none issued
    issued = development.server_certificate(tls, NAME, [NAME])
    assert _refused(production, worker_tls_dir=tls, worker_user="0:0") == "swarm-worker-root"
    owner = SwarmSettings(worker_tls_dir=tls, worker_user="1000:1000")  # who owns the files
    plan = worker_plan(production, owner, AGREEMENT, "node-1")
    assert plan.tls == (str(issued.cert.resolve()), str(issued.key.resolve()))
    assert {plan.read_only[path] for path in plan.tls} == set(plan.tls)  # mounted read-only


def test_an_https_query_service_needs_the_certificate_outside_production_too(
    tmp_path: Path,
) -> None:
    https = _settings(tmp_path, "test", "https://query-worker:8000/qs")
    assert _refused(https) == "swarm-worker-tls"
    plain = worker_plan(_settings(tmp_path, "test"), SwarmSettings(), AGREEMENT, "node-1")
    assert plain.tls is None


@pytest.mark.docker
def test_the_hub_refuses_a_workspace_image_with_a_setuid_file(docker_client, workspace_image):
    refuse_setuid_image(docker_client, workspace_image)  # images/build.sh strips them
    container = docker_client.containers.run(
        workspace_image, ["chmod", "u+s", "/usr/bin/env"], user="0", network_mode="none",
        detach=True,
    )  # fmt: skip
    image = f"sandbox-test-setuid:{uuid.uuid4().hex[:8]}"
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0
        container.commit(*image.split(":"))
        with pytest.raises(SwarmRefused, match="/usr/bin/env") as refused:
            refuse_setuid_image(docker_client, image)
        assert refused.value.rule == "swarm-setuid"
    finally:
        container.remove(force=True)
        docker_client.images.remove(image, force=True)
