"""Forms that help (issue 14 item 4): a refused form comes back on its page with what was
typed kept and each problem beside its field, in the page's language, with a summary at
the form's top naming the rule and the article; never a password.

Each test sends a real form over HTTP with the token of the page it came from, as a
browser does, and reads the answer as HTML.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from bs4 import BeautifulSoup, Tag
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from export_review.models import ExportRequest
from sandbox.accounts.models import User
from sandbox.applications.models import Application
from sandbox.db.base import transaction
from sandbox.feedback.models import Complaint, Objection
from tests.control_plane.conftest import PASSWORD
from tests.web.conftest import COUNT_QUERY, application_form, screenshot, submit_for_review
from tests.web.page_text import untranslated
from tests.web.test_notice_org_preview_pages import BAD_CODE
from tests.web.test_pages import CSRF, count, sign_in
from tests.web.test_real_name_pages import NUMBER

LANGS = pytest.mark.parametrize("lang", ["zh", "en"])


@dataclass
class Answer:
    status: int
    page: BeautifulSoup
    text: str

    def form(self, form_id: str) -> Tag:
        found = self.page.find("form", id=form_id)
        assert isinstance(found, Tag), f"no form #{form_id}"
        return found

    def field(self, form_id: str, name: str) -> Tag:
        found = self.form(form_id).find(attrs={"name": name})
        assert isinstance(found, Tag), f"no field {name} in #{form_id}"
        return found

    def kept(self, form_id: str, name: str) -> str:
        field = self.field(form_id, name)
        if field.name == "textarea":
            return field.get_text()
        if field.name == "select":
            chosen = field.find("option", selected=True)
            return str(chosen["value"]) if isinstance(chosen, Tag) else ""
        return str(field.get("value", ""))

    def beside(self, form_id: str, name: str) -> str:
        """The problem shown beside the field: described by it, inside its label."""
        field = self.field(form_id, name)
        assert field.get("aria-invalid") == "true", f"{name} is not marked invalid"
        problem = self.page.find(id=field["aria-describedby"])
        assert isinstance(problem, Tag) and "field-error" in problem["class"]
        assert problem.find_parent("label") is field.find_parent("label")
        return problem.get_text(" ", strip=True)

    def unmarked(self, form_id: str) -> list[str]:
        return [str(f["name"]) for f in self.form(form_id).find_all(attrs={"aria-invalid": "true"})]

    def summary(self, form_id: str) -> Tag:
        """The refusal at the form's top: read first, naming the rule."""
        found = self.form(form_id).find(class_="form-refusal")
        assert isinstance(found, Tag) and found["role"] == "alert"
        return found

    def rule(self, form_id: str) -> str:
        return self.summary(form_id).find("code", class_="rule").get_text()


def send(
    client: TestClient, page: str, action: str, data: dict, lang: str, files: list | None = None
) -> Answer:
    """Open ``page`` in ``lang`` and send its form to ``action`` with ``data``."""
    client.cookies.set("lang", lang)
    token = CSRF.search(client.get(page).text)
    assert token, page
    answer = client.post(
        action, data={**data, "csrf_token": token.group(1)}, files=files, follow_redirects=False
    )
    page_html = BeautifulSoup(answer.text, "html.parser")
    return Answer(answer.status_code, page_html, answer.text)


def in_one_language(answer: Answer, lang: str) -> None:
    assert untranslated(answer.text, lang) == [], untranslated(answer.text, lang)


# --- Sign-in --------------------------------------------------------------------------


@LANGS
def test_a_wrong_password_shows_the_form_again_with_the_username_not_the_password(
    client: TestClient, platform: dict[str, User], lang: str
) -> None:
    answer = send(
        client, "/signin?next=%2Fresearcher", "/signin",
        {"username": "alice", "password": "not-the-password", "next": "/researcher"}, lang,
    )  # fmt: skip
    assert answer.status == 403
    assert answer.kept("signin-form", "username") == "alice"
    assert answer.kept("signin-form", "password") == ""
    assert "not-the-password" not in answer.text
    assert answer.kept("signin-form", "next") == "/researcher"
    reason = answer.summary("signin-form").find(class_="reason").get_text()
    assert reason == {"zh": "用户名或密码错误", "en": "unknown user or wrong password"}[lang]
    assert answer.rule("signin-form") == "auth"
    in_one_language(answer, lang)
    # The form shown again carries a token that works: the right password goes through.
    token = CSRF.search(answer.text)
    assert token
    again = client.post(
        "/signin",
        data={"username": "alice", "password": PASSWORD, "next": "/researcher",
              "csrf_token": token.group(1)},
        follow_redirects=False,
    )  # fmt: skip
    assert again.status_code == 303 and again.headers["location"] == "/researcher"


