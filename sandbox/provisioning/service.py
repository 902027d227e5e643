"""What an operator does to workspaces, each step with an audit event.

Operators run the platform without reading the data (R16): these functions
build, rebuild and destroy the per-agreement database but never return its rows.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from export_review.retention import destroy_ended_exports
from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.agreements.lifecycle import ENDED
from sandbox.agreements.models import AgreementRecord, AgreementStatus
from sandbox.agreements.service import get_agreement
from sandbox.audit.record import record
from sandbox.catalog.service import dataset_versions
from sandbox.db.base import utcnow
from sandbox.errors import PolicyViolation
from sandbox.provisioning.database import build_database, destroy_database
from sandbox.provisioning.models import Workspace, WorkspaceStatus
from sandbox.provisioning.runtime import deliver_database, prepare_network
from sandbox.settings import Settings


def provision(*, session: Session, settings: Settings, actor: User, agreement_id: str) -> Workspace:
    """Build (or rebuild) the agreement's database and register its workspace."""
    require_role(actor, Role.operator)
    rec = get_agreement(session, agreement_id)
    if rec.status != AgreementStatus.active:
        raise PolicyViolation(
            "agreement-not-active",
            "Shanghai Art.26, 36",
            f"agreement {rec.id} is {rec.status}; only active agreements are provisioned",
        )
    # The confined network first: without a Docker engine, a platform that runs
    # workspaces refuses to provision rather than leave a workspace unconfined.
    network = prepare_network(settings, rec.id)
    return _build(
        session, settings, rec, actor=actor.username, action="workspace.provision", network=network
    )


def _build(
    session: Session,
    settings: Settings,
    rec: AgreementRecord,
    *,
    actor: str,
    action: str,
    network: str | None = None,
) -> Workspace:
    path, left_out = build_database(session, settings, rec)
    deliver_database(settings, rec.id)  # on Swarm, the worker restarts on the new file
    versions = dataset_versions(session, [n for n in rec.spec["datasets"] if n not in left_out])
    ws = session.get(Workspace, rec.id) or Workspace(agreement_id=rec.id)
    ws.status = WorkspaceStatus.provisioned
    ws.database_path = str(path)
    ws.dataset_versions = versions
    ws.left_out = left_out
    ws.built_at = ws.updated_at = utcnow()
    session.add(ws)
    session.flush()
    record(
        session,
        actor=actor,
        action=action,
        object=f"agreement:{rec.id}",
        details={"dataset_versions": versions, "left_out": left_out}
        | ({"network": network} if network else {}),
    )
    return ws


def rebuild_if_provisioned(session: Session, settings: Settings, agreement_id: str) -> bool:
    """After an amendment, the database follows the new version at once."""
    ws = session.get(Workspace, agreement_id)
    if ws is None or ws.status != WorkspaceStatus.provisioned:
        return False
    _build(
        session,
        settings,
        get_agreement(session, agreement_id),
        actor="platform",
        action="workspace.rebuild",
    )
    return True


def rebuild_for_dataset(session: Session, settings: Settings, dataset: str) -> list[str]:
    """After a dataset is suspended or restored, rebuild every live workspace that uses it.

    Queries are already refused from the moment of suspension (the guard reads
    the suspension from the database); the rebuild also removes the data itself.
    """
    rebuilt = []
    for ws in session.scalars(
        select(Workspace).where(Workspace.status == WorkspaceStatus.provisioned)
    ):
        rec = get_agreement(session, ws.agreement_id)
        if dataset in rec.spec["datasets"] and rec.status not in ENDED:
            _build(session, settings, rec, actor="platform", action="workspace.rebuild")
            rebuilt.append(rec.id)
    return rebuilt


def destroy_ended(session: Session, settings: Settings) -> list[str]:
    """Destroy the database and key of every workspace whose agreement has ended, and the
    files submitted for export under it (R16); the agreements whose workspace went."""
    destroyed = []
    for ws in session.scalars(
        select(Workspace).where(Workspace.status != WorkspaceStatus.destroyed)
    ):
        rec = get_agreement(session, ws.agreement_id)
        if rec.status in ENDED:
            shredded = destroy_database(settings, rec.id)
            ws.status = WorkspaceStatus.destroyed
            ws.updated_at = utcnow()
            record(
                session,
                actor="platform",
                action="workspace.destroy",
                object=f"agreement:{rec.id}",
                details={"reason": f"agreement {rec.status}", "article": "Rizhao Art.31"},
            )
            if shredded:
                record(
                    session,
                    actor="platform",
                    action="key.destroy",
                    object=f"agreement:{rec.id}",
                    details={
                        "key": "data key at rest",
                        "opens": "database and export files",
                        "article": "Rizhao Art.31",
                    },
                )
            destroyed.append(rec.id)
    destroy_ended_exports(session, settings)
    return destroyed


def list_workspaces(session: Session, actor: User) -> list[Workspace]:
    require_role(actor, Role.operator, Role.authority)
    return list(session.scalars(select(Workspace).order_by(Workspace.agreement_id)))
