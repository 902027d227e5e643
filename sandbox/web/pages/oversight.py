# ruff: noqa: E501  (a catalogue of messages reads best one key per line)
"""Pages for the oversight duties: the public violation register, tip-off and data-request
forms with a receipt to read the answer (Shanghai Art.10, 27, 28; Wuxi Art.9, 17), and one
desk where providers, the operator and the authority handle violations, tip-offs,
quality tasks and data requests. The same service functions as ``/api``.

Page text of these pages lives in ``MESSAGES`` below; other keys fall back to the
shared catalogue in :mod:`sandbox.web.i18n`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel

from sandbox.accounts.models import Role
from sandbox.accounts.permissions import require_role
from sandbox.clock import today
from sandbox.http.deps import CalendarDep, DbDep, MaybeUserDep, SettingsDep, UserDep
from sandbox.input_limits import Days, LongText, Name, RowId, Title
from sandbox.oversight import demand, quality, tipoffs, violations
from sandbox.oversight.models import Demand, TipOff
from sandbox.oversight.receipts import find_by_receipt
from sandbox.oversight.views import (
    demand_view,
    quality_task_view,
    receipt_view,
    tipoff_view,
    violation_view,
)
from sandbox.provisioning.runtime import enforce_agreement_status
from sandbox.web.i18n import language, translator
from sandbox.web.rendering import page_router, render, see_other

router = page_router()

#: key -> (Chinese, English)
MESSAGES: dict[str, tuple[str, str]] = {
    "register": ("违规行为公示", "Violation register"),
    "register_lead": ("依据《上海市公共数据开放暂行办法》第二十八条公示违法违规行为和处理措施。", "Violations and the measures taken, published under Shanghai Art.28."),
    "organisation": ("单位", "Organisation"), "measure": ("处理措施", "Measure"),
    "date": ("日期", "Date"), "nothing_published": ("暂无公示。", "Nothing published."),
    "measure_limit": ("限制数据获取权限", "access limited"), "measure_close": ("关闭数据获取权限", "access closed"),
    "measure_terminate": ("终止数据服务", "service terminated"), "measure_record_only": ("予以记录", "recorded"),
    "report": ("举报与安全问题报告", "Report misuse or a security problem"),
    "kind_misuse": ("违法违规利用数据", "misuse of data"), "kind_security_problem": ("数据安全问题", "data security problem"),
    "description": ("描述", "Description"), "reporter": ("姓名（可匿名）", "Name (optional)"),
    "contact_optional": ("联系方式（可选）", "Contact (optional)"), "dataset_optional": ("涉及的数据集（可选）", "Dataset concerned (optional)"),
    "submit": ("提交", "Submit"), "demand": ("数据开放需求", "Request data to be opened"),
    "requester": ("姓名或单位", "Name or organisation"), "contact": ("联系方式", "Contact"),
    "wanted": ("需要的数据", "Data wanted"), "use": ("用途", "What for"), "domain": ("领域", "Domain"),
    "receipt": ("回执码", "Receipt code"), "receipt_keep": ("请保存回执码，凭此查询处理结果；它只显示这一次。", "Keep this receipt code to read the answer; it is shown only once."),
    "check_receipt": ("查询处理结果", "Read the answer"), "status": ("状态", "Status"), "answer": ("答复", "Answer"),
    "desk": ("监督事项", "Oversight"), "violations": ("违规记录", "Violations"), "tipoffs": ("举报与安全问题", "Tip-offs and security problems"),
    "quality_tasks": ("数据质量整改任务", "Data-quality rectification tasks"), "demands": ("数据开放需求", "Data requests"),
    "overdue": ("已逾期", "overdue"), "due_on": ("响应期限", "Respond by"), "to": ("处理为", "Move to"),
    "go": ("确定", "Apply"), "reason": ("理由", "Reason"), "days": ("整改天数", "Rectification days"),
    "publish": ("公示", "Publish"), "rectified": ("确认已整改", "Confirm rectified"), "none": ("无", "none"),
    "record_violation": ("记录违规行为", "Record a violation"), "agreement": ("协议", "Agreement"),
    "researcher": ("数据利用主体", "Researcher"), "evidence": ("证据", "Evidence"),
    "references": ("证据出处（每行一条）", "References (one a line)"), "alert": ("预警编号", "Alert #"),
    "tipoff": ("举报编号", "Tip-off #"), "raise_task": ("发起整改任务", "Raise a rectification task"),
    "objection": ("异议编号", "Objection #"), "require_new_version": ("须发布新版本后方可办结", "closing needs a new published version"),
}  # fmt: skip


def oversight_translator(lang: str) -> Callable[[str], str]:
    """These pages' messages first, then the shared catalogue."""
    i, shared = (0 if lang == "zh" else 1), translator(lang)

    def t(key: str) -> str:
        found = MESSAGES.get(key)
        return found[i] if found else shared(key)

    return t


