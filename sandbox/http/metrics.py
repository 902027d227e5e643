"""What operators see of a running platform and its query workers, in Prometheus's format.

Counters of this process count what it *committed*: a SQLAlchemy session listener looks at
the rows each transaction adds (queries in the query log, audit events, privacy charges,
failed sign-ins) and counts them once the transaction commits, so a rolled-back query or
charge is never counted, and the code that writes those rows needs no metrics calls. The
platform adds gauges read from the database at scrape time
(:class:`PlatformCollector`): the record's length and how much of it no signed checkpoint
covers yet, workspaces by status (and running containers where the platform runs them),
each agreement's ε spent and total. Nothing here carries a data value, a query text or a
person's name (R16: operators run the platform without reading the data).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from export_review.ledger import EPSILON_UNIT, PrivacyBudget, PrivacyCharge
from query_guard.service.models import QueryLog
from sandbox.accounts.attempts import SignInAttempt
from sandbox.audit.models import AuditCheckpoint, AuditEvent, AuditOutbox
from sandbox.db.base import read_only
from sandbox.db.committed import PENDING
from sandbox.provisioning.models import Workspace
from sandbox.settings import Settings

QUERIES = Counter(
    "sandbox_queries",
    "Queries through the guard, by decision (allow, rewrite, block, error) and agreement mode",
    ["decision", "mode"],
)
QUERY_SECONDS = Histogram(
    "sandbox_query_duration_seconds",
    "Guard and engine time of each query, as recorded in the query log",
    ["decision"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
AUDIT_APPENDS = Counter("sandbox_audit_appends", "Events this process appended to the audit record")
EPSILON_CHARGED = Counter(
    "sandbox_dp_epsilon_charged", "ε this process charged to an agreement's budget", ["agreement"]
)
SIGN_IN_FAILURES = Counter(
    "sandbox_sign_in_failures", "Failed password sign-ins (wrong name or password)", ["channel"]
)
SIGN_IN_THROTTLED = Counter(
    "sandbox_sign_in_throttled",
    "Sign-ins refused by the backoff before the password was looked at",
    ["channel", "rule"],
)

_installed = False


def sign_in_throttled(channel: str, rule: str) -> None:
    """Count one attempt the backoff refused (nothing is written for it)."""
    SIGN_IN_THROTTLED.labels(channel, rule).inc()


def _observation(row: object) -> tuple[Any, ...] | None:
    """What a new row will count once committed; read now, while its attributes are set."""
    if isinstance(row, AuditEvent):
        return ("audit",)
    if isinstance(row, QueryLog):
        return ("query", row.action, row.mode, row.duration_ms or 0)
    if isinstance(row, PrivacyCharge):
        return ("epsilon", row.agreement_id, row.epsilon)
    if isinstance(row, SignInAttempt) and not row.succeeded:
        return ("sign_in_failure", row.channel)
    return None


def _count(observation: tuple[Any, ...]) -> None:
    kind, *values = observation
    if kind == "audit":
        AUDIT_APPENDS.inc()
    elif kind == "query":
        decision, mode, duration_ms = values
        QUERIES.labels(decision, mode).inc()
        QUERY_SECONDS.labels(decision).observe(duration_ms / 1000)
    elif kind == "epsilon":
        agreement, units = values
        EPSILON_CHARGED.labels(agreement).inc(units / EPSILON_UNIT)
    elif kind == "sign_in_failure":
        SIGN_IN_FAILURES.labels(*values).inc()


def _after_flush(session: Session, _context: object) -> None:
    seen = [o for o in map(_observation, session.new) if o is not None]
    if seen:
        session.info.setdefault(PENDING, []).extend(seen)


def _after_commit(session: Session) -> None:
    for observation in session.info.pop(PENDING, []):
        _count(observation)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # rolled back (a commit has emptied the list already)
        session.info.pop(PENDING, None)


def install_counting() -> None:
    """Count committed rows in every session of this process (idempotent)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_transaction_end", _after_transaction_end)
    _installed = True


class PlatformCollector:
    """Gauges read from the platform's database at each scrape."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings):
        self.sessions = sessions
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        with read_only(self.sessions) as session:
            head = session.scalar(select(func.max(AuditEvent.seq))) or 0
            waiting = session.scalar(select(func.count()).select_from(AuditOutbox)) or 0
            anchored = session.execute(
                select(AuditCheckpoint.seq, AuditCheckpoint.at)
                .order_by(AuditCheckpoint.seq.desc())
                .limit(1)
            ).first()
            statuses = session.execute(
                select(Workspace.status, func.count()).group_by(Workspace.status)
            ).all()
            budgets = session.execute(
                select(
                    PrivacyBudget.agreement_id,
                    PrivacyBudget.epsilon_spent,
                    PrivacyBudget.epsilon_total,
                )
            ).all()
        yield GaugeMetricFamily(
            "sandbox_audit_events", "Events in the audit record (its head's number)", value=head
        )
        yield GaugeMetricFamily(
            "sandbox_audit_outbox_events",
            "Events committed with their change and not yet linked into the chain (the lag)",
            value=waiting,
        )
        yield GaugeMetricFamily(
            "sandbox_audit_unanchored_events",
            "Events after the last signed checkpoint (what no checkpoint covers yet)",
            value=head - (anchored.seq if anchored else 0),
        )
        if anchored is not None:
            at = datetime.strptime(anchored.at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            yield GaugeMetricFamily(
                "sandbox_audit_checkpoint_age_seconds",
                "Seconds since the last signed checkpoint of the record",
                value=(datetime.now(UTC) - at).total_seconds(),
            )
        workspaces = GaugeMetricFamily(
            "sandbox_workspaces", "Provisioned workspaces by status", labels=["status"]
        )
        for status, n in statuses:
            workspaces.add_metric([status], n)
        yield workspaces
        running = running_workspaces(self.settings)
        if running is not None:
            yield GaugeMetricFamily(
                "sandbox_workspaces_running",
                "Workspace containers running now (Docker's count)",
                value=running,
            )
        spent = GaugeMetricFamily(
            "sandbox_dp_epsilon_spent", "ε spent of each agreement's budget", labels=["agreement"]
        )
        total = GaugeMetricFamily(
            "sandbox_dp_epsilon_total", "Each agreement's total ε budget", labels=["agreement"]
        )
        for agreement, used, whole in budgets:
            spent.add_metric([agreement], used / EPSILON_UNIT)
            total.add_metric([agreement], whole / EPSILON_UNIT)
        yield spent
        yield total


def running_workspaces(settings: Settings) -> int | None:
    """Running workspace containers, or ``None`` when this platform runs none or Docker
    does not answer (then the gauge is absent rather than a false 0)."""
    from sandbox.provisioning.runtime import runs_workspaces

    if not runs_workspaces(settings):
        return None
    try:
        import docker

        from sandbox.workspaces.names import LABEL_ROLE

        client = docker.from_env()
        return len(client.containers.list(filters={"label": f"{LABEL_ROLE}=workspace"}))
    except Exception:  # no engine: say nothing rather than something false
        return None


def exposition(*collectors: object) -> bytes:
    """This process's counters and the given collectors' gauges, in the text format."""
    text = generate_latest(REGISTRY)
    if collectors:
        registry = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            registry.register(collector)  # type: ignore[arg-type]
        text += generate_latest(registry)
    return text
