"""The ``%%sql`` cell magic: a cell of SQL in, a pandas DataFrame out.

    %load_ext query_guard.client
    %%sql visits
    SELECT district, count(*) AS n FROM clinic_visits GROUP BY district

The optional word after ``%%sql`` names a variable to store the result in. The
connection is made on first use from ``SANDBOX_QUERY_URL`` and
``SANDBOX_TOKEN``. A blocked query shows the guard's reasons, not a traceback.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from query_guard.client import Connection, QueryRefused, connect

_connection: Connection | None = None


def _connected() -> Connection:
    global _connection
    if _connection is None:
        _connection = connect()
    return _connection


def load_ipython_extension(ipython: Any) -> None:
    def sql(line: str, cell: str) -> pd.DataFrame | None:
        try:
            result = _connected().sql(cell)
        except QueryRefused as exc:
            print(exc)
            return None
        name = line.strip()
        if name:
            if not name.isidentifier():
                print(f"%%sql: {name!r} is not a variable name")
                return None
            ipython.user_ns[name] = result
        return result

    ipython.register_magic_function(sql, magic_kind="cell", magic_name="sql")