def show(request: Request, template: str, context: dict[str, Any] | None = None) -> HTMLResponse:
    return render(
        request, template, {"t": oversight_translator(language(request)), **(context or {})}
    )


class TipOffForm(BaseModel):
    kind: Name = "misuse"
    description: LongText = ""
    reporter: Name = ""
    contact: Name = ""
    dataset: Name = ""


class DemandForm(BaseModel):
    requester: Name = ""
    contact: Name = ""
    title: Title = ""
    description: LongText = ""
    domain: Name = ""


class MoveForm(BaseModel):
    to: Name = ""
    answer: LongText = ""
    dataset: Name = ""


class MeasureForm(BaseModel):
    measure: Name = ""
    reason: LongText = ""
    rectification_days: Days | None = None


class ViolationForm(BaseModel):
    kind: Name = ""
    evidence: LongText = ""
    references: LongText = ""
    agreement_id: Name = ""
    researcher: Name = ""
    alert_id: RowId | None = None
    tipoff_id: RowId | None = None


class TaskForm(BaseModel):
    dataset: Name = ""
    description: LongText = ""
    objection_id: RowId | None = None
    require_new_version: bool = False


@router.get("/violations")
def register(request: Request, db: DbDep) -> HTMLResponse:
    with db.tx() as session:
        entries = violations.public_register(session)
    return show(request, "oversight/register.html", {"entries": entries})


@router.get("/report")
def report_form(request: Request) -> HTMLResponse:
    return show(request, "oversight/report.html", {"kinds": list(tipoffs.KINDS)})


@router.post("/report")
def report(
    request: Request, db: DbDep, user: MaybeUserDep, form: Annotated[TipOffForm, Form()]
) -> HTMLResponse:
    with db.tx() as session:
        tip, code = tipoffs.submit_tipoff(session=session, actor=user, **form.model_dump())
        case = receipt_view(tip)
    return show(request, "oversight/receipt.html", {"case": case, "code": code, "kind": "tipoff"})


@router.get("/demand")
def demand_form(request: Request) -> HTMLResponse:
    return show(request, "oversight/demand.html")


@router.post("/demand")
def submit_demand(request: Request, db: DbDep, form: Annotated[DemandForm, Form()]) -> HTMLResponse:
    with db.tx() as session:
        d, code = demand.submit_demand(session=session, **form.model_dump())
        case = receipt_view(d)
    return show(request, "oversight/receipt.html", {"case": case, "code": code, "kind": "demand"})


@router.post("/receipt/{kind}")
def read_receipt(
    request: Request, kind: str, db: DbDep, receipt: Annotated[str, Form()] = ""
) -> HTMLResponse:
    model = TipOff if kind == "tipoff" else Demand
    with db.tx() as session:
        case = receipt_view(find_by_receipt(session, model, receipt))
    return show(request, "oversight/receipt.html", {"case": case, "code": "", "kind": kind})


