"""Check a submitted table from its underlying rows, by re-running the query behind it.

Disclosure checks are computed from the rows behind each cell, not from the
numbers a researcher typed into a CSV (issue 4, item 3). For a files export
this is possible when one of the request's queries is a grouped query of one
dataset — the shape :func:`export_review.dp_plan.plan_query` accepts — whose
output columns are exactly the CSV's header. Then the query is checked by the
guard, the rows behind it (its group keys and aggregated column, under its
WHERE) are read from the agreement's own DuckDB database on the hardened
engine, restricted to the groups the CSV shows, and every aggregate column is
checked with :func:`export_review.disclosure.check_table` under the
agreement's thresholds.

When the rows cannot be derived (no matching query, no group keys, no
provisioned database, the query failed) ``why_not`` says which, and the reviewer has only the file
gate's verdict: nothing pretends a table was checked when it was not.

The rows are read through a :data:`CursorSource`. A process serving queries (a query worker,
or the platform with its ``/qs`` routes) lends a cursor of its query service's open
connection: DuckDB keeps one instance per file in a process and refuses a second connection
to it with other settings, so opening the file again there fails as soon as a query has
run. :func:`own_connection` is for a process that holds none, and needs the agreement's data
key: every agreement's database is encrypted (:func:`own_cursors` finds the key).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import sqlglot
from sqlalchemy.orm import Session
from sqlglot import exp

from export_review.at_rest import plain_copies
from export_review.disclosure import TableCheck, check_table
from export_review.dp_export import guard_scope
from export_review.dp_plan import Aggregate, DpPlan, plan_query
from export_review.models import ExportFile, ExportRequest
from export_review.sdc_rules import Thresholds
from query_guard.engine import open_readonly, run_query
from sandbox.agreements.service import as_contract, get_agreement
from sandbox.catalog.service import catalog_entries
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry
from sandbox.db.sealed import session_key_store
from sandbox.errors import SandboxError
from sandbox.keys.store import KeyStore
from sandbox.provisioning.models import Workspace, WorkspaceStatus

QUERY_TIMEOUT_S = 30.0
#: How each aggregate of the query becomes a table statistic.
STATISTIC = {"count": "count", "count_distinct": "count", "sum": "sum", "avg": "mean"}

#: Lends a connection (or a cursor of one) on an agreement's DuckDB file for one block.
CursorSource = Callable[[Path], AbstractContextManager[duckdb.DuckDBPyConnection]]


@dataclass(frozen=True)
class TableRerun:
    """One aggregate column of one CSV file: checked from its rows, or why it could not be."""

    file: str
    column: str = ""
    query: str = ""
    check: TableCheck | None = None
    why_not: str = ""


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as f:  # kept with a BOM (requests._store)
        return next(csv.reader(f), [])


def _matching_plan(
    header: list[str], queries: list[str], agreement: Agreement,
    catalog: dict[str, CatalogEntry],
) -> tuple[str, DpPlan] | None:  # fmt: skip
    """The first query the guard allows whose output columns are the CSV's header."""
    for sql in queries:
        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
            tree.set("order", None)  # the order of the rows changes no cell
            text = tree.sql("duckdb")
            guard_scope(text, agreement, catalog)
            plan = plan_query(text, agreement, catalog)
        except (SandboxError, sqlglot.errors.SqlglotError):
            continue
        if sorted(o.name for o in plan.outputs) == sorted(header):
            return sql, plan
    return None


def _rows_sql(plan: DpPlan) -> str:
    """The rows behind the table: its group keys and aggregated columns, under its WHERE."""
    names = dict.fromkeys([*plan.group_keys, *(a.column for a in plan.aggregates if a.column)])
    select = exp.select(*(exp.column(n, quoted=True) for n in names)).from_(
        exp.table_(plan.dataset, quoted=True)
    )
    if plan.where:
        select = select.where(sqlglot.parse_one(plan.where, read="duckdb"))
    return select.sql("duckdb")


@contextmanager
def own_connection(database: Path, key: bytes) -> Iterator[duckdb.DuckDBPyConnection]:
    """A hardened read-only connection of its own, for a process that holds none, opened
    with the agreement's data ``key`` (what it spills is encrypted too)."""
    with tempfile.TemporaryDirectory(prefix="rerun-") as tmp:
        conn = open_readonly(database, temp_dir=tmp, encryption_key=key)
        try:
            yield conn
        finally:
            conn.close()


