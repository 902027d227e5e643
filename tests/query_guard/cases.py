"""Load the guard's SQL fixture cases (``tests/fixtures/query_guard/*.sql``).

Each case starts with header lines, then the SQL::

    # title: grouped count by district
    # expect: block QG-004        (or: allow | rewrite | block)
    # mode: record                (optional; default aggregate)
    SELECT ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "query_guard"


@dataclass(frozen=True)
class Case:
    file: str
    title: str
    action: str
    rule: str | None
    mode: str
    sql: str


def _parse(file: Path) -> list[Case]:
    cases: list[Case] = []
    headers: dict[str, str] = {}
    sql: list[str] = []

    def flush() -> None:
        if headers:
            action, _, rule = headers["expect"].partition(" ")
            cases.append(
                Case(
                    file.stem,
                    headers["title"],
                    action,
                    rule.strip() or None,
                    headers.get("mode", "aggregate"),
                    "\n".join(sql).strip(),
                )
            )

    for line in file.read_text(encoding="utf-8").splitlines():
        if line.startswith("# title:"):
            flush()
            headers, sql = {}, []
        if line.startswith("# ") and ":" in line and not sql:
            key, _, value = line[2:].partition(":")
            headers[key.strip()] = value.strip()
        elif line.strip() or sql:
            sql.append(line)
    flush()
    return cases


def load_cases() -> list[pytest.ParameterSet]:
    return [
        pytest.param(c, id=f"{c.file}:{c.title}")
        for f in sorted(FIXTURES.glob("*.sql"))
        for c in _parse(f)
    ]