@router.get("/oversight")
def desk(request: Request, db: DbDep, user: UserDep) -> HTMLResponse:
    """Everything the user handles; a provider sees its own, the authority and operator all."""
    require_role(user, Role.provider, Role.operator, Role.authority)
    day = today()
    with db.tx() as session:
        context = {
            "violations": [violation_view(v) for v in violations.list_violations(session, user)],
            "tipoffs": [tipoff_view(t) for t in tipoffs.list_tipoffs(session, user)],
            "tasks": [
                quality_task_view(t, day) for t in quality.list_tasks(session, user, today=day)
            ],
            "demands": [demand_view(d) for d in demand.list_demands(session, user)],
            "kinds": list(violations.KINDS),
            "measures": list(violations.MEASURES),
            "next": {
                "tipoff": tipoffs.WORKFLOW.allowed,
                "task": quality.WORKFLOW.allowed,
                "demand": demand.WORKFLOW.allowed,
            },
        }
    return show(request, "oversight/desk.html", context)


@router.post("/oversight/violations")
def record_violation(
    db: DbDep, user: UserDep, form: Annotated[ViolationForm, Form()]
) -> RedirectResponse:
    fields = form.model_dump()
    fields["references"] = form.references.splitlines()
    with db.tx() as session:
        violations.record_violation(session=session, actor=user, **fields)
    return see_other("/oversight#violations")


@router.post("/oversight/violations/{violation_id}/measure")
def apply_measure(
    violation_id: int,
    db: DbDep,
    settings: SettingsDep,
    user: UserDep,
    form: Annotated[MeasureForm, Form()],
) -> RedirectResponse:
    with db.tx() as session:
        v = violations.apply_measure(
            session=session, actor=user, violation_id=violation_id, today=today(),
            **form.model_dump(),
        )  # fmt: skip
        agreement_id = v.agreement_id
    # A measure that closed access stops the agreement's running workspaces before answering.
    enforce_agreement_status(settings, db.tx, [agreement_id], actor=user.username)
    return see_other("/oversight#violations")


@router.post("/oversight/violations/{violation_id}/rectified")
def confirm_rectified(
    violation_id: int, db: DbDep, user: UserDep, reason: Annotated[str, Form()] = ""
) -> RedirectResponse:
    with db.tx() as session:
        violations.confirm_rectified(
            session=session, actor=user, violation_id=violation_id, reason=reason, today=today()
        )
    return see_other("/oversight#violations")


@router.post("/oversight/violations/{violation_id}/publish")
def publish(violation_id: int, db: DbDep, user: UserDep) -> RedirectResponse:
    with db.tx() as session:
        violations.publish_violation(
            session=session, actor=user, violation_id=violation_id, today=today()
        )
    return see_other("/oversight#violations")


@router.post("/oversight/tipoffs/{tipoff_id}")
def handle_tipoff(
    tipoff_id: int, db: DbDep, user: UserDep, form: Annotated[MoveForm, Form()]
) -> RedirectResponse:
    with db.tx() as session:
        tipoffs.handle_tipoff(
            session=session, actor=user, tipoff_id=tipoff_id, to=form.to, answer=form.answer
        )
    return see_other("/oversight#tipoffs")


@router.post("/oversight/quality-tasks")
def raise_task(
    db: DbDep, user: UserDep, calendar: CalendarDep, form: Annotated[TaskForm, Form()]
) -> RedirectResponse:
    with db.tx() as session:
        quality.raise_task(
            session=session, actor=user, today=today(), calendar=calendar, **form.model_dump()
        )
    return see_other("/oversight#quality-tasks")


@router.post("/oversight/quality-tasks/{task_id}")
def handle_task(
    task_id: int, db: DbDep, user: UserDep, form: Annotated[MoveForm, Form()]
) -> RedirectResponse:
    with db.tx() as session:
        quality.handle_task(
            session=session, actor=user, task_id=task_id, to=form.to, answer=form.answer
        )
    return see_other("/oversight#quality-tasks")


@router.post("/oversight/demands/{demand_id}")
def handle_demand(
    demand_id: int, db: DbDep, user: UserDep, form: Annotated[MoveForm, Form()]
) -> RedirectResponse:
    with db.tx() as session:
        demand.handle_demand(session=session, actor=user, demand_id=demand_id, **form.model_dump())
    return see_other("/oversight#demands")
