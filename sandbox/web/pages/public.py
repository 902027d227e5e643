"""Public pages: the catalogue, a dataset's page, objections (R10) and rights complaints (R11).

No account is needed. Non-open datasets never appear (Shanghai Art.11); the
catalogue services decide that, these routes only show what they return.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from sandbox.api.views import dataset_view
from sandbox.catalog.service import get_public_dataset, latest_version, public_datasets
from sandbox.clock import today
from sandbox.contracts import OpenClass
from sandbox.errors import PolicyViolation
from sandbox.feedback.complaints import KINDS, file_complaint
from sandbox.feedback.objections import raise_objection
from sandbox.http.deps import DbDep
from sandbox.input_limits import LongText, Name
from sandbox.preview.service import preview_status
from sandbox.web.form_refusal import required, shows_again
from sandbox.web.rendering import page_router, render, see_other

router = page_router()


@router.get("/")
def home() -> RedirectResponse:
    return see_other("/catalogue")


@router.get("/catalogue")
def catalogue(
    request: Request, db: DbDep, q: str = "", domain: str = "", open_class: str = ""
) -> HTMLResponse:
    """Search by words in the name, title or summary; filter by domain and open class."""
    with db.tx() as session:
        everything = [
            dataset_view(d, latest_version(session, d), today()) for d in public_datasets(session)
        ]
    words = q.strip().lower()
    shown = [
        d
        for d in everything
        if (not words or words in f"{d['name']} {d['title']} {d['summary']}".lower())
        and (not domain or d["domain"] == domain)
        and (not open_class or d["open_class"] == open_class)
    ]
    return render(
        request,
        "catalogue.html",
        {
            "datasets": shown,
            "domains": sorted({d["domain"] for d in everything}),
            "open_classes": [c.value for c in OpenClass if c != OpenClass.non_open],
            "q": q,
            "domain": domain,
            "open_class": open_class,
        },
    )


def synthetic_preview(session: Session, name: str) -> dict[str, Any] | None:
    """The newest synthetic preview and the budget left, or ``None`` when there is none.

    The preview service decides which datasets have previews (conditional and
    open, Shanghai Art.18); any other dataset's page simply shows none.
    """
    try:
        status = preview_status(session, name)
    except PolicyViolation:
        return None
    return status if status["latest"] else None


@router.get("/datasets/{name}")
def dataset(request: Request, name: str, db: DbDep, sent: str = "") -> HTMLResponse:
    with db.tx() as session:
        ds = get_public_dataset(session, name)
        view = dataset_view(ds, latest_version(session, ds), today())
        preview = synthetic_preview(session, name)
    return render(
        request,
        "dataset.html",
        {"ds": view, "sent": sent, "complaint_kinds": KINDS, "preview": preview},
    )


@router.post("/datasets/{name}/objections")
@shows_again(
    "/datasets/{name}", form="objection-form",
    rules={"objection-incomplete": required("submitter", "contact", "description")},
    labels={"submitter": "your_name", "description": "error_description"},
)  # fmt: skip
def object_to(
    name: str,
    db: DbDep,
    submitter: Annotated[Name, Form()] = "",
    contact: Annotated[Name, Form()] = "",
    description: Annotated[LongText, Form()] = "",
) -> RedirectResponse:
    """Anyone may flag an error or omission (Shanghai Art.21; Wuxi Art.17)."""
    with db.tx() as session:
        raise_objection(
            session=session, dataset=name, submitter=submitter, contact=contact,
            description=description,
        )  # fmt: skip
    return see_other(f"/datasets/{name}?sent=objection")


@router.post("/datasets/{name}/complaints")
@shows_again(
    "/datasets/{name}", form="complaint-form",
    rules={"complaint-incomplete": required(
        "complainant", "contact", "kind", "description", "evidence"
    )},
    labels={"complainant": "your_name", "kind": "right_infringed",
            "description": "complaint_description"},
)  # fmt: skip
def complain(
    name: str,
    db: DbDep,
    complainant: Annotated[Name, Form()] = "",
    contact: Annotated[Name, Form()] = "",
    kind: Annotated[Name, Form()] = "",
    description: Annotated[LongText, Form()] = "",
    evidence: Annotated[LongText, Form()] = "",
) -> RedirectResponse:
    """A complaint with evidence that the data infringes a right (Shanghai Art.22)."""
    with db.tx() as session:
        file_complaint(
            session=session, dataset=name, complainant=complainant, contact=contact, kind=kind,
            description=description, evidence=evidence,
        )  # fmt: skip
    return see_other(f"/datasets/{name}?sent=complaint")
