"""The query service's HTTP routes (prefix ``/qs``): the workspace's only door.

Every route authenticates a workspace token bound to one (researcher,
agreement) pair; nothing here ever serves another agreement's data. Mounted
in the platform app it serves every agreement (single-process mode, for
development and tests); in deployment :mod:`sandbox.apps.worker` serves
one agreement per process.
"""

from __future__ import annotations

import io
import json
import math
import threading
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session, sessionmaker

from export_review.dp_service import release
from export_review.forms import allowed_forms
from query_guard.anonymise.result import METADATA_KEY as DISCLOSURE_KEY
from query_guard.compile import column_types
from query_guard.decisions import Decisions
from query_guard.engine import open_readonly
from query_guard.findings import Decision
from query_guard.keys import noise_secret
from query_guard.service.access import Caller, Callers
from query_guard.service.connections import ConnectionCache
from query_guard.service.fingerprint import nesting_depth, redact_sql, redact_text
from query_guard.service.queries import (
    QueryBlocked,
    identifier_columns,
    record_query,
    run_guarded,
)
from sandbox.audit.advance import advance
from sandbox.audit.record import record
from sandbox.db.base import transaction
from sandbox.errors import SandboxError
from sandbox.feedback.usage import submit_usage_report
from sandbox.input_limits import (
    SQL_CHARS,
    SQL_NESTING,
    Epsilon,
    LongText,
    Sql,
    input_refusal,
    text_problem,
)
from sandbox.keys.store import key_store
from sandbox.provisioning.database import database_path
from sandbox.settings import Settings
from sandbox.workspaces.limits import shown_limits
from sandbox.workspaces.welcome import welcome_notebook

ARROW_STREAM = "application/vnd.apache.arrow.stream"
#: Schema metadata key carrying the guard's decision in an Arrow response.
DECISION_KEY = b"query_guard.decision"
MAX_SQL_CHARS = SQL_CHARS
NESTING_RULE = "sql-nesting"
#: What a refused request is recorded as: a DP request like every other refused one.
REFUSED_ACTIONS = {
    "/qs/query": "query.refused",
    "/qs/dp": "dp.release",
    "/qs/dp-exports": "dp.release",
}


