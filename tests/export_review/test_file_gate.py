"""The file gate: text files only (no image leaves), limits, identifiers, notebooks without
outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export_review.file_gate import GateLimits, check_file, check_files
from sandbox.catalog.identifiers import resident_id_check_char
from sandbox.errors import PolicyViolation

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
RESIDENT_ID = "11010519491231002" + resident_id_check_char("11010519491231002")


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def refused(path: Path, limits: GateLimits | None = None) -> str:
    with pytest.raises(PolicyViolation) as info:
        check_file(path, identifier_names={"patient_id"}, limits=limits or GateLimits())
    return info.value.rule


def test_allowed_files_pass(tmp_path):
    for name, content in [
        ("t.csv", "district,n\nA,12\n"),
        ("r.md", "# Findings\n"),
        ("d.json", '{"a": 1}'),
        ("analysis.py", "import pandas as pd\n"),
        ("query.sql", "SELECT 1;\n"),
        ("model.R", "fit <- lm(y ~ x)\n"),
        ("clean.ipynb", json.dumps(notebook())),
    ]:
        assert check_file(
            write(tmp_path, name, content), identifier_names=set(), limits=GateLimits()
        ).kind


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("x.exe", b"MZ", "export-file-type"),
        ("f.png", PNG, "export-file-type"),  # figures are drawn by the platform
        ("fake.csv", PNG, "export-file-type"),
        ("fake.ipynb", '{"cells": []}', "export-file-type"),
        ("binary.py", b"\x00\x01", "export-file-type"),
        ("ids.sql", f"SELECT * WHERE id = '{RESIDENT_ID}'", "export-file-identifier"),
        ("bad.json", "{not json", "export-file-type"),
        ("ragged.csv", "a,b\n1\n", "export-file-type"),
        ("ids.csv", "patient_id,n\nx,1\n", "export-file-identifier"),
        ("excel.csv", "\ufeffpatient_id,n\nx,1\n", "export-file-identifier"),  # after a BOM
        ("hidden.csv", f"who,n\n{RESIDENT_ID},1\n", "export-file-identifier"),
        ("notes.txt", f"the person is {RESIDENT_ID}.", "export-file-identifier"),
    ],
)
def test_refused_files_name_their_rule(tmp_path, name, content, rule):
    assert refused(write(tmp_path, name, content)) == rule


def test_size_and_row_limits(tmp_path):
    path = write(tmp_path, "big.csv", "n\n" + "1\n" * 20)
    assert refused(path, GateLimits(max_bytes=10)) == "export-file-size"
    assert refused(path, GateLimits(max_rows=19)) == "export-file-rows"


def notebook(**cell: object) -> dict:
    """An nbformat 4 notebook of one markdown and one code cell, without outputs."""
    code = {"cell_type": "code", "metadata": {}, "source": "db.sql('SELECT 1')",
            "execution_count": None, "outputs": [], **cell}  # fmt: skip
    return {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Method"}, code],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("cell", "held"),
    [
        ({"outputs": [{"output_type": "stream", "name": "stdout", "text": "12\n"}]}, "outputs"),
        ({"execution_count": 3}, "an execution count"),
        ({"attachments": {"a.png": {"image/png": "iVBOR"}}}, "attachments"),
    ],
)
def test_a_notebook_that_still_holds_outputs_is_refused_not_stripped(tmp_path, cell, held):
    path = write(tmp_path, "analysis.ipynb", json.dumps(notebook(**cell)))
    before = path.read_bytes()
    with pytest.raises(PolicyViolation) as info:
        check_file(path, identifier_names=set(), limits=GateLimits())
    assert info.value.rule == "export-notebook-outputs"
    assert f"cell 2 still holds {held}" in str(info.value) and "clear" in str(info.value)
    assert path.read_bytes() == before  # the platform never rewrites the author's file


def test_check_files_checks_every_file(world, tmp_path):
    data = write(tmp_path, "f.csv", "district,n\nA,12\n")
    kw = {"agreement": world.agreement, "catalog": world.catalog}
    assert [c.kind for c in check_files([data], **kw)] == ["csv"]
    with pytest.raises(PolicyViolation) as info:
        check_files([data, write(tmp_path, "f.png", PNG)], **kw)
    assert info.value.rule == "export-file-type" and "drawn by the platform" in str(info.value)
