"""Publishing a dataset in the browser, in two steps (R2, R13, R14).

1. Upload a CSV, Excel or Parquet file, choosing a CSV file's encoding and the
   header's row if detection would not find them; it is staged under a random id.
2. Declare the entry and each column's type, description and sensitivity —
   suggested by ``suggest_sensitivity`` where values are ID numbers or credit
   codes — and preview: the file is read against the declaration and the
   quality report shown. Only a previewed declaration can be published, and
   publishing uses exactly the previewed entry.

A new or changed entry then waits for the authority's catalogue review
(Shanghai Art.12); the provider's dataset list shows it as under review.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import yaml
from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError, model_validator

from sandbox.accounts.models import User
from sandbox.catalog.quality import quality_report, suggest_sensitivity
from sandbox.catalog.reading import Encoding, ReadOptions, read_sheet, read_table
from sandbox.catalog.service import publish_dataset
from sandbox.catalog.sheets import Sheet
from sandbox.contracts import OpenClass, Sensitivity, load_catalog_entry
from sandbox.contracts.catalog_entry import COLUMN_TYPES
from sandbox.contracts.frequency import FREQUENCIES
from sandbox.contracts.names import proposed_name
from sandbox.errors import SandboxError
from sandbox.http.deps import DbDep, ProviderDep, SettingsDep
from sandbox.http.http_errors import http_status
from sandbox.input_limits import LongText, Name, Title, field_name, problem_text
from sandbox.settings import Settings
from sandbox.web import staging
from sandbox.web.form_refusal import STATE_KEY, FormSpec, Problem, Refusal
from sandbox.web.rendering import page_router, render, see_other

router = page_router("/provider/publish")


class Declaration(BaseModel):
    """The catalogue entry as the provider fills it in; columns are parallel lists."""

    name: Name = ""
    title: Title = ""
    domain: Name = ""
    summary: LongText = ""
    open_class: Name = OpenClass.conditional.value
    conditions: LongText = ""
    update_frequency: Name = "monthly"
    contact: Name = ""
    entity: Name = ""
    #: Each column's header in the file, and the SQL name the provider gives it.
    column_header: list[Name] = []
    column_name: list[Name] = []
    column_type: list[Name] = []
    column_sensitivity: list[Name] = []
    column_description: list[LongText] = []

    @model_validator(mode="after")
    def _one_row_per_column(self) -> Declaration:
        if not self.column_header:  # a form without headers names each column by its header
            self.column_header = list(self.column_name)
        if (
            not len(self.column_header)
            == len(self.column_name)
            == len(self.column_type)
            == len(self.column_sensitivity)
            == len(self.column_description)
        ):
            raise ValueError(
                "each column needs a header, name, type, sensitivity and description field"
            )
        return self

    @property
    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(header, name, type, sensitivity, description) of each column, as the form shows."""
        return list(
            zip(
                self.column_header, self.column_name, self.column_type,
                self.column_sensitivity, self.column_description, strict=True,
            )
        )  # fmt: skip

    def entry(self, provider: str, data: Path) -> dict[str, Any]:
        columns = [
            {"name": n, "type": t, "sensitivity": s, "description": d}
            | ({"header": h} if h.strip() != n.strip() else {})
            for h, n, t, s, d in self.rows
        ]
        return {
            "name": self.name, "title": self.title, "provider": provider, "domain": self.domain,
            "summary": self.summary, "open_class": self.open_class, "conditions": self.conditions,
            "format": data.suffix.lstrip("."), "update_frequency": self.update_frequency,
            "contact": self.contact, "entity": self.entity or None, "columns": columns,
        }  # fmt: skip


def _guess_type(arrow_type: pa.DataType) -> str:
    """A starting point for the declared type; CSV columns arrive as text and stay VARCHAR."""
    for check, name in (
        (pa.types.is_boolean, "BOOLEAN"),
        (pa.types.is_integer, "BIGINT"),
        (pa.types.is_floating, "DOUBLE"),
        (pa.types.is_decimal, "DECIMAL"),
        (pa.types.is_date, "DATE"),
        (pa.types.is_timestamp, "TIMESTAMP"),
    ):
        if check(arrow_type):
            return name
    return "VARCHAR"


def _first_declaration(table: pa.Table) -> Declaration:
    suggested = suggest_sensitivity(table)
    return Declaration(
        column_header=table.column_names,
        column_name=[proposed_name(header) for header in table.column_names],
        column_type=[_guess_type(f.type) for f in table.schema],
        column_sensitivity=[suggested.get(n, Sensitivity.none).value for n in table.column_names],
        column_description=["" for _ in table.column_names],
    )


#: The declaration form: the entry's fields by the page's labels for them.
_DECLARATION_FORM = FormSpec(
    page="",
    form="declaration",
    labels={"name": "dataset_name", "conditions": "access_conditions", "columns": "data_items"},
)


