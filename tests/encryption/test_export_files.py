"""Export files and release bundles at rest (export_review/at_rest.py): a value planted in an
export is in none of the bytes kept on disk, yet every reader (download, review page,
figure, bundle zip, bundle check) shows it; rotation keeps them readable; when the
agreement ends its key goes (in the record) and a copy of its export files opens no more,
while the bundle, under a key of its own, still verifies until it is revoked."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from export_review.at_rest import bundle_opener
from export_review.bundle import MANIFEST, SIGNATURE, verify_bundle
from export_review.signing import load_or_create_signing_key, signing_key_path
from sandbox.agreements.lifecycle import AgreementAction
from sandbox.agreements.service import change_status
from sandbox.audit.models import AuditEvent
from sandbox.cli.main import app
from sandbox.db.base import transaction
from sandbox.keys.files import is_sealed, open_file
from sandbox.keys.store import DataKeyMissing, agreement_key, key_store
from tests.control_plane.conftest import (  # noqa: F401
    catalog_dir,
    cli_env,
    client,
    db_url,
    factory,
    login,
    settings,
    users,
)
from tests.control_plane.test_export_workflow import CHART, _draft, world  # noqa: F401

#: A value only the exported table holds.
PLANTED = "ZQX-planted-区"
TABLE = f"district,visits\n{PLANTED},120\n锡山区,98\n".encode()


def _kept(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in folder.rglob("*") if p.is_file()]


def test_export_files_and_bundles_are_sealed_at_rest(client, world, settings, factory) -> None:  # noqa: ANN001, F811
    alice, health, health2 = (login(client, u) for u in ("alice", "health", "health2"))
    rid = _draft(client, "AGR-T-0001", {"table.csv": TABLE}, CHART)
    folder = settings.data_dir / "exports" / str(rid)
    assert not [b for b in _kept(folder) if PLANTED.encode() in b or b"district" in b]
    got = client.get(f"/api/exports/{rid}/files/table.csv", headers=alice)
    assert got.status_code == 200 and got.content.endswith(TABLE)

    assert client.post(f"/api/exports/{rid}/submit", headers=alice).json()["status"] == "checked"
    client.post(f"/api/exports/{rid}/start_review", headers=health, json={})
    page = client.get(f"/provider/exports/{rid}", headers=health)
    assert page.status_code == 200 and PLANTED in page.text
    drawn = client.get(f"/api/exports/{rid}/figure/figure.svg", headers=health)
    assert drawn.status_code == 200 and PLANTED in drawn.text
    client.post(f"/api/exports/{rid}/approve", headers=health, json={})
    done = client.post(f"/api/exports/{rid}/approve", headers=health2, json={})
    assert done.json()["status"] == "released", done.text

    bundle = settings.data_dir / "releases" / f"AGR-T-0001-export-{rid}"
    assert not [b for b in _kept(bundle) if PLANTED.encode() in b]
    public = load_or_create_signing_key(signing_key_path(settings.keys_dir)).public_key()
    store = key_store(settings)
    assert verify_bundle(bundle, public)  # sealed: its files do not verify without its key
    assert verify_bundle(bundle, public, bundle_opener(store, bundle.name)) == []

    assert store.rotate().rewrapped >= 2  # the agreement's key and the bundle's, re-wrapped
    archive = client.get(f"/api/exports/{rid}/bundle", headers=alice)
    out = settings.data_dir / "download"
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(out)
    assert (out / "files" / "table.csv").read_bytes().endswith(TABLE)
    assert verify_bundle(out, public) == []  # as downloaded: plain, checked with the key alone

    backed_up = shutil.copytree(folder, settings.data_dir / "copy")  # e.g. in a backup
    with transaction(factory) as session:
        change_status(
            session=session,
            actor=world["health"],
            agreement_id="AGR-T-0001",
            action=AgreementAction.terminate,
            reason="project ended early",
            today=date.today(),
        )
    assert client.post("/api/operator/lifecycle/run", headers=login(client, "ops")).is_success
    with transaction(factory) as session:
        shredded = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "key.destroy", AuditEvent.object == "agreement:AGR-T-0001"
            )
        ).one()
        assert json.loads(shredded.details)["opens"] == "export files"
    shutil.copytree(backed_up, folder)  # the copy put back opens no more
    gone = client.get(f"/api/exports/{rid}/files/table.csv", headers=alice)
    assert gone.status_code == 404 and gone.json()["rule"] == "at-rest-key-missing"
    assert verify_bundle(bundle, public, bundle_opener(store, bundle.name)) == []

    sealed_copy = (bundle / "files" / "table.csv").read_bytes()
    revoked = client.post(f"/api/exports/{rid}/revoke", headers=health, json={"reason": "error"})
    assert revoked.status_code == 200, revoked.text
    with pytest.raises(DataKeyMissing):  # a kept copy of a revoked bundle opens no more
        bundle_opener(store, bundle.name)("files/table.csv", sealed_copy)


def test_outputs_kept_in_clear_from_before_are_sealed_by_the_command(
    client,  # noqa: ANN001, F811
    world,  # noqa: ANN001, F811
    settings,  # noqa: ANN001, F811
    factory,  # noqa: ANN001, F811
    cli_env,  # noqa: ANN001, F811
) -> None:
    alice, health, health2 = (login(client, u) for u in ("alice", "health", "health2"))
    rid = _draft(client, "AGR-T-0001", {"table.csv": TABLE})
    for move, who in (("submit", alice), ("start_review", health), ("approve", health)):
        client.post(f"/api/exports/{rid}/{move}", headers=who, json={})
    assert client.post(f"/api/exports/{rid}/approve", headers=health2, json={}).is_success
    store = key_store(settings)
    export = settings.data_dir / "exports" / str(rid) / "table.csv"
    bundle = settings.data_dir / "releases" / f"AGR-T-0001-export-{rid}"
    opener = bundle_opener(store, bundle.name)
    # As written before encryption at rest: the same content, in clear.
    context = f"export {rid}/table.csv"
    export.write_bytes(open_file(store, agreement_key("AGR-T-0001"), context, export.read_bytes()))
    kept = [p for p in bundle.rglob("*") if p.is_file() and p.name not in (MANIFEST, SIGNATURE)]
    for path in kept:
        path.write_bytes(opener(path.relative_to(bundle).as_posix(), path.read_bytes()))
    assert export.read_bytes().endswith(TABLE)

    done = CliRunner().invoke(app, ["keys", "encrypt-exports", "--as", "ops"])
    assert done.exit_code == 0 and "sealed 1 export file(s) and 2 release" in done.output, (
        done.output
    )
    assert is_sealed(export.read_bytes()) and all(is_sealed(p.read_bytes()) for p in kept)
    assert client.get(f"/api/exports/{rid}/files/table.csv", headers=alice).content.endswith(TABLE)
    public = load_or_create_signing_key(signing_key_path(settings.keys_dir)).public_key()
    assert verify_bundle(bundle, public, opener) == []
    again = CliRunner().invoke(app, ["keys", "encrypt-exports", "--as", "ops"])
    assert "sealed 0 export file(s) and 0 release" in again.output, again.output