def test_a_next_page_elsewhere_is_not_carried_into_the_form_shown_again(
    client: TestClient, platform: dict[str, User]
) -> None:
    answer = send(
        client, "/signin", "/signin",
        {"username": "alice", "password": "wrong", "next": "https://evil.example/"}, "en",
    )  # fmt: skip
    assert answer.status == 403 and answer.form("signin-form").find(attrs={"name": "next"}) is None


# --- Objections and complaints ----------------------------------------------------------

DATASET = "/datasets/clinic_visits"


@LANGS
def test_an_objection_without_a_contact_keeps_what_was_typed_and_marks_the_contact(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session], lang: str
) -> None:
    typed = {"submitter": "张三", "contact": "  ", "description": "区县名称有误"}
    answer = send(client, DATASET, f"{DATASET}/objections", typed, lang)
    assert answer.status == 422
    form = "objection-form"
    assert answer.kept(form, "submitter") == "张三"
    assert answer.kept(form, "description") == "区县名称有误"
    assert answer.beside(form, "contact") == {"zh": "必填", "en": "required"}[lang]
    assert answer.unmarked(form) == ["contact"]
    assert answer.rule(form) == "objection-incomplete"
    assert "Shanghai Art.21" in answer.summary(form).get_text()
    # The other form of the page is left as it was.
    assert answer.page.find("form", id="complaint-form").find(class_="form-refusal") is None
    assert answer.kept("complaint-form", "description") == ""
    in_one_language(answer, lang)
    assert count(factory, Objection) == 0


@LANGS
def test_a_complaint_without_evidence_keeps_the_right_chosen(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session], lang: str
) -> None:
    typed = {"complainant": "李四", "contact": "l@example.invalid", "kind": "privacy",
             "description": "涉及个人隐私", "evidence": ""}  # fmt: skip
    answer = send(client, DATASET, f"{DATASET}/complaints", typed, lang)
    assert answer.status == 422
    form = "complaint-form"
    assert answer.kept(form, "kind") == "privacy"
    assert answer.kept(form, "contact") == "l@example.invalid"
    assert answer.beside(form, "evidence") == {"zh": "必填", "en": "required"}[lang]
    assert answer.unmarked(form) == ["evidence"]
    assert answer.rule(form) == "complaint-incomplete"
    in_one_language(answer, lang)
    assert count(factory, Complaint) == 0


@LANGS
def test_a_name_too_long_is_refused_beside_it_by_the_forms_validation(
    client: TestClient, platform: dict[str, User], lang: str
) -> None:
    typed = {"submitter": "张" * 201, "contact": "z@example.invalid", "description": "有误"}
    answer = send(client, DATASET, f"{DATASET}/objections", typed, lang)
    assert answer.status == 422
    said = {"zh": "最多 200 个字符（实际 201 个）", "en": "at most 200 characters (got 201)"}
    assert answer.beside("objection-form", "submitter") == said[lang]
    assert answer.kept("objection-form", "contact") == "z@example.invalid"
    assert answer.rule("objection-form") == "text-length"
    link = answer.summary("objection-form").find("a")
    assert link["href"] == "#objection-form-submitter-problem"
    assert link.get_text() == {"zh": "姓名或单位", "en": "Your name or organisation"}[lang]
    in_one_language(answer, lang)


# --- The researcher's application --------------------------------------------------------


