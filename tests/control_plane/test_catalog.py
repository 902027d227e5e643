"""Publishing, the public catalogue and open-class rules (R1, R2, R13, R14).

The catalogue review itself (Shanghai Art.12) is tested in ``test_catalog_review.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from sandbox.audit.models import AuditEvent
from sandbox.catalog.models import Dataset, DatasetVersion
from sandbox.catalog.service import public_datasets, publish_dataset
from sandbox.contracts import load_catalog_entry
from sandbox.db.base import transaction
from sandbox.errors import ContractError, PermissionDenied, PolicyViolation
from tests.control_plane.conftest import login
from tests.control_plane.helpers import publish_approved


def _publish(factory, users, settings, path: Path, who: str = "health", **kw):  # noqa: ANN001, ANN202
    entry = load_catalog_entry(path)
    with transaction(factory) as session:
        return publish_dataset(
            session=session,
            actor=users[who],
            entry=entry,
            data_path=entry.source_path(),
            settings=settings,
            **kw,
        )


def test_publish_stores_a_version_with_its_quality_report(factory, users, settings, catalog_dir):
    v1 = publish_approved(factory, users, settings, catalog_dir / "clinic_visits.yaml").version
    # A refresh under the unchanged entry is in force at once: no review.
    refresh = _publish(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    assert refresh.review is None and refresh.status == "published"
    v2 = refresh.version
    assert (v1.version, v2.version) == (1, 2) and v1.published and v2.published
    assert (
        Path(v2.path).is_file() and Path(v2.path).parent == settings.datasets_dir / "clinic_visits"
    )
    assert v1.rows == 300 and v1.content_sha256 == v2.content_sha256 != v2.sha256
    assert v1.quality["rows"] == 300


def test_undeclared_identifier_is_refused_and_changes_nothing(
    factory, users, settings, catalog_dir
):
    path = catalog_dir / "clinic_visits.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["columns"][0]["sensitivity"] = "none"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyViolation) as err:
        _publish(factory, users, settings, path)
    assert err.value.rule == "undeclared-identifier"
    assert "patient_id" in err.value.message
    with transaction(factory) as session:
        assert session.scalar(select(func.count()).select_from(Dataset)) == 0
        assert session.scalar(select(func.count()).select_from(DatasetVersion)) == 0
        assert not session.scalar(select(AuditEvent).where(AuditEvent.action == "dataset.publish"))
    assert not list((settings.datasets_dir).rglob("*.parquet"))


def test_only_the_provider_publishes(factory, users, settings, catalog_dir):
    with pytest.raises(PermissionDenied):
        _publish(factory, users, settings, catalog_dir / "clinic_visits.yaml", who="market")
    with pytest.raises(PermissionDenied):
        _publish(factory, users, settings, catalog_dir / "clinic_visits.yaml", who="alice")


def test_non_open_never_in_public_catalogue(factory, users, settings, catalog_dir, client):
    publish_approved(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    publish_approved(factory, users, settings, catalog_dir / "secret.yaml")
    with transaction(factory) as session:
        assert [d.name for d in public_datasets(session)] == ["clinic_visits"]
    listed = client.get("/api/catalog").json()
    assert [d["name"] for d in listed] == ["clinic_visits"]
    assert listed[0]["stale"] is False and listed[0]["version"] == 1
    assert client.get("/api/catalog/secret_registry").status_code == 404
    # The provider itself still sees its own non-open dataset.
    own = client.get("/api/catalog/secret_registry", headers=login(client, "health"))
    assert own.status_code == 200 and own.json()["open_class"] == "non_open"


def test_malformed_entry_names_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad Name\ntitle: x\n", encoding="utf-8")
    with pytest.raises(ContractError) as err:
        load_catalog_entry(bad)
    assert str(bad) in err.value.message and "name:" in err.value.message
    assert "open_class: required field is missing" in err.value.message
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ContractError, match="not valid YAML"):
        load_catalog_entry(broken)


def test_publish_over_http(client, users, catalog_dir):
    headers = login(client, "health")
    with (
        (catalog_dir / "clinic_visits.yaml").open("rb") as e,
        (catalog_dir / "data" / "clinic_visits.parquet").open("rb") as d,
    ):
        r = client.post(
            "/api/catalog",
            headers=headers,
            files={"entry": ("e.yaml", e), "data": ("d.parquet", d)},
        )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["status"] == "under_review"
    assert client.get("/api/catalog").json() == []
    decided = client.post(
        f"/api/catalog-reviews/{r.json()['review']}",
        json={"decision": "approve", "legality_review": "Lawful; conditions published."},
        headers=login(client, "auth"),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "published" and decided.json()["version"] == 1
    assert [d["name"] for d in client.get("/api/catalog").json()] == ["clinic_visits"]
    with (
        (catalog_dir / "clinic_visits.yaml").open("rb") as e,
        (catalog_dir / "data" / "clinic_visits.parquet").open("rb") as d,
    ):
        r = client.post(
            "/api/catalog",
            headers=login(client, "alice"),
            files={"entry": ("e.yaml", e), "data": ("d.parquet", d)},
        )
    assert r.status_code == 403 and r.json()["rule"] == "role"
