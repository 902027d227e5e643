"""Catalogue review pages (Shanghai Art.12; Wuxi Art.11-12): the authority's queue and
decision form, the provider's dataset list with where each entry's review stands."""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.catalog.models import CatalogReview
from sandbox.catalog.service import Publication, publish_dataset
from sandbox.contracts import load_catalog_entry
from sandbox.db.base import transaction
from sandbox.settings import Settings
from tests.web.test_pages import csrf_token, sign_in

LAWFUL = "条件合法，予以公布。"


def _propose(factory, users, settings: Settings, path: Path) -> Publication:  # noqa: ANN001
    entry = load_catalog_entry(path)
    with transaction(factory) as session:
        return publish_dataset(
            session=session, actor=users["health"], entry=entry,
            data_path=entry.source_path(), settings=settings,
        )  # fmt: skip


def _changed(catalog_dir: Path) -> Path:
    path = catalog_dir / "clinic_visits.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["conditions"] = "认证机构，具备等保三级"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_the_authority_decides_in_the_form_with_a_legality_review(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session],
    settings: Settings, catalog_dir: Path,
) -> None:  # fmt: skip
    pub = _propose(factory, platform, settings, _changed(catalog_dir))
    review_id = pub.review.id
    sign_in(client, "auth")
    queue = client.get("/authority/catalog-reviews")
    assert queue.status_code == 200 and f'id="catalog-review-{review_id}"' in queue.text
    form_page = client.get(f"/authority/catalog-reviews/{review_id}")
    # The change is shown beside the published entry.
    assert "Accredited institutions." in form_page.text
    assert "认证机构，具备等保三级" in form_page.text
    token = csrf_token(client, f"/authority/catalog-reviews/{review_id}")
    refused = client.post(
        f"/authority/catalog-reviews/{review_id}",
        data={"decision": "approve", "legality_review": " ", "csrf_token": token},
    )
    assert refused.status_code == 422 and 'class="rule">catalog-review-legality<' in refused.text
    assert "Wuxi Art.12" in refused.text
    no_csrf = client.post(
        f"/authority/catalog-reviews/{review_id}",
        data={"decision": "approve", "legality_review": "Lawful."},
    )
    assert no_csrf.status_code == 403
    with transaction(factory) as session:
        assert session.get_one(CatalogReview, review_id).status == "under_review"
    done = client.post(
        f"/authority/catalog-reviews/{review_id}",
        data={"decision": "approve", "legality_review": LAWFUL, "csrf_token": token},
    )
    assert done.status_code == 200 and 'id="review-status">已公布<' in done.text
    assert LAWFUL in done.text and 'id="decide"' not in done.text
    assert "认证机构，具备等保三级" in client.get("/datasets/clinic_visits").text


def test_the_provider_sees_under_review_and_rejected_with_the_reason(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session],
    settings: Settings, catalog_dir: Path,
) -> None:  # fmt: skip
    pub = _propose(factory, platform, settings, _changed(catalog_dir))
    sign_in(client, "health")
    home = client.get("/provider")
    assert "审查中" in home.text and "目录变更" in home.text
    # The provider reads its review but gets no decision form, and a decision is refused.
    mine = client.get(f"/authority/catalog-reviews/{pub.review.id}")
    assert mine.status_code == 200 and 'id="decide"' not in mine.text
    token = csrf_token(client, "/provider")
    own = client.post(
        f"/authority/catalog-reviews/{pub.review.id}",
        data={"decision": "approve", "legality_review": "Mine is fine.", "csrf_token": token},
    )
    assert own.status_code == 403 and 'class="rule">catalog-review-authority<' in own.text
    assert client.get("/authority/catalog-reviews").status_code == 403  # the queue is oversight's
    client.cookies.clear()
    sign_in(client, "auth")
    token = csrf_token(client, f"/authority/catalog-reviews/{pub.review.id}")
    client.post(
        f"/authority/catalog-reviews/{pub.review.id}",
        data={"decision": "reject", "legality_review": "条件与分级规则不符", "csrf_token": token},
    )
    client.cookies.clear()
    sign_in(client, "health")
    home = client.get("/provider").text
    assert "未通过审查" in home and "(条件与分级规则不符)" in home


