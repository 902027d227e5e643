"""Synthetic previews (Shanghai Art.18): budget, DP marginals, labelling, refusals, record.

Every test runs on SQLite and on PostgreSQL (the ``db_url`` fixture).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter

import pytest
from sqlalchemy import func, select

from sandbox.audit.models import AuditEvent
from sandbox.catalog.identifiers import is_credit_code, is_resident_id
from sandbox.db.base import transaction
from sandbox.errors import PermissionDenied, PolicyViolation
from sandbox.feedback.complaints import file_complaint, handle_complaint
from sandbox.feedback.models import ComplaintStatus
from sandbox.preview import ledger
from sandbox.preview.files import README_NAME
from sandbox.preview.marginals import BINS
from sandbox.preview.models import PreviewCharge, SyntheticPreview
from sandbox.preview.service import make_preview, set_preview_budget
from sandbox.preview.synthesis import LABEL_COLUMN, PLACEHOLDER_REGION
from tests.control_plane.conftest import login

NAME = "hospital_visits"


def _budget(factory, users, epsilon=1.0, delta=1e-6, k=3, who="health"):  # noqa: ANN001, ANN202
    with transaction(factory) as session:
        return set_preview_budget(
            session=session,
            actor=users[who],
            name=NAME,
            epsilon=epsilon,
            delta=delta,
            max_contributions=k,
        )


def _make(factory, settings, users, epsilon, delta=0.0, rows=500, who="health"):  # noqa: ANN001, ANN202
    return make_preview(
        factory=factory,
        settings=settings,
        actor=users[who],
        name=NAME,
        epsilon=epsilon,
        delta=delta,
        rows=rows,
    )


def _counts(factory):  # noqa: ANN001, ANN202
    with transaction(factory) as session:
        return (
            session.scalar(select(func.count()).select_from(SyntheticPreview)),
            session.scalar(select(func.count()).select_from(PreviewCharge)),
        )


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_budget_is_charged_and_refused_when_exhausted(factory, users, published, settings):
    with pytest.raises(PolicyViolation) as unset:
        _make(factory, settings, users, 0.5)
    assert unset.value.rule == ledger.EXHAUSTED and "no preview budget" in unset.value.message
    _budget(factory, users, epsilon=1.0, delta=0.0)
    preview = _make(factory, settings, users, 0.6)
    assert preview.epsilon == 600_000 and preview.delta == 0
    with pytest.raises(PolicyViolation) as info:
        _make(factory, settings, users, 0.6)
    assert info.value.rule == "preview-budget-exhausted"
    assert "Shanghai Art.18" in (info.value.article or "")
    assert "0.4 of the dataset's preview budget of 1" in info.value.message
    assert _counts(factory) == (1, 1)  # the refusal charged and stored nothing
    _make(factory, settings, users, 0.4)  # exactly what remains is still paid
    with transaction(factory) as session:
        state = ledger.state_of(ledger.budget_of(session, NAME))
    assert state.epsilon_remaining == 0.0 and _counts(factory) == (2, 2)


def test_months_need_delta_and_delta_is_charged(factory, users, published, settings):
    _budget(factory, users, epsilon=2.0, delta=1e-6)
    without = _make(factory, settings, users, 0.5)
    dated = {c["name"]: c for c in without.marginals["columns"]}["visit_date"]
    assert dated["how"] == "withheld" and without.delta == 0
    with_delta = _make(factory, settings, users, 0.5, delta=5e-7)
    assert {c["name"]: c for c in with_delta.marginals["columns"]}["visit_date"]["how"] == "months"
    assert 0 < with_delta.delta <= 5e-7 * ledger.DELTA_UNIT
    with pytest.raises(PolicyViolation) as info:
        _make(factory, settings, users, 0.5, delta=9e-7)  # 5e-7 of 1e-6 already spent
    assert info.value.rule == ledger.EXHAUSTED and "delta" in info.value.message


def test_large_epsilon_marginals_approximate_the_true_ones(factory, users, published, settings):
    """With ε = 60 (about 8.6 per column, noise scale 0.35) the noisy counts are within a few
    units of the truth, and a 10 000-row sample's shares within a few points."""
    true = published
    _budget(factory, users, epsilon=60.0, delta=1e-6, k=3)
    preview = _make(factory, settings, users, 60.0, delta=1e-6, rows=10_000)
    released = {c["name"]: c for c in preview.marginals["columns"]}
    sample = _rows(preview.sample_csv)

    def shares(values: list) -> dict:  # noqa: ANN001
        n = len(values)
        return {k: v / n for k, v in Counter(values).items()}

    districts = Counter(r["district"] for r in true)
    assert released["district"]["categories"] == ["梁溪区", "锡山区", "惠山区"]
    for name, noisy in zip(
        released["district"]["categories"], released["district"]["counts"], strict=True
    ):
        assert abs(noisy - districts[name]) <= 5
    true_costs = Counter(min(int(r["cost"] // 100), BINS - 1) for r in true)
    assert all(
        abs(noisy - true_costs[i]) <= 5 for i, noisy in enumerate(released["cost"]["counts"])
    )
    months = Counter(r["visit_date"].strftime("%Y-%m") for r in true)
    assert set(released["visit_date"]["months"]) == set(months)
    assert all(abs(released["visit_date"]["months"][m] - months[m]) <= 5 for m in months)

    for column, truth in (
        ("district", shares([r["district"] for r in true])),
        ("insured", shares([str(r["insured"]).lower() for r in true])),
        ("visit_date", shares([r["visit_date"].strftime("%Y-%m") for r in true])),
    ):
        key = (lambda v: v[:7]) if column == "visit_date" else (lambda v: v)
        drawn = shares([key(r[column]) for r in sample])
        assert all(abs(drawn.get(k, 0) - p) < 0.03 for k, p in truth.items()), column
    true_high = sum(r["cost"] >= 600 for r in true) / len(true)
    drawn_high = sum(float(r["cost"]) >= 600 for r in sample) / len(sample)
    assert abs(true_high - drawn_high) < 0.03
    assert all(0 <= int(r["age"]) <= 100 for r in sample)


def test_no_real_identifier_or_free_text_leaves_in_the_preview(factory, users, published, settings):
    _budget(factory, users, epsilon=5.0)
    preview = _make(factory, settings, users, 5.0, rows=2000)
    text = preview.sample_csv + json.dumps(preview.marginals, ensure_ascii=False)
    for row in published:
        assert row["patient_id"] not in text and row["clinic_code"] not in text
        assert row["note"] not in text
    sample = _rows(preview.sample_csv)
    assert all(
        is_resident_id(r["patient_id"]) and r["patient_id"].startswith(PLACEHOLDER_REGION)
        for r in sample
    )
    assert all(
        is_credit_code(r["clinic_code"]) and r["clinic_code"][2:8] == PLACEHOLDER_REGION
        for r in sample
    )
    assert len({r["patient_id"] for r in sample}) == len(sample)
    assert {r["note"] for r in sample} == {""}  # free text is withheld


def test_downloads_are_labelled_and_spend_nothing(client, factory, users, published):
    health = login(client, "health")
    assert client.get(f"/api/catalog/{NAME}/preview.csv").status_code == 404
    r = client.put(
        f"/api/catalog/{NAME}/preview/budget",
        headers=health,
        json={"epsilon": 2.0, "max_contributions": 2},
    )
    assert r.status_code == 200 and r.json()["epsilon_remaining"] == 2.0
    made = client.post(
        f"/api/catalog/{NAME}/preview", headers=health, json={"epsilon": 1.5, "rows": 300}
    )
    assert made.status_code == 201, made.text
    first = client.get(f"/api/catalog/{NAME}/preview.csv")  # anyone, no sign-in
    again = client.get(f"/api/catalog/{NAME}/preview.csv")
    assert first.status_code == 200 and first.content == again.content
    stem = f"{NAME}_v1_SYNTHETIC_PREVIEW"
    assert f'filename="{stem}.csv"' in first.headers["content-disposition"]
    text = first.content.decode("utf-8-sig")
    comment, body = text.split("\n", 1)
    assert comment.startswith("#") and "合成预览数据" in comment and "SYNTHETIC PREVIEW" in comment
    rows = _rows(body)
    assert len(rows) == 300 and {r[LABEL_COLUMN] for r in rows} == {"合成 SYNTHETIC"}

    packed = client.get(f"/api/catalog/{NAME}/preview.zip")
    assert f'filename="{stem}.zip"' in packed.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(packed.content)) as z:
        assert set(z.namelist()) == {f"{stem}.csv", README_NAME, "marginals.json"}
        readme = z.read(README_NAME).decode()
        assert z.read(f"{stem}.csv") == first.content
        assert json.loads(z.read("marginals.json"))["max_contributions"] == 2
    assert "不是真实记录" in readme and "none is\na real record" in readme
    assert "Accredited research institutions" in readme

    status = client.get(f"/api/catalog/{NAME}/preview").json()
    assert status["budget"]["epsilon_remaining"] == 0.5  # downloads spent nothing
    assert status["latest"]["rows"] == 300
    assert {c["name"]: c["how"] for c in status["latest"]["columns"]}["note"] == "withheld"


def test_non_open_is_never_previewed_and_only_the_provider_generates(client, users, published):
    health = login(client, "health")
    secret = client.put(
        "/api/catalog/secret_visits/preview/budget", headers=health, json={"epsilon": 1.0}
    )
    assert secret.status_code == 403 and secret.json()["rule"] == "preview-conditional-only"
    assert "Art.11" in secret.json()["article"]
    for path in ("preview.csv", "preview.zip", "preview"):
        hidden = client.get(f"/api/catalog/secret_visits/{path}")
        assert hidden.status_code == 404 and hidden.json()["rule"] == "dataset-unknown"
    unconditional = client.post(
        "/api/catalog/open_visits/preview", headers=health, json={"epsilon": 1.0}
    )
    assert unconditional.json()["rule"] == "preview-conditional-only"
    body = {"epsilon": 1.0}
    assert client.put(f"/api/catalog/{NAME}/preview/budget", json=body).status_code == 403
    market = client.put(
        f"/api/catalog/{NAME}/preview/budget", json=body, headers=login(client, "market")
    )
    assert market.status_code == 403 and market.json()["rule"] == "provider-owns"
    alice = client.post(f"/api/catalog/{NAME}/preview", json=body, headers=login(client, "alice"))
    assert alice.status_code == 403 and alice.json()["rule"] == "role"


def test_every_release_is_in_the_record(factory, users, published, settings):
    _budget(factory, users, epsilon=1.0, delta=0.0)
    with pytest.raises(PermissionDenied):
        _make(factory, settings, users, 0.5, who="market")
    preview = _make(factory, settings, users, 0.5)
    with pytest.raises(PolicyViolation):
        _make(factory, settings, users, 0.6)
    with transaction(factory) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("preview.%")).order_by(AuditEvent.seq)
        ).all()
    assert [e.action for e in events] == ["preview.budget", "preview.charge", "preview.release"]
    assert all(e.object == f"dataset:{NAME}" and e.actor == "health" for e in events)
    charge, release = (json.loads(e.details) for e in events[1:])
    assert charge["epsilon"] == 0.5 and charge["version"] == 1
    assert len(charge["mechanisms"]) == 4  # district, age, cost, insured (no δ: no months)
    assert release["preview"] == preview.id and release["sha256"] == preview.sample_sha256