def _beside_fields(error: SandboxError) -> Refusal | None:
    """A declaration the catalogue contract refuses, as a problem beside each field it
    concerns (``columns[2].name`` is the third row's SQL name); ``None`` for any other
    refusal (the file against the declaration), which the page shows at its top."""
    cause = error.__cause__
    if not isinstance(cause, ValidationError):
        return None
    problems = tuple(
        Problem(field_name(e["loc"]), error.rule, problem_text(e)) for e in cause.errors()
    )
    return Refusal(
        spec=_DECLARATION_FORM, form="declaration", error=error, problems=problems,
        entered={}, path="", query="", invalid_input=True,
    )  # fmt: skip


def _declare_page(
    request: Request, settings: Settings, upload_id: str, sheet: Sheet, declaration: Declaration,
    report: dict | None = None, error: SandboxError | None = None,
) -> HTMLResponse:  # fmt: skip
    if error is not None:
        setattr(request.state, STATE_KEY, _beside_fields(error))
    return render(
        request,
        "provider/publish_declare.html",
        {
            "upload_id": upload_id,
            "file_name": staging.data_file(settings, upload_id).name,
            "header_row": sheet.header_row,
            "d": declaration,
            "columns": declaration.rows,
            "suggested": suggest_sensitivity(sheet.table),
            "report": report,
            "error": error,
            "column_types": COLUMN_TYPES,
            "sensitivities": [s.value for s in Sensitivity],
            "open_classes": [c.value for c in OpenClass],
            "frequencies": list(FREQUENCIES),
        },
        status_code=http_status(error) if error else 200,
    )


@router.get("")
def upload_form(request: Request, user: ProviderDep) -> HTMLResponse:
    return render(request, "provider/publish_upload.html", {"encodings": list(Encoding)})


@router.post("")
def upload(
    user: ProviderDep, settings: SettingsDep, data: Annotated[UploadFile, File()],
    encoding: Annotated[Encoding, Form()] = Encoding.auto,
    header_row: Annotated[int | None, Form(ge=1, le=1_000_000)] = None,
) -> RedirectResponse:  # fmt: skip
    options = ReadOptions(encoding, header_row)
    upload_id = staging.stage(settings, data.filename or "", data.file, options)
    return see_other(f"/provider/publish/{upload_id}")


def _sheet(settings: Settings, upload_id: str) -> Sheet:
    data = staging.upload(settings, upload_id)
    return read_sheet(data, staging.read_options(settings, upload_id))


@router.get("/{upload_id}")
def declare(
    request: Request, upload_id: str, user: ProviderDep, settings: SettingsDep
) -> HTMLResponse:
    sheet = _sheet(settings, upload_id)
    return _declare_page(request, settings, upload_id, sheet, _first_declaration(sheet.table))


#: How refusals name the declared entry (never by the server's path to it).
_DECLARATION = "the declaration"


def _preview(settings: Settings, user: User, upload_id: str, declaration: Declaration) -> dict:
    """Write the declared entry next to the upload, read the file against it, report quality."""
    data = staging.upload(settings, upload_id)
    path = staging.entry_file(settings, upload_id)
    path.unlink(missing_ok=True)  # a failed preview leaves nothing to publish
    text = yaml.safe_dump(declaration.entry(user.organisation, Path(data.name)), allow_unicode=True)
    draft = path.with_suffix(".draft")
    draft.write_text(text, encoding="utf-8")
    entry = load_catalog_entry(draft, _DECLARATION)
    table = read_table(data, entry, staging.read_options(settings, upload_id))
    report = quality_report(table, entry).to_dict()
    draft.replace(path)
    return report


@router.post("/{upload_id}/preview")
def preview(
    request: Request, upload_id: str, user: ProviderDep, settings: SettingsDep,
    declaration: Annotated[Declaration, Form()],
) -> HTMLResponse:  # fmt: skip
    """Show the quality report for the declaration, or what is wrong with it."""
    sheet = _sheet(settings, upload_id)
    try:
        report = _preview(settings, user, upload_id, declaration)
    except SandboxError as exc:
        return _declare_page(request, settings, upload_id, sheet, declaration, error=exc)
    return _declare_page(request, settings, upload_id, sheet, declaration, report=report)


@router.post("/{upload_id}/publish")
def publish(
    upload_id: str, db: DbDep, user: ProviderDep, settings: SettingsDep,
    class_change_basis: Annotated[LongText, Form()] = "",
) -> RedirectResponse:  # fmt: skip
    """Publish the previewed entry and file as a new version (under catalogue review when the
    entry is new or changed), then discard the upload."""
    entry_path = staging.entry_file(settings, upload_id)
    if not entry_path.is_file():
        raise SandboxError("preview the declaration before publishing", rule="publish-preview")
    entry = load_catalog_entry(entry_path, _DECLARATION)
    data = staging.upload(settings, upload_id)
    with db.tx() as session:
        publish_dataset(
            session=session, actor=user, entry=entry, data_path=data,
            settings=settings, class_change_basis=class_change_basis,
            read_options=staging.read_options(settings, upload_id),
        )  # fmt: skip
    staging.discard(settings, upload_id)
    return see_other("/provider#datasets")