WITHDRAW_REASON = "数据项单位有误，更正后重新提交"


def test_the_provider_withdraws_its_proposal_with_a_reason(
    client: TestClient, platform: dict[str, User], factory: sessionmaker[Session],
    settings: Settings, catalog_dir: Path,
) -> None:  # fmt: skip
    pub = _propose(factory, platform, settings, _changed(catalog_dir))
    review_id, proposed = pub.review.id, Path(pub.version.path)
    url = f"/provider/catalog-reviews/{review_id}/withdraw"
    sign_in(client, "health")
    home = client.get("/provider").text
    assert f'id="withdraw-review-{review_id}"' in home and f'action="{url}"' in home
    token = csrf_token(client, "/provider")
    assert client.post(url, data={"reason": WITHDRAW_REASON}).status_code == 403  # no CSRF
    empty = client.post(url, data={"reason": " ", "csrf_token": token})
    assert empty.status_code == 422
    assert 'class="rule">catalog-review-withdraw-reason<' in empty.text
    assert 'class="article">Shanghai Art.12' in empty.text
    # Another provider and the authority are refused with the rule and the article.
    for who in ("market", "auth"):
        client.cookies.clear()
        sign_in(client, who)
        other = client.post(
            url, data={"reason": WITHDRAW_REASON, "csrf_token": csrf_token(client, "/")}
        )
        assert other.status_code == 403, who
        assert 'class="rule">catalog-review-withdraw-provider<' in other.text
        assert 'class="article">Shanghai Art.12' in other.text
    # The authority sees no withdrawal form on the review it decides.
    assert "/withdraw" not in client.get(f"/authority/catalog-reviews/{review_id}").text
    with transaction(factory) as session:
        assert session.get_one(CatalogReview, review_id).status == "under_review"
    assert proposed.is_file()

    client.cookies.clear()
    sign_in(client, "health")
    token = csrf_token(client, "/provider")
    done = client.post(url, data={"reason": WITHDRAW_REASON, "csrf_token": token})
    assert done.status_code == 200 and str(done.url).endswith("/provider#datasets")
    assert "已撤回" in done.text and f"({WITHDRAW_REASON})" in done.text
    assert f'id="withdraw-review-{review_id}"' not in done.text
    assert not proposed.exists()
    again = client.post(url, data={"reason": WITHDRAW_REASON, "csrf_token": token})
    assert again.status_code == 409 and "只有正在进行的审核可以撤回" in again.text
    # The pages that show the dataset and the review still work without the file.
    shown = client.get(f"/authority/catalog-reviews/{review_id}")
    assert shown.status_code == 200 and 'id="review-status">已撤回<' in shown.text
    assert f'id="withdrawal-reason">{WITHDRAW_REASON}<' in shown.text
    public = client.get("/datasets/clinic_visits")
    assert public.status_code == 200 and "认证机构，具备等保三级" not in public.text
    client.cookies.clear()
    sign_in(client, "auth")
    for page in ("/authority/catalog-reviews", f"/authority/catalog-reviews/{review_id}",
                 "/authority/statistics", "/oversight"):  # fmt: skip
        assert client.get(page).status_code == 200, page
    figure = client.get("/authority/statistics").text.split(
        'id="figure-catalog_reviews_by_status"'
    )[1]
    assert "已撤回: 1" in figure.split("</section>")[0]  # the status in the page's language
    # The provider may propose again.
    again_pub = _propose(factory, platform, settings, catalog_dir / "clinic_visits.yaml")
    assert again_pub.review is not None and Path(again_pub.version.path).is_file()
