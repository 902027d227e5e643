"""The file gate: content-sniffed types, limits, identifiers, and data behind figures."""

from __future__ import annotations

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
        ("f.png", PNG),
        ("r.md", "# Findings\n"),
        ("d.json", '{"a": 1}'),
    ]:
        assert check_file(
            write(tmp_path, name, content), identifier_names=set(), limits=GateLimits()
        ).kind


@pytest.mark.parametrize(
    ("name", "content", "rule"),
    [
        ("x.exe", b"MZ", "export-file-type"),
        ("fake.png", "district,n\n", "export-file-type"),
        ("fake.csv", PNG, "export-file-type"),
        ("bad.json", "{not json", "export-file-type"),
        ("ragged.csv", "a,b\n1\n", "export-file-type"),
        ("ids.csv", "patient_id,n\nx,1\n", "export-file-identifier"),
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


def test_a_figure_needs_its_data(world, tmp_path):
    figure = write(tmp_path, "f.png", PNG)
    data = write(tmp_path, "f.csv", "district,n\nA,12\n")
    kw = {"agreement": world.agreement, "catalog": world.catalog}
    with pytest.raises(PolicyViolation) as info:
        check_files([figure], figure_data={}, **kw)
    assert info.value.rule == "export-figure-data"
    assert len(check_files([figure, data], figure_data={"f.png": "f.csv"}, **kw)) == 2
