"""Catalogue review by the competent authority (Shanghai Art.12; Wuxi Art.11-12; R1).

A new entry, a changed entry and a changed open class wait under review, invisible
and unusable, until the authority approves them with a legality review; a refresh
under the published entry does not. Every test runs on SQLite and PostgreSQL, and
the fixtures check the audit chain afterwards, refusals included.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from sandbox.agreements.service import import_agreement
from sandbox.applications.service import create_application, submit_application
from sandbox.audit.filings import list_filings
from sandbox.audit.models import AuditEvent
from sandbox.catalog.models import CatalogReview, ClassChange, ReviewStatus
from sandbox.catalog.review import Decision, check_can_decide, decide_review
from sandbox.catalog.service import (
    Publication,
    catalog_entries,
    change_open_class,
    dataset_sources,
    get_dataset,
    latest_version,
    public_datasets,
    publish_dataset,
)
from sandbox.cli.main import app
from sandbox.contracts import OpenClass, load_catalog_entry
from sandbox.db.base import transaction
from sandbox.errors import (
    Conflict,
    InvalidStateTransition,
    NotFound,
    PermissionDenied,
    PolicyViolation,
    ValidationFailed,
)
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.conftest import login
from tests.control_plane.helpers import agreement, complete_application, publish_approved

LAWFUL = "Lawful: open class and conditions follow the classification rules."
runner = CliRunner()


def _publish(factory, users, settings, path: Path, basis: str = "") -> Publication:  # noqa: ANN001
    entry = load_catalog_entry(path)
    with transaction(factory) as session:
        return publish_dataset(
            session=session,
            actor=users["health"],
            entry=entry,
            data_path=entry.source_path(),
            settings=settings,
            class_change_basis=basis,
        )


def _decide(factory, users, review_id: int, decision: Decision, text: str = LAWFUL, who="auth"):  # noqa: ANN001, ANN202
    with transaction(factory) as session:
        return decide_review(
            session=session,
            actor=users[who],
            review_id=review_id,
            decision=decision,
            legality_review=text,
        )


def _edit(path: Path, **changes: Any) -> Path:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _actions(factory: sessionmaker[Session]) -> list[str]:
    """The record's actions in order, sign-ins left out (the tests sign in as they go)."""
    with transaction(factory) as session:
        return list(
            session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action != "user.sign_in")
                .order_by(AuditEvent.seq)
            )
        )