class QueryService:
    """What the routes share: settings, the control plane's database, open DuckDB files."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        only_agreement: str | None = None,
    ):
        self.settings = settings
        self.sessions = sessions
        self.only_agreement = only_agreement
        tmp = settings.data_dir / "query-tmp"
        secret = noise_secret(settings.keys_dir)
        keys = key_store(settings)
        self.cache = ConnectionCache(
            lambda path: open_readonly(
                path,
                temp_dir=_tmp_dir(tmp, path),
                noise_secret=secret,
                encryption_key=keys.data_key(path.stem),  # the file is <agreement id>.duckdb
            )
        )
        self.decisions = Decisions()
        self.callers = Callers()

    @property
    def record_key(self) -> bytes:
        """Key of the hashes that replace identifier literals in the record."""
        return self.settings.secret_key.encode()

    def database(self, caller: Caller) -> Path:
        return database_path(self.settings, caller.agreement_id)


def _tmp_dir(root: Path, database: Path) -> Path:
    path = root / database.stem
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


_SERVICE_LOCK = threading.Lock()


def get_service(request: Request) -> QueryService:
    """The app's query service; created on first use when the router is mounted in the
    platform app (which holds settings and the sessionmaker on ``app.state``)."""
    state = request.app.state
    with _SERVICE_LOCK:
        if getattr(state, "query_service", None) is None:
            state.query_service = QueryService(state.settings, state.sessionmaker)
    return state.query_service


async def _service(request: Request) -> QueryService:
    """:func:`get_service` as a dependency, on the event loop: it does not block, and a
    synchronous dependency costs a hand-off to a thread of its own."""
    return get_service(request)


ServiceDep = Annotated[QueryService, Depends(_service)]


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def get_caller(request: Request, service: ServiceDep) -> Caller:
    """The caller, read without a write lock (SQLite) so queries do not queue for it."""
    return service.callers.authorise(
        service.sessions, _token(request), only_agreement=service.only_agreement
    )


CallerDep = Annotated[Caller, Depends(get_caller)]


def _refusal_details(request_body: Any, caller: Caller, key: bytes) -> dict[str, Any]:
    """What of a refused request the record keeps: the SQL redacted as for any query
    (when it is storable text) and ε (as text when it is not a finite number)."""
    body = request_body if isinstance(request_body, dict) else {}
    details: dict[str, Any] = {}
    sql = body.get("sql")
    if isinstance(sql, str) and len(sql) <= SQL_CHARS and text_problem(sql) is None:
        details["sql"] = redact_sql(key, sql, identifier_columns(caller))
    epsilon = body.get("epsilon")
    if isinstance(epsilon, int | float) and not isinstance(epsilon, bool):
        details["epsilon"] = epsilon if math.isfinite(epsilon) else str(epsilon)
    return details


def record_refusal(request: Request, path: str, refusal: SandboxError, body: Any) -> None:
    """Record a refused request under the caller's agreement. A request without a live
    token is refused as such, whatever its body, as a route that authorises its caller
    before reading the body refuses it (and there is no agreement to record it for)."""
    service = get_service(request)
    caller = get_caller(request, service)
    details = {
        **_refusal_details(body, caller, service.record_key),
        "request": path,
        "refused": {"rule": refusal.rule, "article": refusal.article},
        "problem": redact_text(service.record_key, refusal.message),
    }
    advance(
        service.sessions,
        "refusal",
        lambda session: record(
            session,
            actor=caller.user.username,
            action=REFUSED_ACTIONS.get(path, "qs.refused"),
            object=f"agreement:{caller.agreement_id}",
            details=details,
        ),
    )


async def _json_body(request: Request) -> Any:
    try:
        return await request.json() if await request.body() else None
    except (ValueError, RuntimeError):
        return None  # not JSON, or a form FastAPI has read already


class RecordedRefusals(APIRoute):
    """A ``/qs`` route whose invalid requests are refused without echoing the input
    and, when the caller holds a live token, recorded for the agreement (R7)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def recorded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                refusal = input_refusal(exc.errors())
                body = await _json_body(request)
                await run_in_threadpool(record_refusal, request, self.path, refusal, body)
                raise refusal from None

        return recorded


router = APIRouter(prefix="/qs", tags=["query service"], route_class=RecordedRefusals)


def _shallow(sql: str) -> str:
    depth = nesting_depth(sql)
    if depth > SQL_NESTING:
        raise PydanticCustomError(
            "sql_nesting",
            "brackets nest {depth} levels deep; at most {limit} are allowed (name the inner "
            "queries in a WITH clause instead)",
            {"depth": depth, "limit": SQL_NESTING, "rule": NESTING_RULE},
        )
    return sql


#: SQL the door accepts: bounded, storable text, nested no deeper than the parser can go.
QuerySql = Annotated[Sql, Field(min_length=1), AfterValidator(_shallow)]


class QueryIn(BaseModel):
    sql: QuerySql


def _decision_json(decision: Decision) -> str:
    return json.dumps(decision.to_dict(), ensure_ascii=True)


def _arrow(table: pa.Table, decision: Decision) -> Response:
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k == DISCLOSURE_KEY}
    table = table.replace_schema_metadata({**meta, DECISION_KEY: _decision_json(decision).encode()})
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(
        sink.getvalue(), media_type=ARROW_STREAM, headers={"X-Guard-Action": decision.action}
    )


def _json(table: pa.Table, decision: Decision) -> JSONResponse:
    rows = [list(r.values()) for r in table.to_pylist()]
    disclosure = (table.schema.metadata or {}).get(DISCLOSURE_KEY)
    return JSONResponse(
        jsonable_encoder(
            {
                "decision": decision.to_dict(),
                "columns": table.column_names,
                "rows": rows,
                "disclosure": json.loads(disclosure) if disclosure else None,
            }
        ),
        headers={"X-Guard-Action": decision.action},
    )


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and ARROW_STREAM not in accept


