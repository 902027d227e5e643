"""Release bundles: signed manifest, atomic write, and every kind of tampering detected."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from export_review.bundle import BundleContent, verify_bundle, write_bundle
from export_review.signing import load_or_create_signing_key, public_key_pem
from sandbox.cli.release import release_app
from sandbox.errors import Conflict


@pytest.fixture
def made(world, tmp_path):
    key = load_or_create_signing_key(tmp_path / "keys" / "release_signing.key")
    table = tmp_path / "table.csv"
    table.write_text("district,n\nA,1043\n", encoding="utf-8")
    content = BundleContent(
        dataset_versions={"outpatient_visits": "2026-11"},
        checks={"table.csv": {"status": "pass"}},
        reviewers=[
            {"name": "reviewer1", "decision": "approved", "at": "2026-11-20T10:00:00+08:00"}
        ],
        dp={"epsilon_spent": 1.0, "epsilon_remaining": 2.0, "delta_spent": 0.0},
    )
    bundle = write_bundle(
        tmp_path / "out" / "REL-1",
        [table],
        agreement=world.agreement,
        catalog=world.catalog,
        content=content,
        key=key,
    )
    return bundle, key


def test_an_intact_bundle_verifies_and_cites_its_source(made):
    bundle, key = made
    assert verify_bundle(bundle, key.public_key()) == []
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert "Shanghai Art.25" in manifest["citation"]
    assert set(manifest["files"]) == {"files/table.csv", "CITATION.txt"}
    assert manifest["dp"]["epsilon_remaining"] == 2.0
    assert not [p for p in bundle.parent.iterdir() if p.name.startswith(".")]  # no temp left


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("change", "file changed: files/table.csv"),
        ("add", "file added: files/extra.csv"),
        ("remove", "file removed: CITATION.txt"),
        ("manifest", "signature does not match"),
    ],
)
def test_tampering_is_detected(made, tamper, reason):
    bundle, key = made
    if tamper == "change":
        (bundle / "files" / "table.csv").write_text("district,n\nA,1044\n", encoding="utf-8")
    elif tamper == "add":
        (bundle / "files" / "extra.csv").write_text("x\n", encoding="utf-8")
    elif tamper == "remove":
        os.remove(bundle / "CITATION.txt")
    else:
        manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
        manifest["reviewers"] = []
        (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert any(reason in p for p in verify_bundle(bundle, key.public_key()))


def test_a_bundle_is_never_overwritten(made, world):
    bundle, key = made
    with pytest.raises(Conflict):
        write_bundle(
            bundle,
            [],
            agreement=world.agreement,
            catalog=world.catalog,
            content=BundleContent({}, {}, []),
            key=key,
        )


def test_cli_verify_exit_codes(made, tmp_path):
    bundle, key = made
    pub = tmp_path / "release.pub"
    pub.write_bytes(public_key_pem(key))

    def verify():
        return CliRunner().invoke(release_app, ["verify", str(bundle), "--public-key", str(pub)])

    assert verify().exit_code == 0
    other = load_or_create_signing_key(Path(tmp_path / "other.key"))
    pub.write_bytes(public_key_pem(other))
    assert verify().exit_code == 1
    pub.write_bytes(public_key_pem(key))
    (bundle / "files" / "table.csv").write_text("tampered\n", encoding="utf-8")
    result = verify()
    assert result.exit_code == 1 and "file changed: files/table.csv" in result.stderr
