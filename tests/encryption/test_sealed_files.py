"""Files sealed at rest (sandbox/keys/files.py) with either algorithm the key store offers:
the content is not in the sealed bytes, opens with its key and context only, and opens no
more once its key is destroyed; a plain file from before is read as it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.keys.files import is_sealed, open_file, seal_file
from sandbox.keys.store import DataKeyMissing, KeyRef, KeyStore, KeyStoreUnreadable

CONTENT = "district,visits\nZQX-planted-区,120\n".encode()


@pytest.mark.parametrize("algorithm", ["aes-256-gcm", "sm4-gcm"])
def test_a_sealed_file_opens_with_its_key_and_context_only(tmp_path: Path, algorithm) -> None:  # noqa: ANN001
    store, key = KeyStore(tmp_path / "store", algorithm), KeyRef("releases", "AGR-T-0001-export-1")
    path = tmp_path / "table.csv"
    path.write_bytes(seal_file(store, key, "files/table.csv", CONTENT))
    sealed = path.read_bytes()
    assert is_sealed(sealed) and algorithm.encode() in sealed.split(b"\n", 1)[0]
    assert b"ZQX-planted" not in sealed and b"district" not in sealed
    assert open_file(store, key, "files/table.csv", sealed) == CONTENT
    assert open_file(store, key, "files/table.csv", CONTENT) == CONTENT  # plain, from before
    with pytest.raises(KeyStoreUnreadable):  # moved to another name
        open_file(store, key, "files/other.csv", sealed)
    with pytest.raises(KeyStoreUnreadable):  # altered
        open_file(store, key, "files/table.csv", sealed[:-1] + bytes([sealed[-1] ^ 1]))
    assert store.rotate().rewrapped == 1
    assert open_file(store, key, "files/table.csv", sealed) == CONTENT
    store.destroy_data_key(key)
    with pytest.raises(DataKeyMissing):
        open_file(store, key, "files/table.csv", sealed)
