"""The operator's backups page (R13; Rizhao Art.29): real HTTP through the app. A form
without its CSRF token is refused; without a public key the refusal is shown with its rule
and article and nothing is written; with one, the page shows what the new backup holds and
lists it. The authority sees the list without the button; a researcher is refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.apps.platform import create_app
from sandbox.audit.models import AuditEvent
from sandbox.backup.crypto import KeyPair, generate_key_pair
from sandbox.db.base import transaction
from sandbox.settings import Settings
from tests.web.test_pages import csrf_token, sign_in

PAGE = "/operator/backups"


def _events(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def test_a_form_without_its_token_is_refused(
    client: TestClient, platform: dict[str, User], settings: Settings
) -> None:
    sign_in(client, "ops")
    refused = client.post(PAGE, data={})
    assert refused.status_code == 403 and 'class="rule">csrf<' in refused.text
    assert not settings.backups_dir.exists()


def test_without_a_public_key_the_refusal_is_shown_and_nothing_written(
    client: TestClient,
    platform: dict[str, User],
    settings: Settings,
    factory: sessionmaker[Session],
) -> None:
    sign_in(client, "ops")
    page = client.get(PAGE)
    assert page.status_code == 200 and 'id="backup-no-recipient"' in page.text
    before = _events(factory)
    refused = client.post(PAGE, data={"csrf_token": csrf_token(client, PAGE)})
    assert refused.status_code == 422
    assert 'class="rule">backup-recipient-missing<' in refused.text
    assert 'class="article">Rizhao Art.29, 31; Putuo Art.32<' in refused.text
    assert 'id="backup-result"' not in refused.text and "暂无" in refused.text
    assert not settings.backups_dir.exists() and _events(factory) == before


@pytest.fixture
def backup_key(tmp_path: Path) -> KeyPair:
    return generate_key_pair(tmp_path / "operator")


@pytest.fixture
def keyed_client(
    settings: Settings, factory: sessionmaker[Session], backup_key: KeyPair
) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"backup_recipient": backup_key.recipient}))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
    app.state.engine.dispose()


def test_the_operator_backs_up_and_sees_what_it_holds(
    keyed_client: TestClient, platform: dict[str, User], settings: Settings
) -> None:
    sign_in(keyed_client, "ops")
    page = keyed_client.get(PAGE)
    assert 'id="backup-no-recipient"' not in page.text and 'action="/operator/backups"' in page.text
    done = keyed_client.post(PAGE, data={"csrf_token": csrf_token(keyed_client, PAGE)})
    assert done.status_code == 200 and 'id="backup-result"' in done.text
    name = re.search(r'id="backup-made-name">([^<]+)<', done.text).group(1)
    path = settings.backups_dir / name
    assert path.is_file() and f'data-name="{name}"' in done.text
    assert f'id="backup-made-size">{path.stat().st_size} B<' in done.text
    assert 'id="backup-made-datasets">2<' in done.text  # clinic_visits and secret_registry
    assert 'id="backup-made-exports">0<' in done.text
    seq = int(re.search(r'id="backup-made-audit-seq">(\d+)<', done.text).group(1))
    assert seq > 0

    sign_in(keyed_client, "auth")
    seen = keyed_client.get(PAGE)
    assert seen.status_code == 200 and f'data-name="{name}"' in seen.text
    assert 'action="/operator/backups"' not in seen.text
    sign_in(keyed_client, "alice")
    refused = keyed_client.get(PAGE)
    assert refused.status_code == 403 and 'class="rule">role<' in refused.text
