"""The provider's synthetic previews (Shanghai Art.18: 预览): each conditional dataset of
the provider with its preview budget left and its newest preview, a form to set the
budget and a button to generate a new preview.

The same service functions as ``/api/catalog/{name}/preview`` and ``sandbox preview``
decide everything (which datasets may be previewed, the budget, the charge); a
refusal is shown beside the dataset it concerns, with its rule and article.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, FiniteFloat
from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import User
from sandbox.catalog.models import Dataset
from sandbox.contracts import OpenClass
from sandbox.errors import SandboxError
from sandbox.http.deps import Db, DbDep, ProviderDep, SettingsDep
from sandbox.http.http_errors import http_status
from sandbox.input_limits import Count, Epsilon
from sandbox.preview.service import (
    DEFAULT_ROWS,
    MAX_ROWS,
    make_preview,
    preview_status,
    set_preview_budget,
)
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/provider/previews")


class BudgetForm(BaseModel):
    epsilon: Epsilon  # within what the privacy ledger counts (rule dp-epsilon)
    delta: FiniteFloat = 0.0
    max_contributions: Count = 1


class MakeForm(BaseModel):
    epsilon: Epsilon
    delta: FiniteFloat = 0.0
    rows: int = DEFAULT_ROWS


def _status(session: Session, name: str) -> tuple[dict[str, Any] | None, SandboxError | None]:
    """The preview service's status, or its refusal (suspended, not yet in the catalogue)."""
    try:
        return preview_status(session, name), None
    except SandboxError as exc:
        return None, exc


def _page(
    request: Request, db: Db, user: User, failed: str = "", error: SandboxError | None = None
) -> HTMLResponse:
    """The list; ``error`` is a refused form, shown in the section of dataset ``failed``."""
    with db.tx() as session:
        datasets = session.scalars(
            select(Dataset)
            .where(Dataset.provider == user.organisation)
            .where(Dataset.open_class == OpenClass.conditional)
            .order_by(Dataset.name)
        ).all()
        rows = []
        for d in datasets:
            status, refusal = _status(session, d.name)
            rows.append({"dataset": d, "status": status, "refusal": refusal})
    return render(
        request,
        "provider/previews.html",
        {
            "datasets": rows,
            "failed": failed,
            "error": error,
            "default_rows": DEFAULT_ROWS,
            "max_rows": MAX_ROWS,
        },
        status_code=http_status(error) if error else 200,
    )


@router.get("")
def index(request: Request, db: DbDep, user: ProviderDep) -> HTMLResponse:
    return _page(request, db, user)


@router.post("/{name}/budget", response_model=None)
def budget(
    request: Request, name: str, db: DbDep, user: ProviderDep,
    form: Annotated[BudgetForm, Form()],
) -> HTMLResponse | RedirectResponse:  # fmt: skip
    """Set the total (ε, δ) every preview of ``name`` may spend together."""
    try:
        with db.tx() as session:
            set_preview_budget(session=session, actor=user, name=name, **form.model_dump())
    except SandboxError as exc:
        return _page(request, db, user, failed=name, error=exc)
    return see_other(f"/provider/previews#preview-{name}")


@router.post("/{name}", response_model=None)
def generate(
    request: Request,
    name: str,
    db: DbDep,
    settings: SettingsDep,
    user: ProviderDep,
    form: Annotated[MakeForm, Form()],
) -> HTMLResponse | RedirectResponse:
    """Charge the preview budget and release a new synthetic preview of ``name``."""
    try:
        make_preview(
            factory=db.factory, settings=settings, actor=user, name=name, **form.model_dump()
        )
    except SandboxError as exc:
        return _page(request, db, user, failed=name, error=exc)
    return see_other(f"/provider/previews#preview-{name}")
