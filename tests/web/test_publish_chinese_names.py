"""Naming a file's columns on the declaration page (issue 14 item 1): each header is
proposed as its SQL name, headers that would become one name are refused together, and a
column renamed on the form is read from its header in the file and keeps it in the entry."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.catalog.models import Dataset
from sandbox.db.base import transaction
from tests.web.test_pages import csrf_token, sign_in

DATA = "区县,GDP增速,gdp增速\n梁溪区,1.5,2\n滨湖区,2.5,3\n".encode("gbk")


def _declaration(token: str, names: list[str]) -> dict[str, str | list[str]]:
    return {
        "csrf_token": token, "name": "经济指标", "title": "经济指标", "domain": "经济",
        "summary": "各区县", "open_class": "conditional", "conditions": "科研机构",
        "update_frequency": "annual", "contact": "data@example.invalid", "entity": "",
        "column_header": ["区县", "GDP增速", "gdp增速"], "column_name": names,
        "column_type": ["VARCHAR", "DOUBLE", "DOUBLE"], "column_sensitivity": ["none"] * 3,
        "column_description": [""] * 3,
    }  # fmt: skip


def test_headers_become_names_and_look_alikes_are_refused_together(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(client, "health")
    r = client.post(
        "/provider/publish",
        data={"csrf_token": csrf_token(client, "/provider/publish"), "encoding": "gbk"},
        files={"data": ("经济.csv", DATA, "text/csv")},
        follow_redirects=False,
    )
    declare = r.headers["location"]
    page = client.get(declare).text
    # Both headers are proposed as gdp增速, the name SQL reads either as.
    assert page.count('name="column_name" value="gdp增速"') == 2
    assert 'name="column_header" value="GDP增速"' in page
    token = csrf_token(client, declare)
    clash = client.post(
        f"{declare}/preview", data=_declaration(token, ["区县", "gdp增速", "gdp增速"])
    )
    assert clash.status_code == 422
    assert "各列名称须互不相同且不能形似" in clash.text and "catalog-entry" in clash.text
    fine = client.post(
        f"{declare}/preview", data=_declaration(token, ["区县", "gdp增速", "gdp增速_2"])
    )
    assert fine.status_code == 200 and 'id="preview"' in fine.text, fine.text[:2000]
    published = client.post(
        f"{declare}/publish", data={"csrf_token": token}, follow_redirects=False
    )
    assert published.status_code == 303
    with transaction(factory) as session:
        entry = session.scalars(select(Dataset).where(Dataset.name == "经济指标")).one().entry
    assert [(c["name"], c.get("header")) for c in entry["columns"]] == [
        ("区县", None), ("gdp增速", "GDP增速"), ("gdp增速_2", "gdp增速"),
    ]  # fmt: skip
