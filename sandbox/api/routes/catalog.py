"""The public catalogue, publishing, reclassification, objections and complaints."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, UploadFile
from pydantic import BaseModel

from sandbox.accounts.models import Role
from sandbox.api.views import catalog_review_view, dataset_view
from sandbox.catalog.reading import Encoding, ReadOptions, Upload, upload_name
from sandbox.catalog.review import latest_reviews, proposed_version
from sandbox.catalog.service import (
    change_open_class,
    get_dataset,
    latest_version,
    public_datasets,
    publish_dataset,
)
from sandbox.clock import today
from sandbox.contracts import OpenClass
from sandbox.contracts.loading import load_catalog_entry
from sandbox.errors import NotFound
from sandbox.feedback.complaints import file_complaint
from sandbox.feedback.objections import raise_objection
from sandbox.http.deps import DbDep, MaybeUserDep, ProviderDep, SettingsDep
from sandbox.input_limits import LongText, Name

router = APIRouter(prefix="/api/catalog", tags=["catalogue"])


@router.get("")
def list_catalog(
    db: DbDep, q: str = "", domain: str = "", open_class: str = ""
) -> list[dict[str, Any]]:
    """Search the public catalogue (non-open datasets never appear)."""
    out = []
    with db.tx() as session:
        for ds in public_datasets(session):
            text = f"{ds.name} {ds.entry['title']} {ds.entry['summary']}".lower()
            if q and q.lower() not in text:
                continue
            if domain and ds.entry["domain"] != domain:
                continue
            if open_class and ds.open_class != open_class:
                continue
            out.append(dataset_view(ds, latest_version(session, ds), today()))
    return out


@router.get("/{name}")
def show_dataset(name: str, db: DbDep, user: MaybeUserDep) -> dict[str, Any]:
    """A catalogue entry; its provider, the operator and the authority also see non-open
    and not-yet-approved entries, with where the latest catalogue review stands."""
    with db.tx() as session:
        ds = get_dataset(session, name)
        insider = user is not None and (
            user.role in (Role.operator, Role.authority)
            or (user.role == Role.provider and user.organisation == ds.provider)
        )
        hidden = ds.open_class == OpenClass.non_open or not ds.published
        if hidden and not insider:
            raise NotFound(f"dataset {name!r} is not in the catalogue", rule="dataset-unknown")
        view = dataset_view(ds, latest_version(session, ds), today())
        if insider:
            review = latest_reviews(session, [ds.id]).get(ds.id)
            view["catalogue_review"] = (
                catalog_review_view(review, ds, proposed_version(session, review))
                if review
                else None
            )
        return view


@router.post("", status_code=201)
def publish(
    db: DbDep,
    settings: SettingsDep,
    user: ProviderDep,
    entry: UploadFile,
    data: UploadFile,
    class_change_basis: Annotated[LongText, Form()] = "",
    encoding: Annotated[Encoding, Form()] = Encoding.auto,
    header_row: Annotated[int | None, Form(ge=1, le=1_000_000)] = None,
) -> dict[str, Any]:
    """Publish a new version: the entry YAML and the data file (CSV, Excel or Parquet).

    ``encoding`` is a CSV file's (detected by default); ``header_row`` is the header's
    row in the file, from 1 (by default found after any title rows). ``status`` is
    ``published`` for a refresh under the published entry; a new or changed entry is
    ``under_review`` until the authority decides (``review`` is its id).
    """
    with tempfile.TemporaryDirectory() as tmp:
        entry_path = Path(tmp) / "entry.yaml"
        entry_path.write_bytes(entry.file.read())
        parsed = load_catalog_entry(entry_path, upload_name(entry.filename or "entry.yaml"))
        # The data is read in memory, never written in clear to a file.
        rows = Upload(upload_name(data.filename or "data.csv"), data.file.read())
        with db.tx() as session:
            publication = publish_dataset(
                session=session,
                actor=user,
                entry=parsed,
                data_path=rows,
                settings=settings,
                class_change_basis=class_change_basis,
                read_options=ReadOptions(encoding, header_row),
            )
            return publication.to_dict()


class ClassChangeIn(BaseModel):
    to: OpenClass
    basis: LongText = ""


@router.post("/{name}/class")
def reclassify(
    name: str, body: ClassChangeIn, db: DbDep, user: ProviderDep
) -> dict[str, str | int | None]:
    """Propose a new open class; it applies once the authority approves the review."""
    with db.tx() as session:
        review = change_open_class(
            session=session, actor=user, name=name, to_class=body.to, basis=body.basis
        )
        ds = get_dataset(session, name)
        return {
            "dataset": ds.name,
            "open_class": ds.open_class,
            "proposed_class": review.to_class if review else ds.open_class,
            "status": review.status if review else "unchanged",
            "review": review.id if review else None,
        }


class ObjectionIn(BaseModel):
    submitter: Name
    contact: Name
    description: LongText


@router.post("/{name}/objections", status_code=201)
def object_to(name: str, body: ObjectionIn, db: DbDep) -> dict[str, Any]:
    """Anyone may flag an error or omission (Shanghai Art.21)."""
    with db.tx() as session:
        o = raise_objection(session=session, dataset=name, **body.model_dump())
        return {"id": o.id, "status": o.status}


class ComplaintIn(BaseModel):
    complainant: Name
    contact: Name
    kind: Name
    description: LongText
    evidence: LongText


@router.post("/{name}/complaints", status_code=201)
def complain(name: str, body: ComplaintIn, db: DbDep) -> dict[str, Any]:
    """Anyone may complain, with evidence, that a dataset infringes their rights (Art.22)."""
    with db.tx() as session:
        c = file_complaint(session=session, dataset=name, **body.model_dump())
        return {"id": c.id, "status": c.status}
