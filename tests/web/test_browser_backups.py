"""The operator backs up from the page, in Debian's chromium against a real uvicorn (R13;
Rizhao Art.29): the backups page from the menu, "back up now", the result and the new row,
and an encrypted file in ``backup_dir``.

Screenshots go to test-artifacts/screenshots/; assertions are on what the page shows and
what the disk holds, never on timing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.accounts.models import User
from sandbox.backup import crypto
from sandbox.backup.crypto import generate_key_pair
from sandbox.settings import Settings
from tests.web.conftest import screenshot, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The page tests' platform with the operator's public key configured."""
    key = generate_key_pair(tmp_path / "operator")
    return settings.model_copy(update={"backup_recipient": key.recipient})


def test_operator_backs_up_from_the_page(
    page, live_server: str, platform: dict[str, User], settings: Settings
) -> None:
    sign_in(page, live_server, "ops")
    page.click("#menu-backups")
    page.wait_for_selector("#backups")
    assert page.locator("#backups tr[data-name]").count() == 0
    page.click("#back-up-now button[type=submit]")
    page.wait_for_selector("#backup-result")
    screenshot(page, "operator-backups")
    name = page.inner_text("#backup-made-name")
    assert page.locator(f"#backups tr[data-name='{name}']").count() == 1
    assert page.inner_text("#backup-made-datasets") == "2"
    path = settings.backups_dir / name
    assert path.is_file() and crypto.is_encrypted(path)
    assert page.inner_text("#backup-made-size") == f"{path.stat().st_size} B"
