"""One query through the door: guard, hardened engine, record, early warnings.

Plain functions, no web framework: the router and the worker call them. The
guard decides from the text alone; the engine runs only what the guard
returned, on the agreement's own database; and every query — allowed,
rewritten, blocked or failed — is recorded in its own transaction before any
answer is given (Shanghai Art.19-20, 44: a query that is not recorded is not
answered). The record's step is :func:`sandbox.audit.advance.advance`: the log row and the
event commit together, and the chain is linked after that commit.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from sqlalchemy.orm import Session

from query_guard.context import DESENSITISATION
from query_guard.decisions import Decisions
from query_guard.early_warning.models import Alert
from query_guard.early_warning.service import observe
from query_guard.engine import CARDINALITY_RULE, QUERY_ERROR_RULE, TIMEOUT_RULE, run_query
from query_guard.findings import Decision
from query_guard.guard import check_query
from query_guard.service.access import Caller
from query_guard.service.connections import ConnectionCache
from query_guard.service.fingerprint import redact_sql, redact_text, shape_of
from query_guard.service.models import QueryLog
from sandbox.audit.record import record
from sandbox.contracts.catalog_entry import Sensitivity
from sandbox.db.base import insert_row, utcnow
from sandbox.db.committed import count_on_commit
from sandbox.errors import Kind, PolicyViolation, SandboxError

QUERY_TIMEOUT_S = 30.0


class QueryBlocked(PolicyViolation):
    """The guard refused the query; the response carries every reason."""

    def __init__(self, decision: Decision):
        first = decision.reasons[0] if decision.reasons else None
        super().__init__(
            first.rule if first else "QG-000",
            first.article if first else None,
            "the guard blocked this query: "
            + "; ".join(f"[{r.rule}] {r.message}" for r in decision.reasons),
        )
        self.decision = decision

    def to_dict(self) -> dict[str, object]:
        return {
            **super().to_dict(),
            "action": "block",
            "reasons": [r.to_dict() for r in self.decision.reasons],
        }


class QueryFailed(SandboxError):
    """The engine could not complete a query the guard allowed.

    The message is the same whatever went wrong: an engine error may quote a
    value or fail only when a condition on one person holds, so its text must
    not depend on the data (THREAT_MODEL: error oracles).
    """

    rule = QUERY_ERROR_RULE
    article = DESENSITISATION
    kind = Kind.invalid

    def __init__(self) -> None:
        super().__init__(
            "the query passed the guard but could not be completed by the engine; "
            "simplify it (the reason is not shown, since it could reveal data)"
        )


@dataclass
class Outcome:
    """What happened to one query: the decision, then the result or the refusal."""

    decision: Decision
    table: pa.Table | None = None
    error: SandboxError | None = None
    duration_ms: int = 0
    alerts: list[Alert] = field(default_factory=list)

    @property
    def action(self) -> str:
        return "error" if self.error is not None else self.decision.action

    @property
    def rows(self) -> int:
        return self.table.num_rows if self.table is not None else 0


def execute(
    cache: ConnectionCache, path: Path, sql: str, timeout_s: float, planned: str | None = None
) -> pa.Table:
    """Run on the agreement's file (``planned``: see :func:`run_query`); every failure but
    the engine's own refusals (timeout, a join too large to start) becomes one fixed error."""
    with cache.open(path) as opened:
        try:
            return run_query(
                opened.cursor,
                sql,
                timeout_s,
                planned=planned,
                estimates=opened.estimates,
                plans=opened.plans,
            )
        except PolicyViolation as exc:
            if exc.rule in (TIMEOUT_RULE, CARDINALITY_RULE):
                raise
            raise QueryFailed() from exc
        except (SandboxError, duckdb.Error, pa.ArrowException) as exc:
            raise QueryFailed() from exc


def run_guarded(
    caller: Caller,
    sql: str,
    *,
    cache: ConnectionCache,
    database: Path,
    timeout_s: float = QUERY_TIMEOUT_S,
    decisions: Decisions | None = None,
) -> Outcome:
    """Check ``sql`` under the caller's agreement (through ``decisions`` where the process
    keeps them); unless blocked, run what the guard returned."""
    started = time.perf_counter()
    decide = decisions.decide if decisions is not None else check_query
    outcome = Outcome(decide(sql, caller.guard))
    if outcome.decision.sql is not None:
        try:
            decision = outcome.decision
            outcome.table = execute(cache, database, decision.sql, timeout_s, decision.checked)
        except SandboxError as exc:
            outcome.error = exc
    outcome.duration_ms = round((time.perf_counter() - started) * 1000)
    return outcome


def identifier_columns(caller: Caller) -> set[str]:
    """Identifier and entity columns of the agreement's datasets: literals compared with them
    are hashed in the record."""
    out = set()
    for name in caller.agreement.datasets:
        entry = caller.guard.catalog[name]
        out.update(c.name for c in entry.columns if c.sensitivity == Sensitivity.identifier)
        if entry.entity:
            out.add(entry.entity)
    return out


def record_query(
    session: Session, caller: Caller, sql: str, outcome: Outcome, *, key: bytes, timezone: str
) -> QueryLog:
    """Log the query, append its audit event and run the early warnings, in ``session``.

    Called inside :func:`sandbox.audit.advance.advance` (step ``query``), so the log row,
    the event and any alert commit together before the answer leaves.
    """
    ids = identifier_columns(caller)
    decision = outcome.decision
    shape = shape_of(key, sql)
    entry = QueryLog(
        agreement_id=caller.agreement_id,
        researcher=caller.user.username,
        action=outcome.action,
        mode=caller.agreement.mode,
        rows=outcome.rows,
        duration_ms=outcome.duration_ms,
        shape=shape.shape if shape else None,
        where_terms=list(shape.where_terms) if shape else [],
        terms_key=shape.terms_key if shape else None,
        at=utcnow(),
    )
    insert_row(session, entry)
    count_on_commit(session, "query", entry.action, entry.mode, entry.duration_ms)
    details: dict[str, object] = {
        "sql": redact_sql(key, sql, ids),
        "decision": decision.action,
        "reasons": [
            {"rule": r.rule, "article": r.article, "message": redact_text(key, r.message)}
            for r in decision.reasons
        ],
        "rows": outcome.rows,
        "duration_ms": outcome.duration_ms,
        "mode": caller.agreement.mode,
        "query_log": entry.id,
    }
    if decision.checked is not None and decision.sql:
        # Aggregate mode: the checked query and the digest of what it compiled to, which
        # the same guard derives from it alike; redacting the compiled text (thousands of
        # characters) cost the worker more than deciding.
        details["ran"] = redact_sql(key, decision.checked, ids)
        details["compiled_sha256"] = hashlib.sha256(decision.sql.encode()).hexdigest()
    elif decision.action == "rewrite" and decision.sql:
        details["ran"] = redact_sql(key, decision.sql, ids)
    if outcome.error is not None:
        details["error"] = {"rule": outcome.error.rule, "article": outcome.error.article}
    record(
        session,
        actor=caller.user.username,
        action="query",
        object=f"agreement:{caller.agreement_id}",
        details=details,
    )
    outcome.alerts = observe(session, entry, caller.agreement, timezone=timezone)
    return entry
