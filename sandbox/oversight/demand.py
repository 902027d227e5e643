"""Requests for data not in the catalogue (开放需求, Shanghai Art.10; Wuxi Art.9).

Anyone may ask for data to be opened. Every provider and the authority see the
requests, since the data may be held by any of them; a provider or the
authority answers, declines, or — once a dataset answering it is published —
marks it fulfilled with that dataset. The requester reads the answer with the
receipt code they were given.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_provider_of, require_role
from sandbox.audit.record import record
from sandbox.catalog.service import get_public_dataset
from sandbox.errors import NotFound, ValidationFailed
from sandbox.oversight.models import Demand, DemandStatus
from sandbox.oversight.receipts import new_receipt
from sandbox.oversight.workflow import Workflow, advance

ARTICLE = "Shanghai Art.10; Wuxi Art.9"
TITLE_MAX = 200
S = DemandStatus
WORKFLOW = Workflow(
    "demand",
    ARTICLE,
    {
        (S.received, S.answered): True,
        (S.received, S.declined): True,
        (S.received, S.fulfilled): True,
        (S.answered, S.fulfilled): True,
        (S.answered, S.declined): True,
    },
    transition_rule="demand-transition",
    answer_rule="demand-answer",
)


def submit_demand(
    *,
    session: Session,
    requester: str,
    contact: str,
    title: str,
    description: str,
    domain: str = "",
) -> tuple[Demand, str]:
    """Open to everyone; returns the request and its receipt code (shown once)."""
    missing = [
        label
        for label, value in (
            ("your name", requester),
            ("a contact", contact),
            ("what data you need", title),
            ("what you would use it for", description),
        )
        if not value.strip()
    ]
    if missing:
        raise ValidationFailed(
            "a data request needs " + ", ".join(missing), rule="demand-incomplete", article=ARTICLE
        )
    if len(title) > TITLE_MAX:
        raise ValidationFailed(
            f"the title has {len(title)} characters; at most {TITLE_MAX} are allowed "
            "(say more in the description)",
            rule="demand-title",
        )
    code, digest = new_receipt()
    demand = Demand(
        requester=requester.strip(),
        contact=contact.strip(),
        title=title.strip(),
        description=description,
        domain=domain.strip(),
        receipt_hash=digest,
        status=S.received,
    )
    session.add(demand)
    session.flush()
    record(
        session,
        actor=f"public:{demand.requester}",
        action="demand.submit",
        object=f"demand:{demand.id}",
        details={"demand": demand.id, "article": ARTICLE},
    )
    return demand, code


def handle_demand(
    *,
    session: Session,
    actor: User,
    demand_id: int,
    to: str,
    answer: str,
    dataset: str = "",
) -> Demand:
    """Answer, decline or fulfil; fulfilling names a published dataset of the actor's own."""
    require_role(actor, Role.provider, Role.authority)
    demand = session.get(Demand, demand_id)
    if demand is None:
        raise NotFound(f"data request {demand_id} does not exist", rule="demand-unknown")
    WORKFLOW.check(demand.status, to, answer)
    if (to == S.fulfilled) != bool(dataset):
        raise ValidationFailed(
            "name the published dataset when (and only when) marking a request fulfilled",
            rule="demand-dataset",
            article=ARTICLE,
        )
    details: dict = {"demand": demand.id}
    if dataset:
        ds = get_public_dataset(session, dataset)
        if actor.role == Role.provider:
            require_provider_of(actor, ds.provider)
        demand.dataset_id = ds.id
        details["dataset"] = ds.name
    advance(
        session,
        WORKFLOW,
        demand,
        to=to,
        actor=actor.username,
        object=f"demand:{demand.id}",
        answer=answer,
        details=details,
    )
    demand.handled_by = actor.username
    return demand


def list_demands(session: Session, actor: User) -> list[Demand]:
    require_role(actor, Role.provider, Role.authority, Role.operator)
    return list(session.scalars(select(Demand).order_by(Demand.id.desc())))