def own_cursors(store: KeyStore) -> CursorSource:
    """Connections of their own, each opened with its agreement's key from ``store`` (the
    file is ``<agreement id>.duckdb``)."""

    def cursors(database: Path) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return own_connection(database, store.data_key(database.stem))

    return cursors


def _read_rows(cursors: CursorSource, database: Path, sql: str) -> pd.DataFrame:
    with cursors(database) as conn:
        return run_query(conn, sql, QUERY_TIMEOUT_S).to_pandas()


def _shown_groups(path: Path, plan: DpPlan, rows: pd.DataFrame) -> pd.DataFrame:
    """Only the rows of groups the CSV shows (the guard may have hidden small groups)."""
    key_names = {o.key: o.name for o in plan.outputs if o.key}
    with path.open(encoding="utf-8-sig", newline="") as f:
        shown = {tuple(r[key_names[k]] for k in plan.group_keys) for r in csv.DictReader(f)}
    keys = rows[list(plan.group_keys)].astype(str).apply(tuple, axis=1)
    return rows[keys.isin(shown)]


def _check(rows: pd.DataFrame, plan: DpPlan, aggregate: Aggregate, t: Thresholds) -> TableCheck:
    keys = list(plan.group_keys)
    if aggregate.kind == "count_distinct":
        rows = rows.drop_duplicates([*keys, aggregate.column])
    statistic = STATISTIC[aggregate.kind]
    return check_table(
        rows, index=keys[:1], columns=keys[1:], statistic=statistic,  # type: ignore[arg-type]
        values=aggregate.column if statistic != "count" else None, thresholds=t,
    )  # fmt: skip


def agreement_database(session: Session, agreement_id: str) -> Path | None:
    """The agreement's DuckDB file, when a workspace for it is built and not destroyed."""
    ws = session.get(Workspace, agreement_id)
    if ws is None or ws.status == WorkspaceStatus.destroyed:
        return None
    path = Path(ws.database_path)
    return path if path.is_file() else None


def rerun_tables(
    session: Session,
    req: ExportRequest,
    files: list[ExportFile],
    cursors: CursorSource,
) -> list[TableRerun]:
    """Every CSV file of the request, checked from its underlying rows where they can be had."""
    # Decrypted copies of the files still kept (gone when the agreement ended, R16).
    with plain_copies(session_key_store(session), req.agreement_id, files) as kept:
        return rerun_files(session, req.agreement_id, list(req.queries), kept, cursors)


def rerun_files(
    session: Session,
    agreement_id: str,
    queries: list[str],
    paths: list[Path],
    cursors: CursorSource,
) -> list[TableRerun]:
    """Every CSV among ``paths``, checked from its underlying rows where they can be had
    (also before anything is submitted: the workspace's pre-check runs the same code),
    read through ``cursors``."""
    agreement = as_contract(get_agreement(session, agreement_id))
    catalog = catalog_entries(session)
    database = agreement_database(session, agreement_id)
    out: list[TableRerun] = []
    for path in (p for p in paths if p.name.lower().endswith(".csv")):
        found = _matching_plan(_header(path), queries, agreement, catalog)
        if found is None:
            out.append(TableRerun(path.name, why_not="no-query"))
            continue
        sql, plan = found
        if not plan.group_keys:
            out.append(TableRerun(path.name, query=sql, why_not="no-group-keys"))
            continue
        if database is None:
            out.append(TableRerun(path.name, query=sql, why_not="no-database"))
            continue
        try:
            rows = _shown_groups(path, plan, _read_rows(cursors, database, _rows_sql(plan)))
        except SandboxError:  # e.g. the per-query time limit: the reviewer is told why
            out.append(TableRerun(path.name, query=sql, why_not="query-failed"))
            continue
        t = Thresholds.from_agreement(agreement)
        out.extend(
            TableRerun(
                path.name, column=o.name, query=sql, check=_check(rows, plan, o.aggregate, t)
            )
            for o in plan.outputs
            if o.aggregate is not None
        )
    return out
