"""The anomalies the query service watches for after each query (R12; Shanghai Art.37).

Each detector looks at the query just logged and the log before it, and
returns the details of an alert to raise, or ``None``. They read only the
database (never process memory), so any number of workers see the same
history. A detector stays quiet while an alert of its kind for the same
pattern is recent, so one burst raises one alert, not one per query.

- *repeated blocks*: a researcher keeps sending queries the guard refuses;
- *differencing*: two queries of one shape whose WHERE conditions differ only
  by added or removed predicates — subtracting their answers isolates the
  narrow slice in between (THREAT_MODEL: differencing across queries);
- *bulk extraction*: in record mode, the rows returned in one day exceed a
  multiple of the agreement's ``disclosure.max_result_rows``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from query_guard.early_warning.models import Alert, AlertKind, DayRows
from query_guard.service.models import QueryLog
from sandbox.contracts.agreement import Agreement

REPEATED_BLOCKS = 5
BLOCK_WINDOW = timedelta(minutes=10)
DIFFERENCING_WINDOW = timedelta(hours=1)
#: Rows per day, as a multiple of ``disclosure.max_result_rows``, that count as bulk extraction.
BULK_FACTOR = 10
EXECUTED = ("allow", "rewrite")


@dataclass(frozen=True)
class Observation:
    """The query just logged, with what the detectors need to judge it."""

    entry: QueryLog
    agreement: Agreement
    now: datetime
    #: Start of the current calendar day in the platform's time zone, as UTC.
    day_start: datetime
    day: str


# The detectors' statements, built once: each query runs several of them inside the write
# transaction that records it, where building them anew cost more than running them.
_LOG = QueryLog.__table__.c
_ALERT = Alert.__table__.c
_DAY = DayRows.__table__
_RECENT_ALERTS = select(_ALERT.researcher, _ALERT.details).where(
    _ALERT.agreement_id == bindparam("agreement"),
    _ALERT.kind == bindparam("kind"),
    _ALERT.created_at >= bindparam("since"),
)
_RECENT_BLOCKS = select(_LOG.id).where(
    _LOG.agreement_id == bindparam("agreement"),
    _LOG.researcher == bindparam("researcher"),
    _LOG.action == "block",
    _LOG.at >= bindparam("since"),
)
# One row per other set of conditions (the latest): a query repeated under load must not
# make every later query read all its repetitions.
_OTHER_CONDITIONS = (
    select(_LOG.id, _LOG.where_terms)
    .where(
        _LOG.id.in_(
            select(func.max(_LOG.id))
            .where(
                _LOG.agreement_id == bindparam("agreement"),
                _LOG.shape == bindparam("shape"),
                _LOG.terms_key != bindparam("terms_key"),
                _LOG.action.in_(EXECUTED),
                _LOG.at >= bindparam("since"),
            )
            .group_by(_LOG.terms_key)
        )
    )
    .order_by(_LOG.id.desc())
)
_ROWS_LOGGED = select(func.coalesce(func.sum(_LOG.rows), 0)).where(
    _LOG.agreement_id == bindparam("agreement"),
    _LOG.action.in_(EXECUTED),
    _LOG.at >= bindparam("since"),
)
_ADD_ROWS = (
    update(_DAY)
    .where(_DAY.c.agreement_id == bindparam("agreement"), _DAY.c.day == bindparam("on_day"))
    .values(rows=_DAY.c.rows + bindparam("added"))
    .returning(_DAY.c.rows)
)


def _start_rows(insert: Callable[..., Any]) -> Any:
    """The day's first total, or (when another query started it meanwhile) an addition."""
    return (
        insert(_DAY)
        .values(
            agreement_id=bindparam("agreement"), day=bindparam("on_day"), rows=bindparam("logged")
        )
        .on_conflict_do_update(
            index_elements=[_DAY.c.agreement_id, _DAY.c.day],
            set_={"rows": _DAY.c.rows + bindparam("added")},
        )
        .returning(_DAY.c.rows)
    )


_START_ROWS = {"sqlite": _start_rows(sqlite_insert), "postgresql": _start_rows(postgresql_insert)}


