"""Export request and export review pages without a browser: the verdict at submission,
the side-by-side review re-checking tables from their underlying rows, refusals with
their rule, CSRF on every new form, and the published public keys."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from export_review.models import ExportRequest
from export_review.signing import load_or_create_signing_key, public_key_pem, signing_key_path
from sandbox.accounts.models import Role, User
from sandbox.accounts.service import create_user
from sandbox.agreements.service import import_agreement
from sandbox.audit.checkpoint import load_signing_key, public_key_hex
from sandbox.contracts import Review
from sandbox.db.base import transaction
from sandbox.settings import Settings
from tests.control_plane.conftest import PASSWORD, PROVIDER
from tests.control_plane.helpers import agreement
from tests.web.conftest import COUNT_QUERY, SMALL_QUERY, png, table_csv
from tests.web.test_pages import csrf_token, sign_in

PURPOSE = "Figure 1 and Table 1 of the district report"


def post_export(
    client: TestClient, agreement_id: str, files: dict[str, bytes], *, queries: list[str] = (),
    form_name: str = "", chart: dict[str, str] | None = None, action: str = "submit",
    token: str | None = "page",
) -> tuple[int, str]:  # fmt: skip
    """Send the new-export form as the browser does; return (status, redirect location)."""
    form: dict[str, object] = {
        "purpose": PURPOSE, "queries": list(queries), "action": action, "form": form_name,
        **{f"chart_{k}": v for k, v in (chart or {}).items()},
    }  # fmt: skip
    if token == "page":
        token = csrf_token(client, f"/researcher/agreements/{agreement_id}/exports/new")
    if token is not None:
        form["csrf_token"] = token
    r = client.post(
        f"/researcher/agreements/{agreement_id}/exports",
        data=form,
        files=[("files", (name, data)) for name, data in files.items()],
        follow_redirects=False,
    )
    return r.status_code, r.headers.get("location", r.text)


def export_id(location: str) -> int:
    found = re.fullmatch(r"/researcher/exports/(\d+)", location)
    assert found, location
    return int(found.group(1))


def status_of(factory: sessionmaker[Session], request_id: int) -> str:
    with transaction(factory) as session:
        return session.get_one(ExportRequest, request_id).status


def exports_count(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(ExportRequest)) or 0


def review(client: TestClient, request_id: int, action: str, reason: str = ""):  # noqa: ANN201
    token = csrf_token(client, f"/provider/exports/{request_id}")
    return client.post(
        f"/provider/exports/{request_id}/review",
        data={"action": action, "reason": reason, "csrf_token": token},
        follow_redirects=False,
    )


FIGURE = {"kind": "bar", "x": "district", "y": "visits", "title": "门诊量 Visits by district"}


def test_the_form_offers_exactly_the_agreements_output_forms_each_explained(
    client: TestClient, export_agreement: str, platform: dict[str, User],
    factory: sessionmaker[Session],
) -> None:  # fmt: skip
    with transaction(factory) as session:
        import_agreement(
            session=session, actor=platform["health"],
            agreement=agreement(id="AGR-T-0002", outputs=["dp_table", "code"]),
        )  # fmt: skip
    sign_in(client, "alice")
    page = client.get(f"/researcher/agreements/{export_agreement}/exports/new").text
    offered = re.findall(r'<label class="output-form" id="form-([a-z_]+)">', page)
    assert offered == ["dp_table", "table", "figure", "report"]
    assert "由平台绘制" in page and "db.dp(sql, epsilon, purpose=...)" in page
    assert 'id="chart-spec"' in page
    narrow = client.get("/researcher/agreements/AGR-T-0002/exports/new").text
    assert re.findall(r'id="form-([a-z_]+)"', narrow) == ["dp_table", "code"]
    assert 'id="chart-spec"' not in narrow and "不含输出的笔记本" in narrow
    assert 'accept=".ipynb,.py,.r,.sql"' in narrow
    # A form the agreement does not name comes back with its clause, at once.
    status, location = post_export(
        client, "AGR-T-0002", {"notes.md": b"# Notes\n"}, form_name="report"
    )
    page = client.get(location).text
    assert status_of(factory, export_id(location)) == "returned"
    assert 'class="rule">export-output-form<' in page and "agreement clause outputs" in page
    assert "lets dp_table, code leave, not report" in page


def test_a_figure_is_drawn_by_the_platform_from_its_checked_table(
    client: TestClient, export_agreement: str, catalog_dir: Path, factory: sessionmaker[Session]
) -> None:
    sign_in(client, "alice")
    table = table_csv(catalog_dir, COUNT_QUERY).encode()
    status, location = post_export(
        client, export_agreement, {"visits.csv": table}, queries=[COUNT_QUERY],
        form_name="figure", chart=FIGURE,
    )  # fmt: skip
    assert status == 303
    rid = export_id(location)
    page = client.get(location).text
    assert 'id="verdict-passed"' in page and "已通过自动检查" in page
    assert status_of(factory, rid) == "checked"
    assert f'src="/api/exports/{rid}/figure/figure.png"' in page  # the platform's drawing
    drawn = client.get(f"/api/exports/{rid}/figure/figure.png")
    assert drawn.status_code == 200 and drawn.content.startswith(b"\x89PNG")
    client.cookies.clear()
    sign_in(client, "health")
    review_page = client.get(f"/provider/exports/{rid}").text
    assert 'id="rendered-figure"' in review_page and "output-table" in review_page
    assert 'data-file="visits.csv"' in review_page  # its table re-checked from the rows
    client.cookies.clear()
    sign_in(client, "alice")
    # A researcher's own image comes back with the gate's rule, at once.
    status, location = post_export(
        client, export_agreement, {"visits.csv": table, "fig.png": png()},
        form_name="figure", chart=FIGURE,
    )  # fmt: skip
    page = client.get(location).text
    assert status_of(factory, export_id(location)) == "returned"
    assert 'id="verdict-refused"' in page and 'class="rule">export-file-type<' in page
    assert "drawn by the platform" in page


def test_a_draft_is_submitted_or_withdrawn_from_its_page(
    client: TestClient, export_agreement: str, factory: sessionmaker[Session]
) -> None:
    sign_in(client, "alice")
    _, location = post_export(client, export_agreement, {"notes.md": b"# Notes\n"}, action="save")
    rid = export_id(location)
    assert status_of(factory, rid) == "draft"
    assert "checks_not_run" not in client.get(location).text  # translated, not a bare key
    token = csrf_token(client, location)
    client.post(f"/researcher/exports/{rid}/submit", data={"csrf_token": token})
    assert status_of(factory, rid) == "checked"
    token = csrf_token(client, location)
    client.post(f"/researcher/exports/{rid}/withdraw", data={"csrf_token": token})
    assert status_of(factory, rid) == "withdrawn"
    # Withdrawn is final: the workflow's refusal is shown with its rule.
    r = client.post(f"/researcher/exports/{rid}/withdraw", data={"csrf_token": token})
    assert r.status_code == 409 and 'class="rule">export-transition<' in r.text


def test_every_new_export_form_refuses_a_post_without_its_csrf_token(
    client: TestClient, export_agreement: str, factory: sessionmaker[Session]
) -> None:
    sign_in(client, "alice")
    client.get("/researcher")  # the CSRF cookie is set
    for token in (None, "0" * 64):
        status, body = post_export(
            client, export_agreement, {"notes.md": b"# Notes\n"}, token=token
        )
        assert status == 403 and 'class="rule">csrf<' in body
    assert exports_count(factory) == 0
    _, location = post_export(client, export_agreement, {"notes.md": b"# Notes\n"}, action="save")
    rid = export_id(location)
    for action in ("submit", "withdraw"):
        r = client.post(f"/researcher/exports/{rid}/{action}", data={})
        assert r.status_code == 403 and 'class="rule">csrf<' in r.text
    assert status_of(factory, rid) == "draft"
    token = csrf_token(client, location)
    client.post(f"/researcher/exports/{rid}/submit", data={"csrf_token": token})
    client.cookies.clear()
    sign_in(client, "health")
    client.get("/provider")
    r = client.post(f"/provider/exports/{rid}/review", data={"action": "start_review"})
    assert r.status_code == 403 and 'class="rule">csrf<' in r.text
    assert status_of(factory, rid) == "checked"
    assert review(client, rid, "start_review").status_code == 303
    assert status_of(factory, rid) == "in_review"


def test_the_review_checks_tables_from_their_underlying_rows(
    client: TestClient, export_agreement: str, catalog_dir: Path, factory: sessionmaker[Session]
) -> None:
    """The reviewer's per-cell check is computed from the rows, not from the submitted numbers:
    a table whose numbers were changed still shows the true counts."""
    truth = table_csv(catalog_dir, COUNT_QUERY)
    lines = truth.strip().split("\n")
    forged = "\n".join([lines[0], *(f"{line.split(',')[0]},999" for line in lines[1:])]) + "\n"
    sign_in(client, "alice")
    _, location = post_export(
        client, export_agreement,
        {"visits.csv": forged.encode(), "small.csv": table_csv(catalog_dir, SMALL_QUERY).encode(),
         "other.csv": b"region,n\nA,12\n"},
        queries=[COUNT_QUERY, SMALL_QUERY],
    )  # fmt: skip
    rid = export_id(location)
    client.cookies.clear()
    sign_in(client, "health")
    page = client.get(f"/provider/exports/{rid}").text
    sections = {
        m.group(1): m.group(2)
        for m in re.finditer(r'<div class="rerun" data-file="([^"]+)">(.*?)</div>', page, re.S)
    }
    assert set(sections) == {"visits.csv", "small.csv", "other.csv"}
    visits = sections["visits.csv"]
    assert "rerun-derived" in visits and "cell-flagged" not in visits.split("<caption>")[1]
    for line in lines[1:]:  # the true count of every district is what the check shows
        district, n = line.split(",")
        assert re.search(rf"<th>{district}</th>\s*<td class=\"cell cell-ok\"[^>]*>{n}<", visits)
    assert ">999<" not in visits  # the forged numbers are only in the output column
    small = sections["small.csv"]
    assert "rerun-derived" in small and "cell-flagged" in small and "threshold" in small
    assert "rerun-not-derived" in sections["other.csv"]  # said plainly, gate results only
    assert "无法取得底层记录" in sections["other.csv"]


def test_review_refusals_are_shown_on_the_review_page_with_their_rule(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as session:
        create_user(
            session=session, username="health2", password=PASSWORD, role=Role.provider,
            display_name="Second reviewer", organisation=PROVIDER,
        )  # fmt: skip
        import_agreement(
            session=session, actor=platform["health"],
            agreement=agreement(outputs=["report"], review=Review(reviewers=2)),
        )  # fmt: skip
    sign_in(client, "alice")
    _, location = post_export(client, "AGR-T-0001", {"report.md": b"# Findings\n"})
    rid = export_id(location)
    client.cookies.clear()
    sign_in(client, "health")
    assert review(client, rid, "start_review").status_code == 303
    r = review(client, rid, "return", reason="  ")
    assert r.status_code == 422 and 'class="rule">export-reason<' in r.text
    assert 'id="export-status"' in r.text  # still the review page, side by side
    assert review(client, rid, "approve").status_code == 303
    r = review(client, rid, "approve")
    assert r.status_code == 403 and 'class="rule">export-independent-reviewers<' in r.text
    assert status_of(factory, rid) == "in_review"
    assert 'id="approvals">1 / 2' in client.get(f"/provider/exports/{rid}").text
    client.cookies.clear()
    sign_in(client, "health2")
    assert review(client, rid, "approve").status_code == 303
    assert status_of(factory, rid) == "released"
    r = review(client, rid, "revoke")
    assert r.status_code == 422 and 'class="rule">export-reason<' in r.text
    assert review(client, rid, "revoke", reason="wrong district names").status_code == 303
    client.cookies.clear()
    sign_in(client, "alice")
    page = client.get(location).text
    assert "已撤销发布" in page and "wrong district names" in page
    assert 'id="download-bundle"' not in page


def test_the_keys_page_publishes_the_release_and_audit_public_keys(
    client: TestClient, settings: Settings, platform: dict[str, User]
) -> None:
    page = client.get("/keys").text
    assert "BEGIN PUBLIC KEY" not in page and page.count("尚未生成") == 2
    assert client.get("/keys/release-signing.pem").status_code == 404
    release = load_or_create_signing_key(signing_key_path(settings.keys_dir))
    audit = load_signing_key(settings.keys_dir)
    page = client.get("/keys").text
    assert public_key_pem(release).decode() in page and public_key_pem(audit).decode() in page
    assert public_key_hex(audit) in page
    assert "PRIVATE" not in page
    pem = client.get("/keys/release-signing.pem")
    assert pem.status_code == 200 and pem.text == public_key_pem(release).decode()
    assert client.get("/keys/audit-checkpoint.pem").text == public_key_pem(audit).decode()


def test_export_redirects_carry_ids_only(
    client: TestClient, export_agreement: str, factory: sessionmaker[Session]
) -> None:
    secret = "王小明-13800000000"
    sign_in(client, "alice")
    status, location = post_export(
        client, export_agreement, {"notes.md": f"# {secret}\n".encode()}, queries=[secret]
    )
    assert status == 303 and secret not in location and export_id(location)
