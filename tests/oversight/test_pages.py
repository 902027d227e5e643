"""The oversight pages over HTTP: the public register and forms with their receipts, and the
desk where the provider, the operator and the authority handle cases (CSRF on every form)."""

from __future__ import annotations

import re

from sandbox.db.base import transaction
from sandbox.oversight.models import QualityTask
from tests.web.test_pages import csrf_token, sign_in

RECEIPT = re.compile(r'id="receipt-code">([^<]+)<')


def test_public_forms_give_a_receipt_that_reads_the_answer(client, signed):
    token = csrf_token(client, "/report")
    forged = client.post("/report", data={"kind": "misuse", "description": "x"})
    assert forged.status_code == 403 and "csrf" in forged.text
    r = client.post(
        "/report",
        data={"kind": "misuse", "description": "Table posted online.", "dataset": "clinic_visits",
              "csrf_token": token},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    code = RECEIPT.search(r.text).group(1)
    bad = client.post("/report", data={"kind": "misuse", "description": " ", "csrf_token": token})
    assert bad.status_code == 422 and "tipoff-incomplete" in bad.text and "Wuxi Art.17" in bad.text
    token = csrf_token(client, "/demand")
    r = client.post(
        "/demand",
        data={"requester": "Wang", "contact": "w@example.invalid", "title": "Ambulance times",
              "description": "Response times by district.", "csrf_token": token},
    )  # fmt: skip
    assert r.status_code == 200 and RECEIPT.search(r.text)

    sign_in(client, "health")
    desk = client.get("/oversight")
    assert desk.status_code == 200
    assert "Table posted online." in desk.text and "Ambulance times" in desk.text
    token = csrf_token(client, "/oversight")
    r = client.post(
        "/oversight/tipoffs/1",
        data={"to": "answered", "answer": "Checked: aggregates only.", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    client.cookies.clear()
    token = csrf_token(client, "/report")
    r = client.post("/receipt/tipoff", data={"receipt": code, "csrf_token": token})
    assert 'id="case-status">answered<' in r.text and "Checked: aggregates only." in r.text


def test_desk_records_measures_and_publishes(client, factory, signed):
    assert "/signin" in client.get("/oversight").text  # signed out: refused, told to sign in
    sign_in(client, "auth")
    token = csrf_token(client, "/oversight")
    r = client.post(
        "/oversight/violations",
        data={"kind": "beyond_scenario", "agreement_id": "AGR-T-0001", "researcher": "alice",
              "evidence": "Joined to an outside list.", "references": "audit:4\nquery:9",
              "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert r.status_code == 303
    r = client.post(
        "/oversight/quality-tasks",
        data={"dataset": "clinic_visits", "description": "Empty districts.", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with transaction(factory) as session:  # make the task overdue
        task = session.get_one(QualityTask, 1)
        task.due_on = task.due_on.replace(year=task.due_on.year - 1)
    assert "overdue-flag" in client.get("/oversight").text
    refused = client.post(
        "/oversight/violations/1/measure",
        data={"measure": "limit", "reason": "x", "rectification_days": "5", "csrf_token": token},
    )
    assert refused.status_code == 403 and 'class="rule">role<' in refused.text

    client.cookies.clear()
    sign_in(client, "ops")
    token = csrf_token(client, "/oversight")
    for path, data in [
        ("/oversight/violations/1/measure",
         {"measure": "close", "reason": "out of scope", "rectification_days": "5"}),
        ("/oversight/violations/1/publish", {}),
    ]:  # fmt: skip
        r = client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303, r.text
    register = client.get("/violations")
    assert "江南大学" in register.text and "Shanghai Art.28(4)" in register.text
    assert "Joined to an outside list." not in register.text and "alice" not in register.text


def test_the_desk_the_register_and_the_forms_are_reachable_from_the_menus(client, signed):
    public = client.get("/catalogue").text
    for path in ("/violations", "/report", "/demand"):
        assert f'href="{path}"' in public  # the footer, for everyone
    assert 'id="menu-oversight"' not in public
    sign_in(client, "alice")
    assert 'id="menu-oversight"' not in client.get("/researcher").text
    sign_in(client, "health")
    menu = client.get("/provider").text
    assert 'id="menu-oversight"' in menu and 'id="menu-statistics"' not in menu
    sign_in(client, "auth")
    home = client.get("/authority").text
    assert 'id="menu-oversight"' in home and 'id="menu-statistics"' in home
    links = home.split('id="oversight-links"')[1].split("</p>")[0]
    for path in ("/oversight", "/violations", "/authority/statistics"):
        assert f'href="{path}"' in links