@LANGS
def test_an_application_with_a_title_too_long_comes_back_with_every_choice_kept(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session], lang: str
) -> None:
    sign_in(client, "alice")
    typed = application_form(title="题" * 301, action="save")
    answer = send(client, "/researcher/applications/new", "/researcher/applications", typed, lang)
    assert answer.status == 422
    form = "application-form"
    said = {"zh": "最多 300 个字符（实际 301 个）", "en": "at most 300 characters (got 301)"}
    assert answer.beside(form, "title") == said[lang]
    assert answer.unmarked(form) == ["title"]
    assert answer.kept(form, "title") == "题" * 301
    assert answer.kept(form, "purpose") == typed["purpose"]
    assert answer.kept(form, "usage_until") == "2027-06-30"
    checked = {
        str(box["value"])
        for box in answer.form(form).find_all("input", type="checkbox", checked=True)
    }
    assert checked == {"clinic_visits.district", "clinic_visits.cost", "dp_table", "true"}
    assert answer.rule(form) == "text-length"
    in_one_language(answer, lang)
    assert count(factory, Application) == 0


@LANGS
def test_a_draft_edited_wrongly_comes_back_on_its_own_page(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session], lang: str
) -> None:
    sign_in(client, "alice")
    saved = client.post(
        "/researcher/applications",
        data={**application_form(action="save"),
              "csrf_token": CSRF.search(client.get("/researcher/applications/new").text)[1]},
        follow_redirects=False,
    )  # fmt: skip
    page = saved.headers["location"]
    typed = application_form(scenario="场" * 20_001, purpose="新的目的", action="save")
    answer = send(client, page, page, typed, lang)
    assert answer.status == 422
    assert answer.form("application-form")["action"] == page
    said = {"zh": "最多 20000 个字符（实际 20001 个）",
            "en": "at most 20000 characters (got 20001)"}  # fmt: skip
    assert answer.beside("application-form", "scenario") == said[lang]
    assert answer.kept("application-form", "purpose") == "新的目的"
    with transaction(factory) as session:  # the draft as it was
        assert session.scalars(select(Application)).one().purpose == application_form()["purpose"]


# --- The provider's review of an application ---------------------------------------------


@LANGS
def test_a_refusal_without_its_legal_basis_keeps_the_reason_and_marks_the_basis(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session], lang: str
) -> None:
    app_id = submit_for_review(factory, platform)
    sign_in(client, "health")
    page = f"/provider/applications/{app_id}"
    typed = {"reason": "超出开放范围", "legal_basis": ""}
    answer = send(client, page, f"{page}/refuse", typed, lang)
    assert answer.status == 422
    assert answer.kept("refuse-form", "reason") == "超出开放范围"
    assert answer.beside("refuse-form", "legal_basis") == {"zh": "必填", "en": "required"}[lang]
    assert answer.unmarked("refuse-form") == ["legal_basis"]
    assert answer.rule("refuse-form") == "refusal-needs-basis"
    reason = answer.summary("refuse-form").find(class_="reason").get_text()
    assert (
        reason
        == {
            "zh": "不予批准须说明理由和法律依据（法律、法规或规章）",
            "en": "a refusal states its reason and its legal basis (law, regulation or rule)",
        }[lang]
    )
    assert answer.page.find("form", id="approve-form").find(class_="form-refusal") is None
    in_one_language(answer, lang)


@LANGS
def test_an_approval_without_scope_keeps_the_agreement_fields_typed(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session], lang: str
) -> None:
    app_id = submit_for_review(factory, platform)
    sign_in(client, "health")
    page = f"/provider/applications/{app_id}"
    typed = {"scope": " ", "agreement_id": "AGR-W-9", "title": "改过的标题", "purpose": "p",
             "mode": "aggregate", "valid_from": "2027-01-01", "valid_until": "2027-03-31",
             "columns": ["clinic_visits.district"], "min_group_size": "12", "epsilon": "0.5",
             "outputs": ["dp_table"], "usage_reports": "monthly"}  # fmt: skip
    answer = send(client, page, f"{page}/approve", typed, lang)
    assert answer.status == 422
    form = "approve-form"
    assert (
        answer.beside(form, "scope")
        == {
            "zh": "批准须写明使用目的和范围",
            "en": "an approval states the purpose and scope of use",
        }[lang]
    )
    assert [answer.kept(form, f) for f in ("agreement_id", "title", "min_group_size")] == [
        "AGR-W-9", "改过的标题", "12",
    ]  # fmt: skip
    assert answer.kept(form, "usage_reports") == "monthly"
    columns = answer.form(form).find_all("input", attrs={"name": "columns"})
    chosen = {str(c["value"]) for c in columns if c.has_attr("checked")}
    assert len(columns) > 1 and chosen == {"clinic_visits.district"}
    assert answer.rule(form) == "approval-scope"
    in_one_language(answer, lang)


