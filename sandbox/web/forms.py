"""What the page forms send, and how it becomes service input.

Forms are parsed into pydantic models (FastAPI's ``Annotated[Model, Form()]``);
the functions here only reshape them. Every rule about what is complete or
allowed stays in the services.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from sandbox.applications.models import Application
from sandbox.contracts import Agreement, load_agreement_text
from sandbox.input_limits import Count, Epsilon, LongText, Name, Title


def pick_columns(items: list[str]) -> dict[str, list[str]]:
    """Checkbox values ``dataset.column`` grouped as {dataset: [column, ...]}."""
    out: dict[str, list[str]] = {}
    for item in items:
        dataset, _, column = item.partition(".")
        if dataset and column:
            out.setdefault(dataset, []).append(column)
    return out


class ApplicationForm(BaseModel):
    """The researcher's application (Wuxi Art.15(1)-(2)); blanks are allowed in a draft."""

    application_type: Literal["dataset", "interface", "sandbox"] = "sandbox"
    title: Title = ""
    reason: LongText = ""
    scenario: LongText = ""
    purpose: LongText = ""
    columns: list[Name] = []
    usage_from: date | None = None
    usage_until: date | None = None
    output_forms: list[Name] = []
    mode: Literal["aggregate", "record"] = "aggregate"
    conditions_evidence: LongText = ""
    commitment_signed: bool = False
    #: "save" keeps a draft; "submit" also forwards it to the provider.
    action: Literal["save", "submit"] = "save"

    def fields(self) -> dict[str, Any]:
        """The fields ``create_application``/``update_application`` take."""
        data = self.model_dump(exclude={"columns", "action"})
        return {**data, "datasets": pick_columns(self.columns)}


def draft_of(form: ApplicationForm, applicant_id: int) -> Application:
    """An unsaved application, so ``missing_items`` can judge a form before it is kept."""
    return Application(applicant_id=applicant_id, **form.fields())


class ApprovalForm(BaseModel):
    """The provider's approval: scope of use and the agreement's fields (Wuxi Art.15(3))."""

    scope: LongText = ""
    agreement_id: Name = ""
    title: Title = ""
    purpose: LongText = ""
    mode: Literal["aggregate", "record"] = "aggregate"
    valid_from: date | None = None
    valid_until: date | None = None
    columns: list[Name] = []
    row_filter: LongText = ""
    min_group_size: Count = 10
    epsilon: Epsilon = 1.0
    outputs: list[Name] = []
    usage_reports: Name = ""


def agreement_yaml(form: ApprovalForm, app: Application, provider: str, researcher: str) -> str:
    """The agreement contract built from the approval form, as the YAML that is signed."""
    datasets = {
        name: {"columns": cols, **({"row_filter": form.row_filter} if form.row_filter else {})}
        for name, cols in pick_columns(form.columns).items()
    }
    doc: dict[str, Any] = {
        "id": form.agreement_id,
        "title": form.title,
        "provider": provider,
        "researchers": [researcher],
        "purpose": form.purpose,
        "mode": form.mode,
        "valid_from": form.valid_from.isoformat() if form.valid_from else None,
        "valid_until": form.valid_until.isoformat() if form.valid_until else None,
        "datasets": datasets,
        "disclosure": {"min_group_size": form.min_group_size},
        "privacy": {"epsilon": form.epsilon},
        "outputs": form.outputs,
        "scenario": app.scenario,
        "application_id": app.id,
    }
    if form.usage_reports:
        doc["usage_reports"] = form.usage_reports
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def agreement_from_form(
    form: ApprovalForm, app: Application, provider: str, researcher: str
) -> Agreement:
    """Parse the built YAML with the contract loader, so errors name the field at fault."""
    return load_agreement_text(agreement_yaml(form, app, provider, researcher), "approval form")