@router.post("/query", responses={200: {"content": {ARROW_STREAM: {}, "application/json": {}}}})
def query(body: QueryIn, request: Request, service: ServiceDep) -> Response:
    """Run one SQL query under the caller's agreement; Arrow IPC stream unless JSON is asked for.

    Refusals: 401 without a live workspace token, 403 with the guard's reasons when
    blocked, 422 with one fixed message when the engine fails, 403 QG-013 when the query
    runs too long. The caller is authorised here rather than by a dependency, in the
    thread that answers: the busiest route, it then costs one hand-off to a thread.
    """
    caller = get_caller(request, service)
    outcome = run_guarded(
        caller,
        body.sql,
        cache=service.cache,
        database=service.database(caller),
        decisions=service.decisions,
    )
    advance(
        service.sessions,
        "query",
        lambda session: record_query(
            session,
            caller,
            body.sql,
            outcome,
            key=service.record_key,
            timezone=service.settings.timezone,
        ),
    )
    if outcome.decision.sql is None:
        raise QueryBlocked(outcome.decision)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.table is not None
    if _wants_json(request):
        return _json(outcome.table, outcome.decision)
    return _arrow(outcome.table, outcome.decision)


@router.get("/agreement")
def scope(caller: CallerDep) -> dict[str, Any]:
    """The caller's own scope: datasets, columns, mode and limits — never data."""
    agreement, ctx = caller.agreement, caller.guard
    datasets = {}
    for name, allowed in agreement.datasets.items():
        entry = ctx.catalog[name]
        view_types = column_types(agreement, entry)
        datasets[name] = {
            "title": entry.title,
            "suspended": name in ctx.suspended,
            "row_filter": allowed.row_filter,
            "columns": [
                {
                    "name": c,
                    "label": entry.column(c).label,
                    "type": entry.column(c).type,
                    # What the view holds: BIGINT for a pseudonymised identifier.
                    "view_type": view_types[c],
                    "sensitivity": entry.column(c).sensitivity.value,
                    "description": entry.column(c).description,
                }
                for c in allowed.columns
            ],
        }
    return {
        "id": agreement.id,
        "title": agreement.title,
        "purpose": agreement.purpose,
        "status": caller.record.status,
        "mode": agreement.mode,
        "valid_from": agreement.valid_from,
        "valid_until": agreement.valid_until,
        "datasets": datasets,
        "joins": agreement.joins,
        "disclosure": agreement.disclosure.model_dump(mode="json"),
        "privacy": agreement.privacy.model_dump(mode="json"),
        "outputs": agreement.outputs,
        # What each allowed output form is, in one sentence (export_review.forms).
        "output_forms": [
            {"form": f.name, "zh": f.zh, "en": f.en} for f in allowed_forms(agreement)
        ],
        "usage_reports": agreement.usage_reports,
    }


@router.get("/welcome.ipynb")
def welcome(caller: CallerDep) -> dict[str, Any]:
    """The welcome notebook of the caller's agreement (nbformat 4), which the workspace's
    start writes into a new home: views, rules, budget, examples that run, exports."""
    return welcome_notebook(caller.agreement, caller.guard.catalog, limits=shown_limits())


class UsageReportIn(BaseModel):
    period_end: date
    summary: LongText
    outputs: LongText = ""


@router.post("/usage-reports", status_code=201)
def usage_report(body: UsageReportIn, caller: CallerDep, service: ServiceDep) -> dict[str, Any]:
    """Report how the data was used for one reporting period (R8; Shanghai Art.25)."""
    with transaction(service.sessions) as session:
        report = submit_usage_report(
            session=session,
            actor=caller.user,
            agreement_id=caller.agreement_id,
            period_end=body.period_end,
            summary=body.summary,
            outputs=body.outputs,
        )
        return {
            "id": report.id,
            "agreement_id": report.agreement_id,
            "period_end": report.period_end.isoformat(),
            "due_on": report.due_on.isoformat(),
            "submitted_at": report.submitted_at.isoformat(),
        }


class DpIn(BaseModel):
    sql: QuerySql
    epsilon: Epsilon


@router.post("/dp")
def dp_release(body: DpIn, caller: CallerDep, service: ServiceDep) -> dict[str, Any]:
    """A differentially private release charged to the agreement's budget (``sandbox export
    dp`` contract): ``{"columns", "rows", "epsilon_spent", "epsilon_remaining",
    "delta_spent", "mechanisms"}``. Like every output it leaves the platform only after review."""
    return release(
        caller,
        body.sql,
        body.epsilon,
        sessions=service.sessions,
        cache=service.cache,
        database=service.database(caller),
        key=service.record_key,
    )