def test_new_entry_is_invisible_and_unusable_until_approved(
    factory, users, settings, catalog_dir, client
):
    pub = _publish(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    assert pub.review is not None and pub.review.kind == "new" and pub.status == "under_review"
    with transaction(factory) as session:
        assert public_datasets(session) == [] and catalog_entries(session) == {}
        assert latest_version(session, get_dataset(session, "clinic_visits")) is None
        with pytest.raises(NotFound):
            dataset_sources(session, ["clinic_visits"])
    # Not in the public catalogue, not even by name, for the public or a researcher.
    assert client.get("/api/catalog").json() == []
    assert client.get("/api/catalog/clinic_visits").status_code == 404
    alice = login(client, "alice")
    assert client.get("/api/catalog/clinic_visits", headers=alice).status_code == 404
    # Nobody can apply for it or put it in an agreement.
    with transaction(factory) as session:
        draft = create_application(
            session=session, actor=users["alice"], fields=complete_application()
        )
    with transaction(factory) as session, pytest.raises(ValidationFailed) as err:
        submit_application(
            session=session,
            actor=users["alice"],
            application_id=draft.id,
            today=date.today(),
            calendar=WorkCalendar(),
        )
    assert "'clinic_visits' is not in the public catalogue" in err.value.message
    with transaction(factory) as session, pytest.raises(Exception, match="clinic_visits"):
        import_agreement(session=session, actor=users["health"], agreement=agreement())
    # The provider sees its own dataset with where its review stands.
    own = client.get("/api/catalog/clinic_visits", headers=login(client, "health")).json()
    assert own["published"] is False
    assert own["catalogue_review"]["status"] == "under_review"
    assert own["catalogue_review"]["kind"] == "new" and own["catalogue_review"]["version"] == 1

    _decide(factory, users, pub.review.id, Decision.approve)
    actions = _actions(factory)
    assert actions[-1] == "catalog_review.published" and "catalog_review.submit" in actions
    assert "dataset.publish" not in actions  # nothing was published before the approval
    with transaction(factory) as session:
        assert [d.name for d in public_datasets(session)] == ["clinic_visits"]
        assert list(catalog_entries(session)) == ["clinic_visits"]
        assert latest_version(session, get_dataset(session, "clinic_visits")).version == 1
        assert dataset_sources(session, ["clinic_visits"])["clinic_visits"].name == "v1.parquet"
        import_agreement(session=session, actor=users["health"], agreement=agreement())
    shown = client.get("/api/catalog/clinic_visits").json()
    assert shown["version"] == 1 and shown["published"] is True
    assert "catalogue_review" not in shown  # the public does not see the review


def test_rejection_needs_a_legality_review_and_keeps_the_entry_out(
    factory, users, settings, catalog_dir, client
):
    pub = _publish(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    before = _actions(factory)
    with pytest.raises(ValidationFailed) as err:
        _decide(factory, users, pub.review.id, Decision.reject, text="  ")
    assert err.value.rule == "catalog-review-legality" and err.value.article == "Wuxi Art.12"
    assert "legality review" in err.value.message
    with pytest.raises(ValidationFailed):
        _decide(factory, users, pub.review.id, Decision.approve, text="")
    assert _actions(factory) == before  # refusals change nothing, not even the record
    with transaction(factory) as session:
        assert session.get(CatalogReview, pub.review.id).status == ReviewStatus.under_review

    reason = "Column cost is not in the resource catalogue (Shanghai Art.12)."
    _decide(factory, users, pub.review.id, Decision.reject, text=reason)
    with transaction(factory) as session:
        review = session.get(CatalogReview, pub.review.id)
        assert (review.status, review.legality_review, review.reviewed_by) == (
            "rejected",
            reason,
            "auth",
        )
        assert public_datasets(session) == [] and catalog_entries(session) == {}
    assert _actions(factory)[-1] == "catalog_review.rejected"
    with pytest.raises(InvalidStateTransition) as err:
        _decide(factory, users, pub.review.id, Decision.approve)
    assert err.value.rule == "catalog-review-transition"
    own = client.get("/api/catalog/clinic_visits", headers=login(client, "health")).json()
    assert own["catalogue_review"]["status"] == "rejected"
    assert own["catalogue_review"]["legality_review"] == reason
    # The provider may propose it again: a new review, and a new version number.
    again = _publish(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    assert again.review.kind == "new" and again.version.version == 2
    _decide(factory, users, again.review.id, Decision.approve)
    assert client.get("/api/catalog/clinic_visits").json()["version"] == 2


def test_entry_change_waits_and_the_pending_version_is_not_used(
    factory, users, settings, catalog_dir
):
    path = catalog_dir / "clinic_visits.yaml"
    publish_approved(factory, users, settings, path)
    changed = _publish(factory, users, settings, _edit(path, conditions="Accredited, ISO 27001."))
    assert changed.review.kind == "entry_change" and not changed.version.published
    with transaction(factory) as session:
        assert catalog_entries(session)["clinic_visits"].conditions == "Accredited institutions."
        assert latest_version(session, get_dataset(session, "clinic_visits")).version == 1
        assert dataset_sources(session, ["clinic_visits"])["clinic_visits"].name == "v1.parquet"
    # One proposal at a time: neither a refresh nor a class change while it is pending.
    with pytest.raises(Conflict) as err:
        _publish(factory, users, settings, path)
    assert err.value.rule == "catalog-review-pending" and "Shanghai Art.12" in err.value.article
    with transaction(factory) as session, pytest.raises(Conflict):
        change_open_class(
            session=session,
            actor=users["health"],
            name="clinic_visits",
            to_class=OpenClass.unconditional,
            basis="",
        )
    _decide(factory, users, changed.review.id, Decision.approve)
    with transaction(factory) as session:
        assert catalog_entries(session)["clinic_visits"].conditions == "Accredited, ISO 27001."
        assert latest_version(session, get_dataset(session, "clinic_visits")).version == 2


def test_leaving_non_open_needs_a_basis_and_applies_on_approval(
    factory, users, settings, catalog_dir
):
    publish_approved(factory, users, settings, catalog_dir / "secret.yaml")
    before = _actions(factory)
    with transaction(factory) as session, pytest.raises(PolicyViolation) as err:
        change_open_class(
            session=session,
            actor=users["health"],
            name="secret_registry",
            to_class=OpenClass.conditional,
            basis=" ",
        )
    assert err.value.rule == "reclassify-non-open" and "Shanghai Art.11" in err.value.article
    # The same rule when the class changes with a new entry file.
    path = _edit(catalog_dir / "secret.yaml", open_class="conditional", conditions="Vetted.")
    with pytest.raises(PolicyViolation, match="desensitisation"):
        _publish(factory, users, settings, path)
    assert _actions(factory) == before
    with transaction(factory) as session:
        assert (
            session.scalars(
                select(CatalogReview).where(CatalogReview.status == "under_review")
            ).all()
            == []
        )
        review = change_open_class(
            session=session,
            actor=users["health"],
            name="secret_registry",
            to_class=OpenClass.conditional,
            basis="desensitised per TR-7",
        )
        assert review.kind == "class_change" and review.from_class == "non_open"
    with transaction(factory) as session:
        assert get_dataset(session, "secret_registry").open_class == "non_open"
        assert public_datasets(session) == []
    _decide(factory, users, review.id, Decision.approve)
    with transaction(factory) as session:
        ds = get_dataset(session, "secret_registry")
        assert ds.open_class == "conditional" and ds.entry["open_class"] == "conditional"
        assert [d.name for d in public_datasets(session)] == ["secret_registry"]
        change = session.scalars(select(ClassChange)).one()
        assert (change.from_class, change.to_class, change.basis, change.changed_by) == (
            "non_open",
            "conditional",
            "desensitised per TR-7",
            "health",
        )
        assert list_filings(session) == []  # less strict: nothing to file
    assert _actions(factory)[-2:] == ["dataset.reclassify", "catalog_review.published"]


def test_stricter_class_is_filed_only_when_approved(factory, users, settings, catalog_dir):
    path = _edit(catalog_dir / "clinic_visits.yaml", open_class="unconditional")
    publish_approved(factory, users, settings, path)
    stricter = _publish(factory, users, settings, _edit(path, open_class="conditional"))
    assert stricter.review.kind == "class_change" and stricter.review.to_class == "conditional"
    with transaction(factory) as session:
        assert list_filings(session) == []
        assert get_dataset(session, "clinic_visits").open_class == "unconditional"
    _decide(factory, users, stricter.review.id, Decision.reject, text="Keep it unconditional.")
    with transaction(factory) as session:
        assert list_filings(session) == []
        assert get_dataset(session, "clinic_visits").open_class == "unconditional"
    with transaction(factory) as session:
        review = change_open_class(
            session=session,
            actor=users["health"],
            name="clinic_visits",
            to_class=OpenClass.conditional,
            basis="",
        )
    _decide(factory, users, review.id, Decision.approve)
    with transaction(factory) as session:
        assert get_dataset(session, "clinic_visits").open_class == "conditional"
        filings = list_filings(session)
        assert [(f.kind, f.object, f.filed_by) for f in filings] == [
            ("class_stricter", "dataset:clinic_visits", "health")
        ]
    assert _actions(factory)[-4:] == [
        "catalog_review.submit",
        "dataset.reclassify",
        "filing.create",
        "catalog_review.published",
    ]


def test_only_the_authority_decides(factory, users, settings, catalog_dir, client):
    pub = _publish(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    before = _actions(factory)
    for who in ("health", "market", "ops", "alice"):
        with pytest.raises(PermissionDenied) as err:
            _decide(factory, users, pub.review.id, Decision.approve, who=who)
        assert err.value.rule == "catalog-review-authority"
        assert "authority" in err.value.message and "Shanghai Art.12" in err.value.article
    # The provider cannot approve its own entry over HTTP either.
    own = client.post(
        f"/api/catalog-reviews/{pub.review.id}",
        json={"decision": "approve", "legality_review": LAWFUL},
        headers=login(client, "health"),
    )
    assert own.status_code == 403 and own.json()["rule"] == "catalog-review-authority"
    assert _actions(factory) == before
    # Nobody decides a proposal of their own, whatever their role.
    with transaction(factory) as session:
        review = session.get_one(CatalogReview, pub.review.id)
        session.expunge(review)
    review.submitted_by = "auth"
    with pytest.raises(PermissionDenied) as err:
        check_can_decide(users["auth"], review)
    assert err.value.rule == "catalog-review-own"


def test_review_api_lists_by_role_and_decides(factory, users, settings, catalog_dir, client):
    pub = _publish(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    auth, health = login(client, "auth"), login(client, "health")
    queue = client.get("/api/catalog-reviews?status=under_review", headers=auth)
    assert queue.status_code == 200
    assert [(r["id"], r["dataset"], r["kind"], r["status"]) for r in queue.json()] == [
        (pub.review.id, "clinic_visits", "new", "under_review")
    ]
    assert queue.json()[0]["proposed_entry"]["conditions"] == "Accredited institutions."
    assert len(client.get("/api/catalog-reviews", headers=health).json()) == 1
    assert client.get("/api/catalog-reviews", headers=login(client, "market")).json() == []
    assert client.get("/api/catalog-reviews", headers=login(client, "alice")).status_code == 403
    assert client.get("/api/catalog-reviews").status_code == 403
    bad = client.get("/api/catalog-reviews?status=maybe", headers=auth)
    assert bad.status_code == 422 and bad.json()["rule"] == "catalog-review-status"
    missing = client.post(
        f"/api/catalog-reviews/{pub.review.id}", json={"decision": "reject"}, headers=auth
    )
    assert missing.status_code == 422 and missing.json()["rule"] == "catalog-review-legality"
    assert client.get("/api/catalog").json() == []
    done = client.post(
        f"/api/catalog-reviews/{pub.review.id}",
        json={"decision": "approve", "legality_review": LAWFUL},
        headers=auth,
    )
    assert done.status_code == 200 and done.json()["reviewed_by"] == "auth"
    assert done.json()["legality_review"] == LAWFUL
    assert client.get("/api/catalog-reviews?status=under_review", headers=auth).json() == []
    assert [d["name"] for d in client.get("/api/catalog").json()] == ["clinic_visits"]
    unknown = client.post(
        "/api/catalog-reviews/999",
        json={"decision": "approve", "legality_review": "x"},
        headers=auth,
    )
    assert unknown.status_code == 404


def test_review_on_the_command_line(cli_env, catalog_dir):
    entry = str(catalog_dir / "clinic_visits.yaml")
    published = runner.invoke(app, ["catalog", "publish", entry, "--as", "health"])
    assert published.exit_code == 0 and '"status": "under_review"' in published.output
    assert runner.invoke(app, ["catalog", "list"]).output == ""
    listed = runner.invoke(app, ["catalog", "reviews", "--as", "auth"])
    assert listed.exit_code == 0
    assert listed.output.startswith("1\tclinic_visits\tnew\tconditional\tunder_review")
    own = runner.invoke(
        app, ["catalog", "review", "1", "--approve", "--legality-review", LAWFUL, "--as", "health"]
    )
    assert own.exit_code == 1 and "[catalog-review-authority; Shanghai Art.12" in own.output
    neither = runner.invoke(
        app, ["catalog", "review", "1", "--legality-review", "x", "--as", "auth"]
    )
    assert neither.exit_code == 1 and "exactly one of --approve or --reject" in neither.output
    bare = runner.invoke(app, ["catalog", "review", "1", "--reject", "--as", "auth"])
    assert bare.exit_code == 1 and "catalog-review-legality" in bare.output
    ok = runner.invoke(
        app, ["catalog", "review", "1", "--approve", "--legality-review", LAWFUL, "--as", "auth"]
    )
    assert ok.exit_code == 0 and ok.output.strip() == "catalogue review 1 published"
    assert runner.invoke(app, ["catalog", "list"]).output.startswith(
        "clinic_visits\tconditional\tv1"
    )
