"""Refusals of the libraries, provoked one by one: each carries the rule the register lists
and reads in Chinese (``sandbox.refusal_text``), so a refused person reads why in the
interface's language with the rule kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from export_review.disclosure import check_table
from export_review.imports import check_import
from export_review.signing import load_or_create_signing_key, load_public_key
from export_review.workflow import check_user_can_review
from query_guard.client import QueryRefused, connect
from query_guard.workspace_ingress import check_save, check_served
from sandbox.accounts.models import Role, User
from sandbox.api.routes.exports import json_field
from sandbox.backup.archive import member
from sandbox.backup.database import dialect_of
from sandbox.backup.service import restore_backup
from sandbox.catalog.sheets import header_index
from sandbox.cli.main import app
from sandbox.contracts.loading import load_agreement_text, load_catalog
from sandbox.errors import SandboxError
from sandbox.input_limits import input_refusal
from sandbox.refusal_text import say
from sandbox.workcalendar import WorkCalendar
from tests.refusals.provoke import assert_refused_by

DAY = date(2027, 1, 1)
BINARY = {"type": "file", "format": "base64", "content": "AA=="}
PROVIDER = User(username="health", role=Role.provider, organisation="city-health-commission")
OTHER = User(username="market", role=Role.provider, organisation="city-market-regulation")


def _p256(tmp_path: Path, public: bool) -> Path:
    """A PEM key that is not Ed25519 (P-256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "p256.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if public
        else key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x")
    return path


def _raise(refusal: SandboxError) -> None:
    raise refusal


def _restore_into_a_used_folder(tmp_path: Path) -> object:
    into = tmp_path / "data"
    into.mkdir()
    _a_file(into)
    return restore_backup(archive=_a_file(tmp_path), into=into, actor="ops")


CASES: dict[str, tuple[str, Callable[[Path], object]]] = {
    "a holiday that is a working day": (
        "work-calendar", lambda _: WorkCalendar(holidays={DAY}, makeup_workdays={DAY})),
    "an agreement that is not YAML": ("contract-yaml", lambda _: load_agreement_text("a: [")),
    "an agreement that is a list": ("contract-yaml", lambda _: load_agreement_text("- a\n- b")),
    "a catalogue folder that is not there": ("contract-io", lambda t: load_catalog(t / "none")),
    "a signing key that is not Ed25519": (
        "signing-key", lambda t: load_or_create_signing_key(_p256(t, public=False))),
    "a public key that is not Ed25519": (
        "signing-key", lambda t: load_public_key(_p256(t, public=True))),
    "a backup member named outside the archive": (
        "backup-member", lambda t: member(_a_file(t), "../escape")),
    "a table check without its group keys": (
        "sdc-input", lambda _: check_table(pd.DataFrame({"a": [1]}), index=["district"])),
    "a backup that is not there": (
        "backup-missing",
        lambda t: restore_backup(archive=t / "no.tar", into=t / "new", actor="ops")),
    "a restore into a folder in use": ("restore-empty", _restore_into_a_used_folder),
    "a number that is not finite": (
        "number-finite", lambda _: _raise(input_refusal([{
            "type": "finite_number", "loc": ("body", "epsilon"), "msg": "NaN"}]))),
    "a backup of a database that is neither SQLite nor PostgreSQL": (
        "backup-db", lambda _: dialect_of("mysql://db/platform")),
    "a header row past the end of the file": (
        "upload-header", lambda _: header_index([(1, ["区县", "人数"])], header_row=5)),
    "a form field that is not JSON": ("export-fields", lambda _: json_field("{", "queries", [])),
    "an import named with a folder": (
        "import-file-name", lambda _: check_import("../codes.csv", b"code\n1\n")),
    "a binary file saved into a workspace": ("workspace-upload", lambda _: check_save(BINARY)),
    "a binary file read out of a workspace": (
        "workspace-download", lambda _: check_served(BINARY)),
    "an export request reviewed by its author": (
        "export-author-reviews", lambda _: check_user_can_review(
            PROVIDER, author="health", provider="city-health-commission")),
    "an import request reviewed by its author": (
        "import-author-reviews", lambda _: check_user_can_review(
            PROVIDER, author="health", provider="city-health-commission", kind="import")),
    "an export request reviewed by another provider": (
        "export-reviewer", lambda _: check_user_can_review(
            OTHER, author="alice", provider="city-health-commission")),
    "an import request reviewed by another provider": (
        "import-reviewer", lambda _: check_user_can_review(
            OTHER, author="alice", provider="city-health-commission", kind="import")),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_the_refusal_carries_its_rule_and_reads_in_chinese(case: str, tmp_path: Path) -> None:
    rule, provoke = CASES[case]
    with pytest.raises(SandboxError) as refused:
        provoke(tmp_path)
    assert_refused_by(refused.value, rule)


def test_the_notebook_client_without_a_service_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SANDBOX_QUERY_URL", "SANDBOX_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(QueryRefused) as refused:
        connect(lang="zh")
    assert refused.value.rule == "client-config"
    assert "未配置查询服务" in (say("client-config", refused.value.message, "zh") or "")


def test_the_command_line_decides_a_review_one_way() -> None:
    answer = CliRunner().invoke(app, ["catalog", "review", "1", "--as", "auth"])
    assert answer.exit_code == 1 and "[catalog-review-decision]" in answer.output
    text = say("catalog-review-decision", "give exactly one of --approve or --reject", "zh")
    assert text == "--approve 和 --reject 须且只能指定其一"
