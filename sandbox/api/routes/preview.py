"""Synthetic previews of conditional datasets (Shanghai Art.18: 预览).

The provider sets the preview budget and generates; anyone, signed in or
not, downloads the newest preview. Non-open datasets are answered as unknown.
Reading and downloading take no write lock and record nothing: the release
was recorded when the preview was generated.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, FiniteFloat

from sandbox.http.deps import DbDep, ProviderDep, SettingsDep
from sandbox.input_limits import Count, Epsilon
from sandbox.preview.files import file_stem, labelled_csv, preview_zip
from sandbox.preview.service import (
    DEFAULT_ROWS,
    MAX_ROWS,
    latest_preview,
    make_preview,
    preview_status,
    preview_view,
    set_preview_budget,
)

router = APIRouter(prefix="/api/catalog", tags=["preview"])


class BudgetIn(BaseModel):
    epsilon: Epsilon
    delta: FiniteFloat = Field(default=0.0, ge=0, lt=1)
    max_contributions: Count = Field(default=1, ge=1)


class MakeIn(BaseModel):
    epsilon: Epsilon
    delta: FiniteFloat = Field(default=0.0, ge=0, lt=1)
    rows: int = Field(default=DEFAULT_ROWS, ge=1, le=MAX_ROWS)


@router.put("/{name}/preview/budget")
def set_budget(name: str, body: BudgetIn, db: DbDep, user: ProviderDep) -> dict[str, Any]:
    """The provider sets the (ε, δ) all previews of the dataset may spend in total."""
    with db.tx() as session:
        state = set_preview_budget(session=session, actor=user, name=name, **body.model_dump())
    return {
        "dataset": name,
        "epsilon_total": state.epsilon_total,
        "epsilon_remaining": state.epsilon_remaining,
        "delta_remaining": state.delta_remaining,
    }


@router.post("/{name}/preview", status_code=201)
def generate(
    name: str, body: MakeIn, db: DbDep, settings: SettingsDep, user: ProviderDep
) -> dict[str, Any]:
    """Charge the preview budget and release a new synthetic preview."""
    preview = make_preview(
        factory=db.factory, settings=settings, actor=user, name=name, **body.model_dump()
    )
    return preview_view(preview)


@router.get("/{name}/preview")
def status(name: str, db: DbDep) -> dict[str, Any]:
    """The preview budget left and the newest preview's description."""
    with db.read() as session:
        return preview_status(session, name)


def _attachment(content: bytes, filename: str, media_type: str) -> Response:
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{name}/preview.csv")
def download_csv(name: str, db: DbDep) -> Response:
    """The newest synthetic preview as a labelled CSV (downloading spends nothing)."""
    with db.read() as session:
        _, preview = latest_preview(session, name)
        return _attachment(
            labelled_csv(preview), f"{file_stem(preview)}.csv", "text/csv; charset=utf-8"
        )


@router.get("/{name}/preview.zip")
def download_zip(name: str, db: DbDep) -> Response:
    """The labelled CSV with a bilingual README and the released marginals."""
    with db.read() as session:
        dataset, preview = latest_preview(session, name)
        content = preview_zip(preview, dataset.entry["title"], dataset.entry.get("conditions", ""))
        return _attachment(content, f"{file_stem(preview)}.zip", "application/zip")
