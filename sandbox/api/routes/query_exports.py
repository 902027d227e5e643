"""Export requests through the workspace's only door (issue 4, item 1).

A researcher's kernel hands files in one of the agreement's output forms (a table, a
figure's table with its chart specification, a report, code) with their purpose and
the queries behind them, or turns a DP release into an export candidate (a dp_table,
or a figure drawn from it).
The platform's automatic checks run at submission; a provider reviews; only a
released bundle ever leaves (THREAT_MODEL boundary 3).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, UploadFile
from pydantic import BaseModel, Field, JsonValue
from sqlalchemy.orm import Session

from export_review.chart import ChartSpec, check_columns, parse_chart
from export_review.dp_plan import plan_query
from export_review.dp_service import charge, compute
from export_review.requests import (
    automatic_checks,
    create_request,
    files_of,
    list_requests,
    submit_dp_result,
    submit_request,
)
from query_guard.service.access import Caller
from sandbox.api.routes.exports import export_view, json_field
from sandbox.api.routes.query_service import (
    CallerDep,
    Epsilon,
    QuerySql,
    RecordedRefusals,
    ServiceDep,
)
from sandbox.audit.advance import advance
from sandbox.db.base import transaction
from sandbox.errors import SandboxError, ValidationFailed
from sandbox.input_limits import LongText

router = APIRouter(prefix="/qs", tags=["query service"], route_class=RecordedRefusals)


@router.post("/exports/check")
def check_files_first(
    caller: CallerDep,
    service: ServiceDep,
    files: list[UploadFile],
    form: Annotated[str, Form()] = "",
    queries: Annotated[str, Form()] = "",
    chart: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    """The automatic checks a submission would run, on files not yet submitted: the
    researcher fixes mechanical problems before a reviewer spends time. Nothing is stored."""
    with tempfile.TemporaryDirectory(prefix="export-check-") as tmp:
        paths = []
        for upload in files:
            name = Path(upload.filename or "").name
            if not name or name.startswith("."):
                raise ValidationFailed("files need plain names", rule="export-file-name")
            paths.append(Path(tmp) / name)
            paths[-1].write_bytes(upload.file.read())
        with transaction(service.sessions) as session:
            try:
                checks = automatic_checks(
                    session,
                    caller.agreement,
                    form=form,
                    paths=paths,
                    chart=json_field(chart, "chart", None),
                    queries=json_field(queries, "queries", []),
                    cursors=service.cache.cursor,
                )
            except SandboxError as exc:
                return {"ok": False, "refused": exc.to_dict()}
    return {"ok": True, "checks": checks}


@router.post("/exports", status_code=201)
def submit_files(
    caller: CallerDep,
    service: ServiceDep,
    purpose: Annotated[str, Form()],
    files: list[UploadFile],
    form: Annotated[str, Form()] = "",
    queries: Annotated[str, Form()] = "",
    chart: Annotated[str, Form()] = "",
) -> dict[str, Any]:
    """Create and submit an export request; the answer carries the automatic checks' verdict."""
    content = [(f.filename or "", f.file.read()) for f in files]

    def hand_in(session: Session) -> dict[str, Any]:
        req = create_request(
            session=session,
            settings=service.settings,
            actor=caller.user,
            agreement_id=caller.agreement_id,
            purpose=purpose,
            form=form,
            files=content,
            queries=json_field(queries, "queries", []),
            chart=json_field(chart, "chart", None),
        )
        req = submit_request(
            session=session, actor=caller.user, request_id=req.id, cursors=service.cache.cursor
        )
        return export_view(req, [f.name for f in files_of(session, req)])

    return advance(service.sessions, "export.submit", hand_in)


class DpExportIn(BaseModel):
    sql: QuerySql
    epsilon: Epsilon
    purpose: LongText = Field(min_length=1)
    #: A chart specification (``export_review.chart``): the release leaves as a figure.
    chart: dict[str, JsonValue] | None = None


@router.post("/dp-exports", status_code=201)
def dp_export(body: DpExportIn, caller: CallerDep, service: ServiceDep) -> dict[str, Any]:
    """Release with DP and submit the result for review, as a dp_table or, with a chart
    specification, as a figure drawn from it. The charge, its event and the request's
    draft commit in one step before any noise is drawn; the result and the submission in
    the next, before anything is shown."""

    if body.chart is not None:
        check_figure_columns(body.sql, parse_chart(body.chart), caller)

    def draft(session: Session) -> int:
        return create_request(
            session=session,
            settings=service.settings,
            actor=caller.user,
            agreement_id=caller.agreement_id,
            purpose=body.purpose,
            form="dp_table" if body.chart is None else "figure",
            queries=[body.sql],
            chart=body.chart,
            dp_pending=True,
        ).id

    charged = charge(
        caller,
        body.sql,
        body.epsilon,
        sessions=service.sessions,
        key=service.record_key,
        draft=draft,
    )
    export_id = charged.export_id
    assert export_id is not None
    result = compute(charged, cache=service.cache, database=service.database(caller))

    def hand_in(session: Session) -> dict[str, Any]:
        req = submit_dp_result(
            session=session,
            actor=caller.user,
            request_id=export_id,
            result=result,
            cursors=service.cache.cursor,
        )
        return {"release": result, "export": export_view(req, [])}

    return advance(service.sessions, "export.submit", hand_in)


def check_figure_columns(sql: str, spec: ChartSpec, caller: Caller) -> None:
    """Refuse a chart naming columns the release will not have, before anything is charged;
    a query that cannot be planned is left for the release itself to refuse and record."""
    try:
        plan = plan_query(sql, caller.agreement, caller.guard.catalog)
    except SandboxError:
        return
    check_columns(spec, [o.name for o in plan.outputs])


@router.get("/exports")
def my_exports(caller: CallerDep, service: ServiceDep) -> list[dict[str, Any]]:
    """The agreement's export requests and their state."""
    with transaction(service.sessions) as session:
        return [
            export_view(r, [f.name for f in files_of(session, r)])
            for r in list_requests(session, caller.user, caller.agreement_id)
        ]
