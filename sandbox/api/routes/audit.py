"""The record for oversight: browse, verify the chain, take signed checkpoints, export (R7)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import FileResponse
from sqlalchemy import select

from sandbox.accounts.models import Role
from sandbox.accounts.permissions import require_role
from sandbox.audit.authority_copy import authority_entry, checkpoints_after
from sandbox.audit.checkpoint import load_signing_key, make_checkpoint, public_key_hex, signed
from sandbox.audit.export import export_record
from sandbox.audit.models import AuditEvent
from sandbox.audit.record import record
from sandbox.audit.verify import verify_chain
from sandbox.http.deps import DbDep, OversightDep, SettingsDep, UserDep

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("/events")
def events(db: DbDep, user: OversightDep, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    limit = max(1, min(limit, 1000))
    with db.read() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit)
        )
        return [
            {
                "seq": e.seq,
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "object": e.object,
                "details": e.details,
                "hash": e.hash,
            }
            for e in rows
        ]


@router.get("/verify")
def verify(db: DbDep, user: OversightDep) -> dict[str, Any]:
    with db.read() as session:
        result = verify_chain(session)
    return {
        "ok": result.ok,
        "count": result.count,
        "problems": [{"seq": p.seq, "kind": p.kind, "message": p.message} for p in result.problems],
    }


@router.get("/public-key")
def public_key(settings: SettingsDep) -> dict[str, str]:
    """The key the authority checks checkpoints with (published on the platform)."""
    return {"public_key": public_key_hex(load_signing_key(settings.keys_dir))}


@router.post("/checkpoints")
def checkpoint(db: DbDep, settings: SettingsDep, user: UserDep) -> dict[str, Any]:
    """A signed checkpoint of the head, for the authority to keep outside the platform."""
    require_role(user, Role.authority)
    key = load_signing_key(settings.keys_dir)
    with db.tx() as session:
        cp = signed(make_checkpoint(session, key), public_key_hex(key))
        record(
            session,
            actor=user.username,
            action="audit.checkpoint",
            object=f"audit:{cp.seq}",
            details={"hash": cp.hash},
        )
    return cp.to_json()


@router.get("/checkpoints")
def checkpoints(
    db: DbDep, settings: SettingsDep, user: UserDep, after: Annotated[int, Query(ge=0)] = 0
) -> list[dict[str, Any]]:
    """The signed checkpoints past seq ``after``, each with its signature, public key and key
    fingerprint: the authority keeps them off the platform, where the operator cannot
    rewrite them, and checks the record with ``sandbox audit verify --checkpoints``."""
    require_role(user, Role.authority)
    public_key = public_key_hex(load_signing_key(settings.keys_dir))
    with db.read() as session:
        return [authority_entry(cp) for cp in checkpoints_after(session, public_key, after)]


@router.get("/export")
def export(
    request: Request, settings: SettingsDep, user: UserDep, background: BackgroundTasks
) -> FileResponse:
    """The whole record as JSON Lines with its signed checkpoint, for offline verification."""
    require_role(user, Role.authority)
    out = Path(tempfile.mkdtemp()) / "audit-record.jsonl"
    export_record(request.app.state.sessionmaker, load_signing_key(settings.keys_dir), out)
    background.add_task(out.unlink, missing_ok=True)
    return FileResponse(out, media_type="application/x-ndjson", filename=out.name)
