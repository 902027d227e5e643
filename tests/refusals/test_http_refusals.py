"""Refusals met over HTTP (pages and the API): the rule in the answer, the text in the
page's language."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sandbox.contracts.loading import dump_agreement
from sandbox.errors import SandboxError
from sandbox.refusal_text import say
from sandbox.settings import Settings
from sandbox.web.staging import data_file
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement
from tests.refusals.provoke import Users, assert_refused_by


@pytest.mark.parametrize(
    ("lang", "text"),
    [("zh", "没有名为 nope.pem 的已公布公钥"), ("en", "no published key named nope.pem")],
)
def test_a_key_not_published(client: TestClient, lang: str, text: str) -> None:
    client.cookies.set("lang", lang)
    page = client.get("/keys/nope.pem")
    assert page.status_code == 404 and "key-unknown" in page.text and text in page.text


def test_an_amendment_names_the_agreement_of_its_address(client: TestClient, signed: Users) -> None:
    other = dump_agreement(agreement(id="AGR-T-0009"))
    answer = client.put(
        "/api/agreements/AGR-T-0001",
        json={"agreement_yaml": other, "reason": "narrower"},
        headers=login(client, "health"),
    )
    assert answer.status_code == 422 and answer.json()["rule"] == "agreement-id"
    shown = say("agreement-id", answer.json()["error"], "zh")
    assert shown == "YAML 文件中的协议编号与网址中的编号不一致"


def test_an_upload_that_is_gone(settings: Settings) -> None:
    with pytest.raises(SandboxError) as refused:
        data_file(settings, "0" * 32)
    assert_refused_by(refused.value, "upload-unknown")
