"""The authority's checkpoints page: the signed heads of the record, to download and keep.

The copy the authority keeps off the platform is what catches an operator who deletes
the record's tail and re-signs the shorter head (:mod:`sandbox.audit.authority_copy`);
the page says how much of the record no checkpoint covers yet, offers the file (the same
checkpoints as ``GET /api/audit/checkpoints``) and signs the head on request. Authority
only: the operator, who holds the signing key, is not who keeps the copy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sandbox.accounts.models import Role, User
from sandbox.audit.anchoring import read_uncovered
from sandbox.audit.authority_copy import checkpoints_after, checkpoints_jsonl
from sandbox.audit.checkpoint import (
    fingerprint_hex,
    load_signing_key,
    make_checkpoint,
    public_key_hex,
)
from sandbox.audit.record import record
from sandbox.http.deps import DbDep, SettingsDep, role
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/authority")
AuthorityDep = Annotated[User, Depends(role(Role.authority))]
#: Checkpoints listed on the page, newest first; the download holds them all.
SHOWN = 50


@router.get("/checkpoints")
def checkpoints(
    request: Request, db: DbDep, settings: SettingsDep, user: AuthorityDep
) -> HTMLResponse:
    public_key = public_key_hex(load_signing_key(settings.keys_dir))
    with db.read() as session:
        stored = checkpoints_after(session, public_key)
        uncovered = read_uncovered(session)
    context = {
        "checkpoints": stored[::-1][:SHOWN],
        "total": len(stored),
        "fingerprint": fingerprint_hex(public_key),
        "uncovered": uncovered,
        "every_events": settings.checkpoint_every_events,
        "every_seconds": settings.checkpoint_every_seconds,
    }
    return render(request, "authority/checkpoints.html", context)


@router.get("/checkpoints.jsonl")
def download(db: DbDep, settings: SettingsDep, user: AuthorityDep, after: int = 0) -> Response:
    """Every checkpoint past seq ``after`` as JSON Lines, to append to the copy kept."""
    public_key = public_key_hex(load_signing_key(settings.keys_dir))
    with db.read() as session:
        stored = checkpoints_after(session, public_key, max(after, 0))
    head = stored[-1].seq if stored else after
    return Response(
        checkpoints_jsonl(stored),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="audit-checkpoints-{head}.jsonl"'},
    )


@router.post("/checkpoints")
def sign_now(db: DbDep, settings: SettingsDep, user: AuthorityDep) -> RedirectResponse:
    """Sign the head now (as ``POST /api/audit/checkpoints``), so a download covers it."""
    key = load_signing_key(settings.keys_dir)
    with db.tx() as session:
        made = make_checkpoint(session, key)
        record(
            session,
            actor=user.username,
            action="audit.checkpoint",
            object=f"audit:{made.seq}",
            details={"hash": made.hash},
        )
    return see_other("/authority/checkpoints")
