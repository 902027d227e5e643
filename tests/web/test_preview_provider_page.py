"""The provider's previews page over HTTP (Shanghai Art.18): who may use it, CSRF, refusals
shown beside their dataset with rule and article, and a suspended dataset (Art.22)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.db.base import transaction
from sandbox.feedback.complaints import file_complaint, handle_complaint
from sandbox.feedback.models import ComplaintStatus
from sandbox.preview.models import PreviewBudget, SyntheticPreview
from sandbox.preview.service import make_preview, set_preview_budget
from sandbox.settings import Settings
from tests.web.test_pages import count, csrf_token, sign_in

PAGE = "/provider/previews"


def _budget(factory: sessionmaker[Session]) -> PreviewBudget | None:
    with transaction(factory) as session:
        return session.get(PreviewBudget, "clinic_visits")


def test_the_provider_sets_the_budget_and_generates_from_its_page(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(client, "health")
    page = client.get(PAGE)
    assert page.status_code == 200 and 'id="preview-clinic_visits"' in page.text
    assert 'href="/provider/previews"' in page.text  # the provider's menu links it
    assert 'id="preview-secret_registry"' not in page.text
    token = csrf_token(client, PAGE)
    forged = client.post(f"{PAGE}/clinic_visits/budget", data={"epsilon": "2"})
    assert forged.status_code == 403 and 'class="rule">csrf<' in forged.text
    assert _budget(factory) is None
    bad = client.post(f"{PAGE}/clinic_visits/budget", data={"epsilon": "-1", "csrf_token": token})
    assert bad.status_code == 422 and 'class="rule">dp-epsilon<' in bad.text
    huge = client.post(
        f"{PAGE}/clinic_visits/budget", data={"epsilon": "1e16", "csrf_token": token}
    )
    assert huge.status_code == 422 and 'class="rule">dp-epsilon<' in huge.text  # past the ledger
    assert _budget(factory) is None
    done = client.post(f"{PAGE}/clinic_visits/budget", data={"epsilon": "2", "csrf_token": token})
    assert done.status_code == 200 and "ε 2.0 / 2.0" in done.text  # after the redirect
    made = client.post(
        f"{PAGE}/clinic_visits", data={"epsilon": "0.25", "rows": "50", "csrf_token": token}
    )
    assert made.status_code == 200 and "ε 1.75 / 2.0" in made.text and "50 行" in made.text
    with transaction(factory) as session:
        preview = session.scalars(select(SyntheticPreview)).one()
        assert (preview.rows, preview.epsilon) == (50, 250_000)
    too_many = client.post(
        f"{PAGE}/clinic_visits", data={"epsilon": "0.25", "rows": "10001", "csrf_token": token}
    )
    assert too_many.status_code == 422 and 'class="rule">preview-rows<' in too_many.text
    assert count(factory, SyntheticPreview) == 1
    client.cookies.set("lang", "en")
    assert "<h1>Synthetic previews" in client.get(PAGE).text


def test_only_the_datasets_own_provider_may_act_and_others_are_refused(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session]
) -> None:
    sign_in(client, "market")
    page = client.get(PAGE)
    assert page.status_code == 200 and 'id="preview-clinic_visits"' not in page.text
    token = csrf_token(client, PAGE)
    r = client.post(f"{PAGE}/clinic_visits/budget", data={"epsilon": "2", "csrf_token": token})
    # The refusal concerns no dataset on this provider's page, so it is shown at the top.
    assert r.status_code == 403 and 'class="rule">provider-owns<' in r.text
    assert _budget(factory) is None
    client.cookies.clear()
    sign_in(client, "alice")
    r = client.get(PAGE)
    assert r.status_code == 403 and 'class="rule">role<' in r.text


def test_a_suspended_dataset_shows_why_it_has_no_preview(
    client: TestClient,
    platform: dict[str, User],
    factory: sessionmaker[Session],
    settings: Settings,
) -> None:
    with transaction(factory) as session:
        set_preview_budget(
            session=session, actor=platform["health"], name="clinic_visits", epsilon=2.0
        )
    make_preview(
        factory=factory,
        settings=settings,
        actor=platform["health"],
        name="clinic_visits",
        epsilon=0.5,
    )
    with transaction(factory) as session:
        complaint = file_complaint(
            session=session, dataset="clinic_visits", complainant="Zhao", contact="z@x.invalid",
            kind="privacy", description="My record is identifiable.", evidence="Row 12.",
        )  # fmt: skip
        handle_complaint(
            session=session, actor=platform["health"], complaint_id=complaint.id,
            to=ComplaintStatus.suspended,
        )  # fmt: skip
    sign_in(client, "health")
    page = client.get(PAGE).text
    section = page[page.index('id="preview-clinic_visits"') :]
    assert 'class="rule">preview-suspended<' in section
    assert 'class="article">Shanghai Art.22<' in section
    assert 'class="make-preview"' not in section  # nothing to generate while suspended
    token = csrf_token(client, PAGE)
    r = client.post(f"{PAGE}/clinic_visits", data={"epsilon": "0.5", "csrf_token": token})
    assert r.status_code == 403 and r.text.count('class="rule">preview-suspended<') == 2
    assert count(factory, SyntheticPreview) == 1
    assert 'id="synthetic-preview"' not in client.get("/datasets/clinic_visits").text
