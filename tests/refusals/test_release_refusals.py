"""Refusals of building an agreement's database and writing a release bundle, provoked on
the control-plane tests' catalogue: each carries its rule and reads in Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from export_review.bundle import BundleContent, write_bundle
from query_guard.compile import build_agreement_database
from sandbox.contracts.loading import load_catalog
from sandbox.errors import SandboxError
from tests.control_plane.helpers import agreement
from tests.refusals.provoke import assert_refused_by

CONTENT = BundleContent(dataset_versions={}, checks={}, reviewers=[])


def _bundle(catalog_dir: Path, destination: Path, files: list[Path]) -> Path:
    return write_bundle(
        destination, files, agreement=agreement(), catalog=load_catalog(catalog_dir),
        content=CONTENT, key=Ed25519PrivateKey.generate(),
    )  # fmt: skip


def test_a_source_file_gone_is_refused(catalog_dir: Path, tmp_path: Path) -> None:
    catalog = load_catalog(catalog_dir)
    (catalog_dir / "data" / "clinic_visits.parquet").unlink()
    with pytest.raises(SandboxError) as refused:
        build_agreement_database(
            agreement(), catalog, out_path=tmp_path / "a.duckdb", key=b"k" * 32
        )
    assert_refused_by(refused.value, "build-source")


def test_a_bundle_is_written_once(catalog_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "release").mkdir()
    with pytest.raises(SandboxError) as refused:
        _bundle(catalog_dir, tmp_path / "release", [])
    assert_refused_by(refused.value, "bundle-exists")


def test_released_files_have_distinct_names(catalog_dir: Path, tmp_path: Path) -> None:
    files = [tmp_path / "a" / "t.csv", tmp_path / "b" / "t.csv"]
    with pytest.raises(SandboxError) as refused:
        _bundle(catalog_dir, tmp_path / "release", files)
    assert_refused_by(refused.value, "bundle-files")