def test_a_suspended_dataset_shows_no_preview_until_restored(
    client, factory, users, published, settings
):
    """A rights complaint suspends the opening at once (Shanghai Art.22): the preview too."""
    _budget(factory, users, epsilon=1.0, delta=0.0)
    _make(factory, settings, users, 0.5)
    with transaction(factory) as session:
        complaint = file_complaint(
            session=session,
            dataset=NAME,
            complainant="Wang",
            contact="wang@example.invalid",
            kind="privacy",
            description="my visit is in it",
            evidence="a letter",
        )
        handle_complaint(
            session=session,
            actor=users["health"],
            complaint_id=complaint.id,
            to=ComplaintStatus.suspended,
        )
    refused = client.get(f"/api/catalog/{NAME}/preview.csv")
    assert refused.status_code == 403 and refused.json()["rule"] == "preview-suspended"
    assert refused.json()["article"] == "Shanghai Art.22"
    with pytest.raises(PolicyViolation):
        _make(factory, settings, users, 0.1)
    with transaction(factory) as session:
        handle_complaint(
            session=session,
            actor=users["health"],
            complaint_id=complaint.id,
            to=ComplaintStatus.restored,
            answer="verified; restored",
        )
    assert client.get(f"/api/catalog/{NAME}/preview.csv").status_code == 200
