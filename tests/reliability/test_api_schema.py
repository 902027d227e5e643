"""Schemathesis against the running platform API (issue 12): every operation of the OpenAPI
schema, signed in as each role, with valid and invalid data drawn from the schema, over
real HTTP to uvicorn on 127.0.0.1, on SQLite and PostgreSQL: no 5xx (schemathesis's
``not_a_server_error``). Operations that name an object are also tried on objects that
exist, so the handlers past the 404 are reached too.

The examples per operation are bounded (``SANDBOX_SCHEMA_EXAMPLES`` raises them for a
deeper run) and derandomised, so CI is repeatable and a failure is reproducible; every
server error found is listed with its curl command. The ``factory`` fixture verifies the
audit chain afterwards.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup

from sandbox.apps.platform import create_app
from tests.control_plane.conftest import PASSWORD
from tests.query_service.conftest import AGGREGATE, World, bearer, serve
from tests.second_factor import next_code

#: Per operation, role and kind of case: 1 keeps the eight runs to about 90 s of CPU (most
#: of it drawing cases, not answering them); 12 ran clean too, in nine minutes.
EXAMPLES = int(os.environ.get("SANDBOX_SCHEMA_EXAMPLES", "1"))
#: The account each role signs in as (tests/control_plane/conftest.py's demo accounts).
ROLES = {"researcher": "alice", "provider": "health", "operator": "ops", "authority": "auth"}
#: Objects the world holds, for path parameters of these names; integer ids try 1.
KNOWN = {"name": "clinic_visits", "agreement_id": AGGREGATE, "username": "alice"}


@pytest.fixture
def api_url(world: World) -> Iterator[str]:
    yield from serve(create_app(world.settings))


def _headers(url: str, world: World, role: str) -> dict[str, dict[str, str]]:
    """The role's bearer token for ``/api``; for ``/qs`` a researcher's workspace token,
    anyone else's own token (which the query service refuses)."""
    data = {"username": ROLES[role], "password": PASSWORD}
    if role != "researcher":  # staff sign in with their authenticator's code
        data["otp"] = next_code(world.factory, world.settings.keys_dir, ROLES[role])
    r = httpx.post(f"{url}/api/auth/token", data=data)
    assert r.status_code == 200, r.text
    own = bearer(r.json()["access_token"])
    return {"/api": own, "/qs": bearer(world.tokens[AGGREGATE]) if role == "researcher" else own}


def _known_objects(path: str) -> dict[str, object] | None:
    names = re.findall(r"\{(\w+)\}", path)
    if not names:
        return None
    return {n: KNOWN.get(n, 1) for n in names if n in KNOWN or n.endswith("_id")}


def _server_errors(
    operation: schemathesis.APIOperation, url: str, headers: dict[str, str]
) -> list[str]:
    """Each distinct 5xx of ``operation`` over ``EXAMPLES`` valid, invalid and (where it
    names objects) existing-object cases."""
    found: dict[int, str] = {}
    known = _known_objects(operation.path)
    strategies = [(mode, operation.as_strategy(mode)) for mode in GenerationMode]
    if known:
        strategies.append((GenerationMode.POSITIVE, operation.as_strategy(path_parameters=known)))

    for mode, strategy in strategies:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=url, headers=headers, timeout=120)
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except FailureGroup:
                found.setdefault(
                    response.status_code,
                    f"{operation.label} -> {response.status_code}: {response.text[:300]}\n"
                    f"  {case.as_curl_command(headers=headers)}",
                )

        try:
            run()
        except Unsatisfiable:  # nothing of this operation can be made invalid
            assert mode is GenerationMode.NEGATIVE
    return list(found.values())


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_gives_a_server_error(world: World, api_url: str, role: str) -> None:
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    headers = _headers(api_url, world, role)
    errors = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        prefix = "/qs" if operation.path.startswith("/qs") else "/api"
        errors += _server_errors(operation, api_url, headers[prefix])
    assert operations > 50, "the schema lost its operations"
    assert not errors, f"{len(errors)} server error(s) as {role}:\n" + "\n".join(errors)
