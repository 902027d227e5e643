"""Providers' raw uploads at rest: a file uploaded on the provider's page waits for its
preview and publication sealed under a key of its own, read decrypted in memory only; once
published (or abandoned) its key is destroyed, so a kept copy of it opens no more."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sandbox.accounts.models import User
from sandbox.keys.store import DataKeyMissing, KeyStoreUnreadable, key_store, upload_key
from sandbox.settings import Settings
from tests.web.conftest import catalog_dir, client, factory, platform, settings, users  # noqa: F401
from tests.web.test_pages import csrf_token, sign_in
from tests.web.test_publish_files import ROWS, _csv, _declaration, _upload

#: A value only the uploaded file holds.
PLANTED = "ZQX-planted-district"


def test_an_upload_waits_sealed_and_its_key_goes_with_it(
    client: TestClient,  # noqa: F811
    platform: dict[str, User],  # noqa: F811
    settings: Settings,  # noqa: F811
    tmp_path: Path,
) -> None:
    sign_in(client, "health")
    rows = [*ROWS, ["2024-03-04", PLANTED, "1", "1"]]
    declare = _upload(client, _csv(rows, "gb18030"), encoding="gb18030", header_row="")
    upload_id = declare.rstrip("/").rsplit("/", 1)[-1]
    (kept,) = (settings.data_dir / "uploads" / upload_id / "file").iterdir()
    assert kept.name == "门诊就诊.csv"
    assert PLANTED.encode("gb18030") not in kept.read_bytes()
    assert "梁溪区".encode("gb18030") not in kept.read_bytes()

    page = client.get(declare)  # the page reads it, decrypted in memory
    assert page.status_code == 200 and 'name="column_name" value="district"' in page.text
    copy = shutil.copy(kept, tmp_path / "copy.csv")
    tampered = bytearray(kept.read_bytes())
    tampered[-1] ^= 1
    with pytest.raises(KeyStoreUnreadable):
        key_store(settings).unseal(upload_key(upload_id), bytes(tampered))

    token = csrf_token(client, declare)
    assert client.post(f"{declare}/preview", data=_declaration(token)).status_code == 200
    r = client.post(f"{declare}/publish", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    assert not kept.exists()
    with pytest.raises(DataKeyMissing):  # a copy kept of the upload opens no more
        key_store(settings).unseal(upload_key(upload_id), Path(copy).read_bytes())
