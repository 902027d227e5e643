"""A provider withdraws its catalogue proposal; a rejected or withdrawn proposal's data goes.

Withdrawal (under_review -> withdrawn) is the provider's, with a reason; the authority
rejects instead. The Parquet file of a version proposed with a review that is rejected
or withdrawn is deleted with the transaction that closes the review, and put back if
that transaction rolls back. Every test runs on SQLite and PostgreSQL, and the fixtures
check the audit chain afterwards, refusals included.
"""

from __future__ import annotations

import json
import tarfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from sandbox.accounts.models import Role
from sandbox.accounts.service import create_user
from sandbox.audit.models import AuditEvent
from sandbox.backup.service import create_backup
from sandbox.catalog.discard import is_discarded
from sandbox.catalog.models import CatalogReview, DatasetVersion, ReviewStatus
from sandbox.catalog.review import (
    TRANSITIONS,
    Decision,
    decide_review,
    withdraw_review,
    withdrawal_reason,
)
from sandbox.catalog.service import (
    Publication,
    dataset_sources,
    get_dataset,
    latest_version,
    publish_dataset,
)
from sandbox.cli.main import app
from sandbox.contracts import load_catalog_entry
from sandbox.db.base import transaction
from sandbox.errors import (
    InvalidStateTransition,
    PermissionDenied,
    SandboxError,
    ValidationFailed,
)
from sandbox.notifications.models import Notification
from sandbox.notifications.service import run
from sandbox.settings import Settings
from sandbox.statistics.service import compute
from sandbox.workcalendar import WorkCalendar
from tests.control_plane.conftest import PASSWORD, PROVIDER, login
from tests.control_plane.helpers import publish_approved

REASON = "Column cost is in yuan, not fen: we will propose it again corrected."
LAWFUL = "Lawful: open class and conditions follow the classification rules."
runner = CliRunner()


def _propose(factory, users, settings, path: Path) -> Publication:  # noqa: ANN001
    entry = load_catalog_entry(path)
    with transaction(factory) as session:
        return publish_dataset(
            session=session,
            actor=users["health"],
            entry=entry,
            data_path=entry.source_path(),
            settings=settings,
        )


def _withdraw(factory, users, review_id: int, who: str = "health", reason: str = REASON):  # noqa: ANN001, ANN202
    with transaction(factory) as session:
        return withdraw_review(
            session=session, actor=users[who], review_id=review_id, reason=reason
        )


def _reject(factory, users, review_id: int) -> None:  # noqa: ANN001
    with transaction(factory) as session:
        decide_review(
            session=session,
            actor=users["auth"],
            review_id=review_id,
            decision=Decision.reject,
            legality_review="The conditions do not follow the classification rules.",
        )


def _edit(path: Path, **changes: Any) -> Path:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc.update(changes)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def _events(factory: sessionmaker[Session]) -> list[tuple[str, dict]]:
    """The record's (action, details) in order, sign-ins left out."""
    with transaction(factory) as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.action != "user.sign_in").order_by(AuditEvent.seq)
        )
        return [(e.action, json.loads(e.details)) for e in rows]


def _status(factory: sessionmaker[Session], review_id: int) -> str:
    with transaction(factory) as session:
        return session.get_one(CatalogReview, review_id).status


def _folder(settings: Settings) -> Path:
    return settings.datasets_dir / "clinic_visits"


def test_withdrawal_is_a_transition_of_its_own():
    assert (ReviewStatus.under_review, ReviewStatus.withdrawn) in TRANSITIONS
    assert not [t for t in TRANSITIONS if t[0] != ReviewStatus.under_review]


