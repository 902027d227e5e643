"""The recurring duties, each run once per call.

Every duty is idempotent and takes its turn on the audit record, so two platform
processes running them at once, or a run repeated after a crash, change nothing
twice. A duty that fails does not stop the others: its error is reported and the
next run tries again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.agreements.service import run_lifecycle
from sandbox.audit.checkpoint import load_signing_key, make_checkpoint
from sandbox.audit.models import AuditEvent
from sandbox.backup.stored import backup_if_due
from sandbox.catalog.encryption import shred_retired_keys
from sandbox.db.base import transaction
from sandbox.errors import SandboxError
from sandbox.notifications.service import run as run_notifications
from sandbox.provisioning.runtime import OpenTransaction, WorkspaceStop, enforce_agreement_status
from sandbox.provisioning.service import destroy_ended
from sandbox.settings import Settings


@dataclass
class LifecycleResult:
    #: (agreement id, new status) for every agreement the day moved.
    changed: list[tuple[str, str]]
    #: Agreements whose workspace database and key were destroyed (R16).
    destroyed: list[str]
    stops: list[WorkspaceStop]


def agreement_lifecycle(
    settings: Settings, tx: OpenTransaction, *, today: date, actor: str
) -> LifecycleResult:
    """Expire by date and terminate after a missed rectification (committed first), stop
    those agreements' workspaces, then destroy the data of every ended agreement (R16)."""
    with tx() as session:
        changed = run_lifecycle(session, today=today)
    stops = enforce_agreement_status(settings, tx, [a for a, _ in changed], actor=actor)
    with tx() as session:
        destroyed = destroy_ended(session, settings)
    return LifecycleResult(changed, destroyed, stops)


@dataclass
class DutiesReport:
    """What one run did, duty by duty; ``errors`` names each duty that failed and why."""

    done: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def run_duties(settings: Settings, factory: sessionmaker[Session], *, today: date) -> DutiesReport:
    """The lifecycle first (its decisions become notices), then the keys of dataset versions
    no longer kept, notices, a backup when one is due, then a signed checkpoint of the
    record's head so later tampering shows against it."""
    tx = partial(transaction, factory)
    duties: dict[str, Callable[[], Any]] = {
        "agreement_lifecycle": lambda: agreement_lifecycle(
            settings, tx, today=today, actor="platform"
        ),
        "dataset_key_shredding": lambda: shred_retired_keys(settings, factory),
        "notifications": lambda: run_notifications(factory, settings, today),
        "backup": lambda: _backup(settings, factory),
        "audit_checkpoint": lambda: _checkpoint(settings, factory),
    }
    report = DutiesReport()
    for name, duty in duties.items():
        try:
            report.done[name] = duty()
        except (SandboxError, OSError) as exc:
            report.errors[name] = f"{type(exc).__name__}: {exc}"
    return report


def _backup(settings: Settings, factory: sessionmaker[Session]) -> dict[str, str | None]:
    """A backup when one is due (before the checkpoint, which then signs its record too)."""
    made = backup_if_due(factory=factory, settings=settings, now=datetime.now(UTC))
    return {"written": made.path.name if made else None}


def _checkpoint(settings: Settings, factory: sessionmaker[Session]) -> dict[str, int]:
    """The head's signed checkpoint (made once per head); nothing while the record is empty."""
    with transaction(factory) as session:
        if session.scalar(select(AuditEvent.seq).limit(1)) is None:
            return {"seq": 0}
        checkpoint = make_checkpoint(session, load_signing_key(settings.keys_dir))
        return {"seq": checkpoint.seq}