def _recent_alerts(session: Session, obs: Observation, kind: AlertKind, since: datetime) -> list:
    """Alerts of ``kind`` raised on the agreement since ``since`` (researcher, details)."""
    params = {"agreement": obs.entry.agreement_id, "kind": kind, "since": since}
    return list(session.connection().execute(_RECENT_ALERTS, params))


def repeated_blocks(session: Session, obs: Observation) -> dict[str, Any] | None:
    entry = obs.entry
    if entry.action != "block":
        return None
    since = obs.now - BLOCK_WINDOW
    params = {"agreement": entry.agreement_id, "researcher": entry.researcher, "since": since}
    blocked = list(session.connection().execute(_RECENT_BLOCKS, params).scalars())
    if len(blocked) < REPEATED_BLOCKS:
        return None
    if any(
        a.researcher == entry.researcher
        for a in _recent_alerts(session, obs, AlertKind.repeated_blocks, since)
    ):
        return None
    return {
        "blocks": len(blocked),
        "threshold": REPEATED_BLOCKS,
        "window_minutes": int(BLOCK_WINDOW.total_seconds() // 60),
        "query_log_ids": sorted(blocked),
    }


def differencing(session: Session, obs: Observation) -> dict[str, Any] | None:
    entry = obs.entry
    if entry.action not in EXECUTED or entry.shape is None:
        return None
    since = obs.now - DIFFERENCING_WINDOW
    terms = set(entry.where_terms)
    params = {
        "agreement": entry.agreement_id,
        "shape": entry.shape,
        "terms_key": entry.terms_key,
        "since": since,
    }
    other = next(
        (
            row
            for row in session.connection().execute(_OTHER_CONDITIONS, params)
            if terms < set(row.where_terms) or set(row.where_terms) < terms
        ),
        None,
    )
    if other is None or any(  # quiet while this shape's alert is recent
        a.details.get("shape") == entry.shape
        for a in _recent_alerts(session, obs, AlertKind.differencing, since)
    ):
        return None
    return {
        "shape": entry.shape,
        "predicates_differing": len(terms ^ set(other.where_terms)),
        "query_log_ids": [other.id, entry.id],
        "window_minutes": int(DIFFERENCING_WINDOW.total_seconds() // 60),
    }


def _rows_today(session: Session, obs: Observation) -> int:
    """Rows the agreement's executed queries returned today, this query's included: the
    running total gains this query's rows; the day's first query starts it from the log
    (which then holds this query too). Two first queries at once (PostgreSQL) meet in the
    insert's conflict clause, where the second adds its rows to the first's total."""
    connection = session.connection()
    params = {"agreement": obs.entry.agreement_id, "on_day": obs.day, "added": obs.entry.rows}
    total = connection.execute(_ADD_ROWS, params).scalar()
    if total is not None:
        return total
    logged = connection.execute(_ROWS_LOGGED, {**params, "since": obs.day_start}).scalar_one()
    start = _START_ROWS[connection.dialect.name]
    return connection.execute(start, {**params, "logged": logged}).scalar_one()


def bulk_extraction(session: Session, obs: Observation) -> dict[str, Any] | None:
    entry = obs.entry
    if obs.agreement.mode != "record" or entry.action not in EXECUTED:
        return None
    rows = _rows_today(session, obs)
    cap = obs.agreement.disclosure.max_result_rows
    threshold = BULK_FACTOR * cap
    if rows <= threshold:
        return None
    if any(
        a.details.get("day") == obs.day
        for a in _recent_alerts(session, obs, AlertKind.bulk_extraction, obs.day_start)
    ):
        return None
    return {
        "day": obs.day,
        "rows_today": int(rows),
        "threshold": threshold,
        "max_result_rows": cap,
        "factor": BULK_FACTOR,
    }


Detector = Callable[[Session, Observation], dict[str, Any] | None]
DETECTORS: tuple[tuple[AlertKind, Detector], ...] = (
    (AlertKind.repeated_blocks, repeated_blocks),
    (AlertKind.differencing, differencing),
    (AlertKind.bulk_extraction, bulk_extraction),
)