def test_a_provider_of_the_organisation_withdraws_and_may_propose_again(
    factory, users, settings, catalog_dir
):
    path = catalog_dir / "clinic_visits.yaml"
    # Any provider of the organisation, not only whoever proposed it.
    with transaction(factory) as session:
        users["health2"] = create_user(
            session=session,
            username="health2",
            password=PASSWORD,
            role=Role.provider,
            display_name="Health 2",
            organisation=PROVIDER,
        )
    pub = _propose(factory, users, settings, path)
    proposed = Path(pub.version.path)
    assert proposed.is_file()
    review = _withdraw(factory, users, pub.review.id, who="health2", reason=f"  {REASON} ")
    assert review.status == ReviewStatus.withdrawn
    action, details = _events(factory)[-1]
    assert action == "catalog_review.withdrawn"
    assert details["reason"] == REASON and details["review"] == pub.review.id
    assert details["discarded_version"] == 1 and "Shanghai Art.12" in details["article"]
    # The proposed data is gone, nothing is left aside, nothing was published.
    assert not proposed.exists() and list(_folder(settings).iterdir()) == []
    with transaction(factory) as session:
        stored = session.get_one(CatalogReview, pub.review.id)
        assert withdrawal_reason(session, stored) == REASON
        assert stored.reviewed_by is None and stored.legality_review == ""
        ds = get_dataset(session, "clinic_visits")
        assert not ds.published and latest_version(session, ds) is None
        assert is_discarded(session, session.get_one(DatasetVersion, pub.version.id))
    # A new proposal is possible at once: a new review, a new version number.
    again = _propose(factory, users, settings, path)
    assert again.review.kind == "new" and again.version.version == 2
    assert Path(again.version.path).is_file()
    actions = [a for a, _ in _events(factory)]
    assert actions[-3:] == [
        "catalog_review.submit",
        "catalog_review.withdrawn",
        "catalog_review.submit",
    ]


