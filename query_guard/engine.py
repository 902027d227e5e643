"""The hardened DuckDB engine a guarded query runs on.

The per-agreement file is opened read-only, with no files, network,
extensions or configuration changes, bounded memory and threads, its own
temporary directory, and a per-query timeout (THREAT_MODEL boundary 2: the
engine alone must stop an escape the guard misses). The platform's base data
is never attached to this connection.
"""

from __future__ import annotations

import secrets
import tempfile
import threading
from pathlib import Path

import duckdb
import pyarrow as pa

from query_guard.anonymise.emit import split_suppression
from query_guard.anonymise.noise import dataset_key, register
from query_guard.compile import PRIVATE_SCHEMA, SOURCES_TABLE
from sandbox.errors import PolicyViolation, SandboxError

DEFAULT_MEMORY_LIMIT = "1GB"
DEFAULT_THREADS = 2
TIMEOUT_RULE = "QG-013"
QUERY_ERROR_RULE = "QG-014"


def hardened_config(*, memory_limit: str, threads: int, temp_dir: str | Path) -> dict[str, object]:
    """Settings fixed at connect time; :data:`LOCKING_STATEMENTS` then lock them."""
    return {
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_persistent_secrets": False,
        "python_enable_replacements": False,
        "memory_limit": memory_limit,
        "max_temp_directory_size": memory_limit,
        "threads": threads,
        "temp_directory": str(temp_dir),
    }


#: Applied after connecting, then the configuration is locked. A scalar subquery with
#: several rows would raise, and whether it raises depends on the data (an error oracle);
#: DuckDB takes the first row instead. (Passing this session option at connect time
#: together with ``lock_configuration`` is refused by DuckDB, so both are set here.)
LOCKING_STATEMENTS = (
    "SET GLOBAL scalar_subquery_error_on_multiple_rows = false",
    "SET GLOBAL lock_configuration = true",
)


def open_readonly(
    path: str | Path,
    *,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    threads: int = DEFAULT_THREADS,
    temp_dir: str | Path | None = None,
    noise_secret: bytes | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a per-agreement database read-only on a hardened connection.

    ``noise_secret`` is the platform's aggregate-mode noise secret (see
    :func:`register_anonymiser`)."""
    if temp_dir is None:
        temp_dir = tempfile.mkdtemp(prefix="qg-tmp-")
    config = hardened_config(memory_limit=memory_limit, threads=threads, temp_dir=temp_dir)
    conn = duckdb.connect(str(path), read_only=True, config=config)
    for statement in LOCKING_STATEMENTS:
        conn.execute(statement)
    register_anonymiser(conn, noise_secret)
    return conn


def register_anonymiser(conn: duckdb.DuckDBPyConnection, noise_secret: bytes | None) -> None:
    """Give ``conn`` aggregate mode's functions, keyed per dataset version.

    Without the platform's secret (a throwaway database on the command line) the key
    is random for this connection, so its noise is consistent only while it is open.
    """
    secret = noise_secret or secrets.token_bytes(32)
    try:
        sources = conn.execute(
            f"SELECT dataset, digest FROM {PRIVATE_SCHEMA}.{SOURCES_TABLE}"
        ).fetchall()
    except duckdb.CatalogException:
        sources = []
    register(conn, {name: dataset_key(secret, name, digest) for name, digest in sources})


def run_query(conn: duckdb.DuckDBPyConnection, sql: str, timeout_s: float) -> pa.Table:
    """Run ``sql`` and fetch the result as Arrow, interrupting it after ``timeout_s`` seconds.

    Each query runs on its own cursor (same database, same locked settings), so
    queries from several threads never share a pending result.
    """
    cursor = conn.cursor()
    timer = threading.Timer(timeout_s, cursor.interrupt)
    timer.daemon = True
    timer.start()
    try:
        return split_suppression(cursor.sql(sql).to_arrow_table())
    except duckdb.InterruptException as exc:
        raise PolicyViolation(
            TIMEOUT_RULE,
            "Shanghai Art.26",
            f"the query ran longer than the {timeout_s:g} s allowed per query and was stopped; "
            "narrow it or aggregate earlier",
        ) from exc
    except (duckdb.BinderException, duckdb.ParserException, duckdb.CatalogException) as exc:
        # About the query text, never about data values: safe to pass on.
        raise SandboxError(str(exc).splitlines()[0], rule=QUERY_ERROR_RULE) from exc
    except duckdb.Error as exc:
        # Conversion and range errors quote the offending value: never pass them on.
        raise SandboxError(
            f"the query failed while running ({type(exc).__name__})", rule=QUERY_ERROR_RULE
        ) from exc
    finally:
        timer.cancel()
        cursor.close()