@LANGS
def test_an_epsilon_out_of_range_is_refused_beside_it(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session], lang: str
) -> None:
    app_id = submit_for_review(factory, platform)
    sign_in(client, "health")
    page = f"/provider/applications/{app_id}"
    typed = {"scope": "区县汇总", "agreement_id": "AGR-W-9", "epsilon": "0",
             "columns": ["clinic_visits.district"]}  # fmt: skip
    answer = send(client, page, f"{page}/approve", typed, lang)
    assert answer.status == 422
    assert (
        answer.beside("approve-form", "epsilon")
        == {
            "zh": "ε 须为 1e-06 至 1000000.0 之间的有限数值",
            "en": "epsilon must be a finite number from 1e-06 to 1000000.0",
        }[lang]
    )
    assert answer.kept("approve-form", "scope") == "区县汇总"
    assert answer.rule("approve-form") == "dp-epsilon"


# --- Export requests: the researcher's form and the provider's review --------------------


@LANGS
def test_an_export_without_its_purpose_keeps_the_queries_and_the_chart(
    client: TestClient, export_agreement: str, factory: sessionmaker[Session], lang: str
) -> None:
    sign_in(client, "alice")
    page = f"/researcher/agreements/{export_agreement}/exports/new"
    typed = {"form": "figure", "purpose": "", "queries": [COUNT_QUERY], "chart_kind": "line",
             "chart_x": "district", "chart_y": "visits", "chart_title": "门诊量",
             "action": "submit"}  # fmt: skip
    answer = send(
        client, page, f"/researcher/agreements/{export_agreement}/exports", typed, lang,
        files=[("files", ("visits.csv", b"district,visits\n"))],
    )  # fmt: skip
    assert answer.status == 422
    form = "export-form"
    said = {"zh": "请说明导出成果的用途", "en": "say what the output is for"}[lang]
    assert answer.beside(form, "purpose") == said
    assert answer.unmarked(form) == ["purpose"]
    chosen = answer.form(form).find("input", attrs={"name": "form", "checked": True})
    assert chosen["value"] == "figure"
    assert answer.kept(form, "queries") == COUNT_QUERY
    assert [answer.kept(form, f) for f in ("chart_kind", "chart_x", "chart_title")] == [
        "line", "district", "门诊量",
    ]  # fmt: skip
    assert answer.page.find(id="files-again") is not None  # files are chosen again
    assert answer.rule(form) == "export-purpose"
    in_one_language(answer, lang)
    with transaction(factory) as session:
        assert session.scalars(select(ExportRequest)).first() is None


@LANGS
def test_a_return_without_a_reason_is_marked_in_the_return_form(
    client: TestClient, export_agreement: str, lang: str
) -> None:
    sign_in(client, "alice")
    token = CSRF.search(client.get(f"/researcher/agreements/{export_agreement}/exports/new").text)
    sent = client.post(
        f"/researcher/agreements/{export_agreement}/exports",
        data={"form": "report", "purpose": "报告", "action": "submit", "csrf_token": token[1]},
        files=[("files", ("report.md", b"# Findings\n"))], follow_redirects=False,
    )  # fmt: skip
    request_id = sent.headers["location"].rsplit("/", 1)[1]
    client.cookies.clear()
    sign_in(client, "health")
    page = f"/provider/exports/{request_id}"
    assert send(client, page, f"{page}/review", {"action": "start_review"}, lang).status == 303
    answer = send(client, page, f"{page}/review", {"action": "return", "reason": " "}, lang)
    assert answer.status == 422
    said = {"zh": "此决定须向作者说明理由", "en": "return needs a reason for the author"}[lang]
    assert answer.beside("move-return", "reason") == said
    assert answer.rule("move-return") == "export-reason"
    assert answer.page.find("form", id="move-reject").find(class_="form-refusal") is None
    in_one_language(answer, lang)


