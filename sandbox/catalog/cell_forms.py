"""The written forms of dates and numbers a text cell may hold, read as DuckDB SQL.

Files from Chinese government systems write dates as 2024-03-01, 2024/3/1,
2024.3.1, 20240301 or 2024年3月1日 and group thousands with commas; each form
is read into the declared type, and a value no form fits reads as NULL so the
caller can point at its cell. A comma is taken as a thousands separator only in
groups of three (``1,234.5``), never as a decimal comma (``1,5`` is refused).
"""

from __future__ import annotations

_DATE_FORMS = ("%Y年%m月%d日", "%Y.%m.%d")
_TIME_FORMS = (" %H:%M:%S", " %H:%M", "%H:%M:%S", "%H:%M", "")
_NUMERIC = ("BIGINT", "INTEGER", "DOUBLE", "DECIMAL")
_GROUPED = r"[+-]?[0-9]{1,3}(,[0-9]{3})+([.][0-9]+)?"

#: What a refusal tells the provider about the forms that are read, by declared type.
ACCEPTED = {
    "DATE": "dates are read as 2024-03-01, 2024/3/1, 2024.3.1, 20240301 or 2024年3月1日",
    "TIMESTAMP": "times are read as 2024-03-01 08:30:00, 2024/3/1 8:30 or 2024年3月1日 8:30",
    **{t: "numbers may group thousands with commas, as in 1,234,567.89" for t in _NUMERIC},
}


def _formats(forms: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{f}'" for f in forms) + "]"


def read_text(cell: str, column_type: str) -> str:
    """SQL reading the text ``cell`` (an SQL expression) as ``column_type``, NULL if no form fits.

    >>> import duckdb
    >>> duckdb.sql("SELECT " + read_text("'2024年3月1日'", "DATE")).fetchall()
    [(datetime.date(2024, 3, 1),)]
    >>> duckdb.sql("SELECT " + read_text("'1,234'", "INTEGER")).fetchall()
    [(1234,)]
    >>> duckdb.sql("SELECT " + read_text("'1,5'", "DOUBLE")).fetchall()
    [(None,)]
    """
    plain = f"TRY_CAST({cell} AS {column_type})"
    trimmed = f"trim({cell})"
    if column_type == "DATE":
        compact = (
            f"CASE WHEN regexp_full_match({trimmed}, '[0-9]{{8}}') "
            f"THEN CAST(TRY_STRPTIME({trimmed}, '%Y%m%d') AS DATE) END"
        )
        written = f"CAST(TRY_STRPTIME({trimmed}, {_formats(_DATE_FORMS)}) AS DATE)"
        return f"COALESCE({plain}, {written}, {compact})"
    if column_type == "TIMESTAMP":
        forms = tuple(d + t for d in _DATE_FORMS for t in _TIME_FORMS)
        return f"COALESCE({plain}, TRY_STRPTIME({trimmed}, {_formats(forms)}))"
    if column_type in _NUMERIC:
        ungrouped = (
            f"CASE WHEN regexp_full_match({trimmed}, '{_GROUPED}') "
            f"THEN replace({cell}, ',', '') ELSE {cell} END"
        )
        return f"TRY_CAST({ungrouped} AS {column_type})"
    return plain
