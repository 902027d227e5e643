"""The recurring duties: one run moves the lifecycle, makes the notices and signs the head;
a second run changes nothing; a failing duty does not stop the others; the timer and
``sandbox duties run`` drive the same code."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.agreements.service import import_agreement
from sandbox.audit.models import AuditCheckpoint, AuditEvent
from sandbox.backup import crypto
from sandbox.backup.crypto import generate_key_pair
from sandbox.backup.service import restore_backup
from sandbox.cli.main import app
from sandbox.db.base import transaction
from sandbox.duties.run import DutiesReport, run_duties
from sandbox.duties.timer import DutyTimer
from sandbox.notifications.models import Notification
from tests.backup.conftest import target_url
from tests.control_plane.helpers import agreement, publish_all

LAST_DAY = date(2026, 12, 31)


@pytest.fixture
def ending(factory, users, settings, catalog_dir):  # noqa: ANN001, ANN201
    """An active agreement whose last day is LAST_DAY."""
    publish_all(factory, users, settings, catalog_dir)
    with transaction(factory) as session:
        import_agreement(
            session=session,
            actor=users["health"],
            agreement=agreement(valid_from=LAST_DAY - timedelta(days=90), valid_until=LAST_DAY),
        )


def status(factory) -> AgreementStatus:  # noqa: ANN001
    with transaction(factory) as session:
        return session.get_one(AgreementRecord, "AGR-T-0001").status


def head_and_checkpoint(factory) -> tuple[int, int | None]:  # noqa: ANN001
    with transaction(factory) as session:
        head = session.scalar(select(func.max(AuditEvent.seq)))
        return head, session.scalar(select(func.max(AuditCheckpoint.seq)))


def notices(factory, kind: str) -> set[str]:  # noqa: ANN001
    with transaction(factory) as session:
        rows = session.scalars(select(Notification.recipient).where(Notification.kind == kind))
        return set(rows)


def test_one_run_does_every_duty_and_a_second_changes_nothing(factory, settings, ending):  # noqa: ANN001
    week_before = run_duties(settings, factory, today=LAST_DAY - timedelta(days=6))
    assert week_before.errors == {}
    assert week_before.done["agreement_lifecycle"].changed == []
    assert notices(factory, "agreement_expiring_7") == {"alice", "health"}
    head, signed = head_and_checkpoint(factory)
    assert signed == head  # the checkpoint signs the head, notices included

    after = run_duties(settings, factory, today=LAST_DAY + timedelta(days=1))
    assert after.errors == {}
    assert after.done["agreement_lifecycle"].changed == [("AGR-T-0001", "expired")]
    assert status(factory) == AgreementStatus.expired
    head, signed = head_and_checkpoint(factory)
    assert signed == head

    again = run_duties(settings, factory, today=LAST_DAY + timedelta(days=1))
    assert again.errors == {} and again.done["agreement_lifecycle"].changed == []
    assert again.done["notifications"].created == 0
    assert head_and_checkpoint(factory) == (head, head)  # nothing new to record or sign


def test_a_failing_duty_does_not_stop_the_others(factory, settings, ending):  # noqa: ANN001
    shutil.rmtree(settings.keys_dir, ignore_errors=True)  # (the users' authenticators' key)
    settings.keys_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.keys_dir.write_text("a file where the keys folder should be")
    report = run_duties(settings, factory, today=LAST_DAY + timedelta(days=1))
    assert set(report.errors) == {"audit_checkpoint"}
    assert status(factory) == AgreementStatus.expired
    assert report.done["notifications"].created > 0
    assert head_and_checkpoint(factory)[1] is None


def test_the_timer_runs_at_once_and_keeps_running(factory, settings, ending):  # noqa: ANN001
    reports: list[DutiesReport] = []
    two = threading.Event()

    def seen(report: DutiesReport) -> None:
        reports.append(report)
        if len(reports) >= 2:
            two.set()

    timer = DutyTimer(settings, 0.01, on_report=seen, clock=lambda: LAST_DAY + timedelta(days=1))
    timer.start()
    try:
        assert two.wait(120), "the timer did not run twice"
    finally:
        timer.stop()
    assert reports[0].done["agreement_lifecycle"].changed == [("AGR-T-0001", "expired")]
    assert all(r.errors == {} for r in reports)
    assert status(factory) == AgreementStatus.expired


def test_stopped_at_once_the_timer_still_runs_once(factory, settings, ending):  # noqa: ANN001
    timer = DutyTimer(settings, 3600, clock=lambda: LAST_DAY + timedelta(days=1))
    timer.start()
    timer.stop()
    assert status(factory) == AgreementStatus.expired


def test_cli_prints_the_report_and_exits_1_when_a_duty_failed(
    cli_env,  # noqa: ANN001
    factory,  # noqa: ANN001
    ending,  # noqa: ANN001
) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["duties", "run", "--today", "2027-01-01"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.output)
    assert report["errors"] == {}
    assert report["done"]["agreement_lifecycle"]["changed"] == [["AGR-T-0001", "expired"]]
    assert report["done"]["audit_checkpoint"]["seq"] == head_and_checkpoint(factory)[0]

    keys = cli_env.keys_dir
    for key in keys.iterdir():
        key.unlink()
    keys.rmdir()
    keys.write_text("not a folder")
    failed = runner.invoke(app, ["duties", "run", "--today", "2027-01-01"])
    assert failed.exit_code == 1
    assert set(json.loads(failed.output)["errors"]) == {"audit_checkpoint"}


def test_a_backup_is_made_when_due_and_the_checkpoint_signs_it(
    factory,  # noqa: ANN001
    settings,  # noqa: ANN001
    db_url: str,
    ending,  # noqa: ANN001
    tmp_path,  # noqa: ANN001
) -> None:
    day = LAST_DAY - timedelta(days=40)
    unkeyed = run_duties(settings, factory, today=day)
    assert unkeyed.errors == {} and unkeyed.done["backup"] == {"written": None}
    assert not settings.backups_dir.exists()  # never a plain backup unattended

    key = generate_key_pair(tmp_path / "operator")
    keyed = settings.model_copy(update={"backup_recipient": key.recipient})
    first = run_duties(keyed, factory, today=day)
    assert first.errors == {}
    made = keyed.backups_dir / first.done["backup"]["written"]
    assert made.read_bytes().startswith(crypto.HEADER)
    with transaction(factory) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "backup.create")
        ).one()
    assert event.actor == "platform" and event.object == f"backup:{made.name}"
    head, signed = head_and_checkpoint(factory)
    assert signed == head  # the checkpoint came after the backup's own event

    assert run_duties(keyed, factory, today=day).done["backup"] == {"written": None}  # not due
    long_ago = time.time() - 25 * 3600
    os.utime(made, (long_ago, long_ago))
    later = run_duties(keyed, factory, today=day).done["backup"]["written"]
    assert later and sorted(p.name for p in keyed.backups_dir.iterdir()) == sorted(
        [made.name, later]
    )
    into = tmp_path / "restored"
    with target_url(db_url) as url:
        restored = restore_backup(
            archive=keyed.backups_dir / later, into=into, actor="ops", db_url=url,
            key=key.private_key,
        )  # fmt: skip
    assert restored.encrypted
