"""The real ``sandbox query-worker`` as the agreement's Swarm service: provisioning with
``SANDBOX_HUB_BACKEND=swarm`` starts it (``worker_plan``, ``ensure_worker``) with the
certificate the operator issued for its service name; a workspace service on the
agreement's overlay sends it real queries through the notebook client, verifying the
certificate against the platform's CA, and gets guarded answers; without that CA, or in
plain HTTP, it gets none; once its token is revoked it is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from hub_config.swarm import worker_url
from sandbox.accounts.models import User
from sandbox.accounts.service import issue_workspace_token, revoke_token
from sandbox.agreements.service import get_agreement, import_agreement
from sandbox.db.base import transaction
from sandbox.provisioning.service import provision
from sandbox.settings import Settings
from sandbox.tls import development
from sandbox.workspaces import hardening, swarm_network, swarm_services
from tests.control_plane.conftest import catalog_dir, factory, users  # noqa: F401
from tests.control_plane.helpers import agreement, publish_all
from tests.swarm.conftest import end, running_task, start_workspace_service
from tests.waiting import eventually
from tests.workspaces.conftest import new_agreement_id, run_python
from tests.workspaces.hub import free_port

pytestmark = [pytest.mark.docker, pytest.mark.xdist_group("host-firewall")]

#: Run inside the workspace: the client as the hub configures it (URL, token, CA from the
#: environment), an aggregate and rows of people, then without the CA, then in plain HTTP;
#: one JSON line of outcomes.
INSIDE = """
import json, os
from query_guard.client import QueryRefused, connect
out = {}
try:
    with connect(progress=None) as db:
        out["agreement"] = db.scope()["id"]
        out["rows"] = len(db.sql("SELECT district, count(*) AS n FROM clinic_visits "
                                 "GROUP BY district"))
        try:
            db.sql("SELECT patient_id FROM clinic_visits")
        except QueryRefused as refused:
            out["rows_of_people"] = refused.rule
except QueryRefused as refused:
    out["refused"] = refused.rule
except Exception as exc:  # the worker is still starting: its port does not answer yet
    out["first"] = f"{type(exc).__name__}: {exc}"
ca = os.environ.pop("SANDBOX_QUERY_CA")
for kind, url in (("without_ca", os.environ["SANDBOX_QUERY_URL"]),
                  ("plain", os.environ["SANDBOX_QUERY_URL"].replace("https:", "http:"))):
    try:
        with connect(url, progress=None) as db:
            db.scope()
        out[kind] = "answered"
    except Exception as exc:
        out[kind] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The platform on Swarm with TLS between workspaces and workers; SQLite in a folder of
    its own (the worker mounts the folder)."""
    (tmp_path / "db").mkdir()
    return Settings(
        environment="test",
        data_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'db' / 'platform.db'}",
        hub_backend="swarm",
        hub_api_token="swarm-test-hub-token",
        hub_api_port=free_port(),
        query_service_url="https://query-worker:8000/qs",
    )


@dataclass
class Provisioned:
    agreement_id: str
    nets: swarm_network.SwarmNetworks
    token: str
    ca: Path


@pytest.fixture
def provisioned(
    swarm_client,
    workspace_image: str,
    settings: Settings,
    factory: sessionmaker[Session],  # noqa: F811
    users: dict[str, User],  # noqa: F811
    catalog_dir: Path,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Provisioned]:
    """One agreement provisioned by the platform's own code: its networks, its database
    and its real worker service, with the certificate the operator issued for its name."""
    agreement_id = new_agreement_id()
    name = swarm_services.worker_service_name(agreement_id)
    issued = development.server_certificate(tmp_path / "tls", name, [name])
    monkeypatch.setenv("SANDBOX_HUB_SWARM_WORKER_FROM_HOST", "true")
    monkeypatch.setenv("SANDBOX_HUB_SWARM_WORKER_IMAGE", workspace_image)
    monkeypatch.setenv("SANDBOX_HUB_SWARM_WORKER_TLS_DIR", str(tmp_path / "tls"))
    publish_all(factory, users, settings, catalog_dir)
    try:
        with transaction(factory) as session:
            import_agreement(
                session=session, actor=users["health"], agreement=agreement(id=agreement_id)
            )
            provision(
                session=session, settings=settings, actor=users["ops"], agreement_id=agreement_id
            )
            rec = get_agreement(session, agreement_id)
            token, _ = issue_workspace_token(session, users["alice"], rec)
        nets = swarm_network.provision(swarm_client, agreement_id, [settings.hub_api_port])
        yield Provisioned(agreement_id, nets, token, issued.ca.resolve())
    finally:
        end(swarm_client, agreement_id)


def test_a_workspace_queries_the_real_worker_over_verified_tls_until_its_token_is_revoked(
    swarm_client,
    workspace_image: str,
    provisioned: Provisioned,
    factory,  # noqa: F811
) -> None:
    agreement_id = provisioned.agreement_id
    worker = running_task(swarm_client, swarm_services.worker_service_name(agreement_id))
    command = worker["Spec"]["ContainerSpec"]["Command"]
    assert "query-worker" in command and "--tls-cert" in command
    container_id = worker["Status"]["ContainerStatus"]["ContainerID"]
    health = swarm_client.api.inspect_container(container_id)["State"]["Health"]
    assert health["Status"] == "healthy"  # its task runs once its port answers
    attached = {n["Network"]["Spec"]["Name"] for n in worker["NetworksAttachments"]}
    assert attached == {provisioned.nets.overlay}  # not on the door: no way off the overlay

    container = start_workspace_service(
        swarm_client, workspace_image, provisioned.nets, "alice", ["sleep", "infinity"],
        ca_file=str(provisioned.ca),
    )  # fmt: skip
    environment = {
        "SANDBOX_QUERY_URL": worker_url(agreement_id, tls=True),
        "SANDBOX_TOKEN": provisioned.token,
        "SANDBOX_QUERY_CA": hardening.CA_PATH,
    }

    def inside() -> dict:
        code, output = run_python(swarm_client, container, INSIDE, environment)
        assert code == 0, output
        return json.loads(output.strip().splitlines()[-1])

    seen: dict = {}

    def answered() -> bool:
        seen.clear()
        seen.update(inside())
        return "agreement" in seen  # until then the worker is still starting

    eventually(answered, "the worker's answer on the overlay", limit=180)
    assert seen["agreement"] == agreement_id and seen["rows"] == 3  # three districts
    assert seen["rows_of_people"].startswith("QG-")  # the guard, in the worker, refuses
    assert "CERTIFICATE_VERIFY_FAILED" in seen["without_ca"]
    assert seen["plain"] != "answered"

    with transaction(factory) as session:
        revoke_token(session, provisioned.token)
    after = inside()
    assert after.get("refused") == "workspace-token" and "agreement" not in after