# --- The operator's forms about people and organisations ---------------------------------


@LANGS
def test_a_wrong_resident_id_is_marked_and_never_written_back(
    client: TestClient, carol: dict[str, User], lang: str
) -> None:
    sign_in(client, "ops")
    wrong = NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")
    typed = {"username": "carol", "legal_name": "柯洛", "verified_how": "现场查验身份证",
             "resident_id": wrong}  # fmt: skip
    answer = send(client, "/operator/identities", "/operator/identities", typed, lang)
    assert answer.status == 422
    form = "identity-form"
    assert "GB 11643-1999" in answer.beside(form, "resident_id")
    assert answer.kept(form, "resident_id") == "" and wrong not in answer.text
    assert [answer.kept(form, f) for f in ("username", "legal_name", "verified_how")] == [
        "carol", "柯洛", "现场查验身份证",
    ]  # fmt: skip
    assert answer.rule(form) == "resident-id"
    in_one_language(answer, lang)


@LANGS
def test_an_organisation_with_a_bad_credit_code_and_a_member_of_none(
    client: TestClient, platform: dict[str, User], lang: str
) -> None:
    sign_in(client, "ops")
    page = "/operator/organisations"
    typed = {"credit_code": BAD_CODE, "name": "江南大学", "legal_name": "江南大学",
             "verified_how": ""}  # fmt: skip
    answer = send(client, page, page, typed, lang)
    assert answer.status == 422  # the blank field is named first, as the service checks it
    assert (
        answer.beside("organisation-form", "verified_how") == {"zh": "必填", "en": "required"}[lang]
    )
    typed["verified_how"] = "国家企业信用信息公示系统核验"
    answer = send(client, page, page, typed, lang)
    assert answer.status == 422 and answer.rule("organisation-form") == "credit-code"
    assert "GB 32100-2015" in answer.beside("organisation-form", "credit_code")
    assert answer.kept("organisation-form", "credit_code") == BAD_CODE
    in_one_language(answer, lang)
    member = {"credit_code": BAD_CODE, "username": "alice", "role": "representative"}
    answer = send(client, page, f"{page}/members", member, lang)
    assert answer.status == 404 and answer.rule("member-form") == "organisation-unknown"
    assert answer.unmarked("member-form") == ["credit_code"]
    assert answer.kept("member-form", "role") == "representative"
    assert answer.kept("organisation-form", "credit_code") == ""  # the other form as it was
    in_one_language(answer, lang)


# --- In the browser ------------------------------------------------------------------------


def test_the_browser_shows_the_problem_beside_the_field_after_a_real_submission(
    live_server: str,
    platform: dict[str, User],
    page,  # type: ignore[no-untyped-def]
) -> None:
    page.goto(f"{live_server}{DATASET}")
    page.fill("#objection-form input[name=submitter]", "张三")
    page.fill("#objection-form textarea[name=description]", "区县名称有误")
    page.click("#objection-form button[type=submit]")
    problem = page.locator("#objection-form-contact-problem")
    problem.wait_for()
    screenshot(page, "form-refusal-objection")
    assert problem.inner_text() == "必填" and problem.is_visible()
    contact = page.locator("#objection-form input[name=contact]")
    assert contact.get_attribute("aria-invalid") == "true"
    assert contact.get_attribute("aria-describedby") == "objection-form-contact-problem"
    box, beside = contact.bounding_box(), problem.bounding_box()
    assert 0 <= beside["y"] - (box["y"] + box["height"]) < 40  # right under the field
    assert page.input_value("#objection-form input[name=submitter]") == "张三"
    assert page.locator("#objection-form .form-refusal .rule").inner_text() == (
        "objection-incomplete"
    )
    page.fill("#objection-form input[name=contact]", "z@example.invalid")  # the token still works
    page.click("#objection-form button[type=submit]")
    page.wait_for_selector("p.notice[role=status]")
    assert page.locator("#objection-form .form-refusal").count() == 0
