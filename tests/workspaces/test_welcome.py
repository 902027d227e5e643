"""The welcome notebook of the demo agreements (issue 13, item 2): every allowed column with
its Chinese label and its type, the mode's rules and the budget, and three example queries
that pass the guard as written and run on the agreement's real database."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from query_guard.compile import build_agreement_database, column_types
from query_guard.context import GuardContext
from query_guard.engine import open_readonly, run_query
from query_guard.guard import check_query
from sandbox.contracts import load_agreement, load_catalog
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry
from sandbox.demo.generate import DEMO_AGREEMENTS_DIR, DEMO_CATALOG_DIR, generate_demo
from sandbox.workspaces.limits import shown_limits
from sandbox.workspaces.rule_meanings import REFUSALS
from sandbox.workspaces.welcome import (
    dp_example,
    example_queries,
    refused_example,
    welcome_notebook,
)

KEY = b"w" * 32
DEMO_AGREEMENTS = sorted(DEMO_AGREEMENTS_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def catalog() -> dict[str, CatalogEntry]:
    return load_catalog(DEMO_CATALOG_DIR)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic demo data, generated as ``make run`` seeds it."""
    return generate_demo(tmp_path_factory.mktemp("demo-source"))


def _cells(notebook: dict, kind: str) -> list[str]:
    return [c["source"] for c in notebook["cells"] if c["cell_type"] == kind]


@pytest.mark.parametrize("path", DEMO_AGREEMENTS, ids=lambda p: p.stem)
def test_every_allowed_column_with_its_label_and_type(
    path: Path, catalog: dict[str, CatalogEntry]
) -> None:
    agreement = load_agreement(path)
    notebook = welcome_notebook(agreement, catalog, limits=shown_limits())
    markdown = "\n".join(_cells(notebook, "markdown"))
    for name, allowed in agreement.datasets.items():
        entry = catalog[name]
        types = column_types(agreement, entry)
        assert f"`{name}` — {entry.title}" in markdown
        for column in allowed.columns:
            label = entry.column(column).label
            assert label, f"the demo catalogue labels {name}.{column}"
            assert f"| `{column}` | {label} | {types[column]}" in markdown
        for hidden in set(entry.column_names) - set(allowed.columns):
            assert f"| `{hidden}` |" not in markdown
    d = agreement.disclosure
    assert f"**{d.max_result_rows}**" in markdown  # the row cap
    if agreement.mode == "aggregate":
        assert f"**k = {d.min_group_size}**" in markdown and "Perturbation" in markdown
    else:
        assert "Record mode" in markdown
    assert f"ε 总额 total：**{agreement.privacy.epsilon:g}**" in markdown
    assert "内存 2g" in markdown  # the workspace's limits
    for rule in REFUSALS:
        assert f"| `{rule}` |" in markdown


@pytest.mark.parametrize("path", DEMO_AGREEMENTS, ids=lambda p: p.stem)
def test_the_notebook_is_nbformat_4_and_its_code_compiles(
    path: Path, catalog: dict[str, CatalogEntry]
) -> None:
    notebook = welcome_notebook(load_agreement(path), catalog)
    assert notebook["nbformat"] == 4 and notebook["nbformat_minor"] == 5
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    ids = [c["id"] for c in notebook["cells"]]
    assert len(set(ids)) == len(ids)
    for cell in notebook["cells"]:
        assert isinstance(cell["source"], str) and cell["metadata"] is not None
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            compile(cell["source"], cell["id"], "exec")
    code = "\n".join(_cells(notebook, "code"))
    for call in ("db.tables()", "db.describe(", "db.dp(", "db.check_export(", "db.export("):
        assert call in code
    assert "SPEND_BUDGET = False" in code and "SUBMIT_EXPORTS = False" in code


def _conditions_are_plain(sql: str) -> bool:
    """No IN list, OR or <> anywhere (what the aggregate-mode guard refuses)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    return not any(tree.find_all(exp.In, exp.Or, exp.NEQ, exp.Not))


def _built(
    agreement: Agreement, catalog: dict[str, CatalogEntry], sources: dict[str, Path], root: Path
) -> duckdb.DuckDBPyConnection:
    db = build_agreement_database(
        agreement, catalog, out_path=root / f"{agreement.id}.duckdb", key=KEY, sources=sources
    )
    return open_readonly(db, memory_limit="256MB", threads=1, temp_dir=root / "tmp")


@pytest.mark.parametrize("path", DEMO_AGREEMENTS, ids=lambda p: p.stem)
def test_three_examples_pass_the_guard_and_run_on_the_built_database(
    path: Path, catalog: dict[str, CatalogEntry], sources: dict[str, Path], tmp_path: Path
) -> None:
    agreement = load_agreement(path)
    ctx = GuardContext(agreement, catalog)
    examples = example_queries(agreement, catalog)
    assert len(examples) == 3
    code = "\n".join(_cells(welcome_notebook(agreement, catalog), "code"))
    conn = _built(agreement, catalog, sources, tmp_path)
    try:
        for i, example in enumerate(examples, start=1):
            assert f'SQL_{i} = """{example.sql}"""' in code
            decision = check_query(example.sql, ctx)
            assert decision.action in ("allow", "rewrite"), decision.reasons
            if agreement.mode == "aggregate":
                assert _conditions_are_plain(example.sql), example.sql
            table = run_query(conn, decision.sql or "", 30)
            assert table.num_rows > 0, example.sql
    finally:
        conn.close()
    if agreement.mode == "aggregate":
        assert any("WHERE" in e.sql for e in examples)  # conditions shown as they may be written
    # The refusal shown is one the guard really refuses; the DP example is one it releases.
    assert check_query(refused_example(agreement, catalog), ctx).action == "block"
    released = dp_example(agreement, catalog)
    assert released is not None and f'DP_SQL = """{released}"""' in code