def test_withdrawal_refusals_name_the_rule_and_change_nothing(
    factory, users, settings, catalog_dir
):
    pub = _propose(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    before = _events(factory)
    for who in ("market", "auth", "ops", "alice"):
        with pytest.raises(PermissionDenied) as err:
            _withdraw(factory, users, pub.review.id, who=who)
        assert err.value.rule == "catalog-review-withdraw-provider", who
        assert "Shanghai Art.12" in err.value.article
    with pytest.raises(PermissionDenied) as err:
        _withdraw(factory, users, pub.review.id, who="auth")
    assert "rejects it" in err.value.message  # the authority is told what it does instead
    with pytest.raises(PermissionDenied) as err:
        _withdraw(factory, users, pub.review.id, who="market")
    assert PROVIDER in err.value.message and "city-market-regulation" in err.value.message
    for empty in ("", "   "):
        with pytest.raises(ValidationFailed) as err:
            _withdraw(factory, users, pub.review.id, reason=empty)
        assert err.value.rule == "catalog-review-withdraw-reason"
        assert "reason" in err.value.message and "Shanghai Art.12" in err.value.article
    assert _events(factory) == before
    assert _status(factory, pub.review.id) == ReviewStatus.under_review
    assert Path(pub.version.path).is_file()

    # Once decided (or withdrawn), a review cannot be withdrawn: the status is named.
    with transaction(factory) as session:
        decide_review(
            session=session,
            actor=users["auth"],
            review_id=pub.review.id,
            decision=Decision.approve,
            legality_review=LAWFUL,
        )
    with pytest.raises(InvalidStateTransition) as err:
        _withdraw(factory, users, pub.review.id)
    assert err.value.rule == "catalog-review-transition"
    assert "already published" in err.value.message and "Shanghai Art.12" in err.value.article
    assert Path(pub.version.path).is_file()  # the published version's file is untouched
    path = _edit(catalog_dir / "clinic_visits.yaml", conditions="Accredited, ISO 27001.")
    changed = _propose(factory, users, settings, path)
    _withdraw(factory, users, changed.review.id)
    with pytest.raises(InvalidStateTransition, match="already withdrawn"):
        _withdraw(factory, users, changed.review.id)
    third = _propose(factory, users, settings, path)
    _reject(factory, users, third.review.id)
    with pytest.raises(InvalidStateTransition, match="already rejected"):
        _withdraw(factory, users, third.review.id)
    with pytest.raises(InvalidStateTransition, match="already withdrawn"):
        _reject(factory, users, changed.review.id)


def test_rejected_and_withdrawn_data_is_deleted_published_data_stays_and_backs_up(
    factory, users, settings, catalog_dir, tmp_path
):
    path = catalog_dir / "clinic_visits.yaml"
    first = publish_approved(factory, users, settings, path)
    rejected = _propose(factory, users, settings, _edit(path, conditions="Accredited, v2."))
    _reject(factory, users, rejected.review.id)
    withdrawn = _propose(factory, users, settings, _edit(path, conditions="Accredited, v3."))
    _withdraw(factory, users, withdrawn.review.id)
    pending = _propose(factory, users, settings, _edit(path, conditions="Accredited, v4."))
    v1, v2, v3, v4 = (Path(p.version.path) for p in (first, rejected, withdrawn, pending))
    assert [p.name for p in (v1, v2, v3, v4)] == [f"v{n}.parquet" for n in (1, 2, 3, 4)]
    assert v1.is_file() and v4.is_file()
    assert not v2.exists() and not v3.exists()
    assert sorted(p.name for p in _folder(settings).iterdir()) == ["v1.parquet", "v4.parquet"]
    rejection = [d for a, d in _events(factory) if a == "catalog_review.rejected"][-1]
    assert rejection["discarded_version"] == 2
    with transaction(factory) as session:
        marks = {
            v.version: is_discarded(session, v)
            for v in session.scalars(select(DatasetVersion).order_by(DatasetVersion.version))
        }
        assert marks == {1: False, 2: True, 3: True, 4: False}
        # What the catalogue, agreements and provisioning read is the approved version.
        assert latest_version(session, get_dataset(session, "clinic_visits")).version == 1
        assert dataset_sources(session, ["clinic_visits"])["clinic_visits"] == v1

    out = tmp_path / "backups" / "platform.tar.gz"
    made = create_backup(
        factory=factory, settings=settings, actor=users["ops"], out=out, unencrypted=True
    )
    with tarfile.open(out) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
    datasets = sorted(n for n in names if n.startswith("datasets/"))
    assert datasets == ["datasets/clinic_visits/v1.parquet", "datasets/clinic_visits/v4.parquet"]
    assert made.datasets == 2 and len(manifest["datasets"]) == 2


def test_a_decision_that_rolls_back_leaves_the_file_in_place(factory, users, settings, catalog_dir):
    pub = _propose(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    proposed = Path(pub.version.path)
    before = _events(factory)

    class Later(Exception):
        """Something after the withdrawal fails in the same transaction."""

    with pytest.raises(Later), transaction(factory) as session:
        withdraw_review(session=session, actor=users["health"], review_id=pub.review.id,
                        reason=REASON)  # fmt: skip
        assert not proposed.exists()  # moved aside while the transaction is open
        raise Later
    assert proposed.is_file() and [p.name for p in _folder(settings).iterdir()] == ["v1.parquet"]
    assert _status(factory, pub.review.id) == ReviewStatus.under_review
    assert _events(factory) == before

    # A session closed without committing puts the file back too.
    session = factory()
    try:
        withdraw_review(session=session, actor=users["health"], review_id=pub.review.id,
                        reason=REASON)  # fmt: skip
    finally:
        session.close()
    assert proposed.is_file() and _status(factory, pub.review.id) == ReviewStatus.under_review

    # When the file cannot be moved aside, the decision is refused and nothing changes.
    blocker = _folder(settings) / ".v1.parquet.discarded"
    blocker.mkdir()
    (blocker / "keep").write_text("in the way", encoding="utf-8")
    with pytest.raises(SandboxError) as err:
        _reject(factory, users, pub.review.id)
    assert err.value.rule == "catalog-review-discard" and "Shanghai Art.12" in err.value.article
    assert "nothing was changed" in err.value.message
    assert proposed.is_file() and _status(factory, pub.review.id) == ReviewStatus.under_review
    assert _events(factory) == before
    (blocker / "keep").unlink()
    blocker.rmdir()
    _reject(factory, users, pub.review.id)
    assert not proposed.exists() and list(_folder(settings).iterdir()) == []


def test_withdrawal_over_the_api(factory, users, settings, catalog_dir, client):
    pub = _propose(factory, users, settings, catalog_dir / "clinic_visits.yaml")
    url = f"/api/catalog-reviews/{pub.review.id}/withdraw"
    health = login(client, "health")
    for who in ("market", "auth"):
        refused = client.post(url, json={"reason": REASON}, headers=login(client, who))
        assert refused.status_code == 403
        assert refused.json()["rule"] == "catalog-review-withdraw-provider"
        assert "Shanghai Art.12" in refused.json()["article"]
    assert client.post(url, json={"reason": REASON}).status_code == 403  # not signed in
    empty = client.post(url, json={"reason": " "}, headers=health)
    assert empty.status_code == 422 and empty.json()["rule"] == "catalog-review-withdraw-reason"
    assert _status(factory, pub.review.id) == ReviewStatus.under_review
    done = client.post(url, json={"reason": REASON}, headers=health)
    assert done.status_code == 200
    assert done.json()["status"] == "withdrawn" and done.json()["withdrawal_reason"] == REASON
    shown = client.get(f"/api/catalog-reviews/{pub.review.id}", headers=login(client, "auth"))
    assert shown.json()["withdrawal_reason"] == REASON
    listed = client.get("/api/catalog-reviews?status=withdrawn", headers=health).json()
    assert [r["id"] for r in listed] == [pub.review.id]
    again = client.post(url, json={"reason": REASON}, headers=health)
    assert again.status_code == 409 and again.json()["rule"] == "catalog-review-transition"
    assert "already withdrawn" in again.json()["error"]
    assert not Path(pub.version.path).exists()
    missing = client.post(
        "/api/catalog-reviews/999/withdraw", json={"reason": REASON}, headers=health
    )
    assert missing.status_code == 404


def test_withdrawal_on_the_command_line(cli_env, catalog_dir):
    entry = str(catalog_dir / "clinic_visits.yaml")
    published = runner.invoke(app, ["catalog", "publish", entry, "--as", "health"])
    assert published.exit_code == 0 and '"status": "under_review"' in published.output
    by_auth = runner.invoke(
        app, ["catalog", "withdraw-review", "1", "--reason", REASON, "--as", "auth"]
    )
    assert by_auth.exit_code == 1
    assert "[catalog-review-withdraw-provider; Shanghai Art.12" in by_auth.output
    bare = runner.invoke(app, ["catalog", "withdraw-review", "1", "--as", "health"])
    assert bare.exit_code == 1 and "catalog-review-withdraw-reason" in bare.output
    ok = runner.invoke(
        app, ["catalog", "withdraw-review", "1", "--reason", REASON, "--as", "health"]
    )
    assert ok.exit_code == 0 and ok.output.strip() == "catalogue review 1 withdrawn"
    listed = runner.invoke(app, ["catalog", "reviews", "--status", "withdrawn", "--as", "auth"])
    assert listed.output.startswith("1\tclinic_visits\tnew\tconditional\twithdrawn")
    twice = runner.invoke(
        app, ["catalog", "withdraw-review", "1", "--reason", REASON, "--as", "health"]
    )
    assert twice.exit_code == 1 and "already withdrawn" in twice.output
    assert not (cli_env.datasets_dir / "clinic_visits" / "v1.parquet").exists()
    again = runner.invoke(app, ["catalog", "publish", entry, "--as", "health"])
    assert again.exit_code == 0 and '"version": 2' in again.output


def test_the_authority_hears_of_a_withdrawal_and_statistics_count_it(
    factory, users, settings, catalog_dir
):
    path = catalog_dir / "clinic_visits.yaml"
    pub = _propose(factory, users, settings, path)
    _withdraw(factory, users, pub.review.id)
    _reject(factory, users, _propose(factory, users, settings, path).review.id)
    _propose(factory, users, settings, path)
    run(factory, settings, date.today())
    with transaction(factory) as session:
        notices = session.scalars(
            select(Notification).where(Notification.kind == "catalog_review_withdrawn")
        ).all()
        assert [(n.recipient, n.object) for n in notices] == [("auth", "dataset:clinic_visits")]
        assert f"review #{pub.review.id} withdrawn: {REASON}" in notices[0].body
        assert "Catalogue proposal withdrawn" in notices[0].subject
        figures = compute(
            session=session,
            actor=users["auth"],
            calendar=WorkCalendar(),
            today=date.today(),
            timezone="Asia/Shanghai",
        )
    counts = {f.name: f.counts for f in figures.figures}["catalog_reviews_by_status"]
    assert counts == {"rejected": 1, "under_review": 1, "withdrawn": 1}
