"""The key store on real files: data keys wrapped under a master key (AES-256-GCM or
SM4-GCM), bound to their agreement, re-wrapped by rotation, and kept apart from the data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sandbox.keys.store import DataKeyMissing, KeyStore, KeyStoreUnreadable
from sandbox.refusal_text import say
from sandbox.settings import Settings


@pytest.mark.parametrize("algorithm", ["aes-256-gcm", "sm4-gcm"])
def test_a_data_key_is_stored_only_wrapped_and_opens_again(tmp_path: Path, algorithm) -> None:
    store = KeyStore(tmp_path / "keystore", algorithm)
    key = store.data_key_or_create("AGR-1")
    assert len(key) == 32 and store.data_key_or_create("AGR-1") == key
    assert KeyStore(tmp_path / "keystore").data_key("AGR-1") == key  # the file says how
    for path in (tmp_path / "keystore").rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes() and key.hex().encode() not in path.read_bytes()
            assert path.stat().st_mode & 0o077 == 0, path


def test_a_wrapped_key_copied_under_another_agreement_does_not_open(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.data_key_or_create("AGR-1")
    shutil.copy(tmp_path / "agreements" / "AGR-1.json", tmp_path / "agreements" / "AGR-2.json")
    with pytest.raises(KeyStoreUnreadable) as refused:
        store.data_key("AGR-2")
    assert refused.value.rule == "key-store-unreadable"
    assert say(refused.value.rule, refused.value.message, "zh").startswith(
        "协议 AGR-2 的数据密钥无法用主密钥"
    )


def test_destroyed_key_is_gone_and_says_so(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.data_key_or_create("AGR-1")
    assert store.destroy_data_key("AGR-1") and not store.destroy_data_key("AGR-1")
    with pytest.raises(DataKeyMissing) as refused:
        store.data_key("AGR-1")
    assert refused.value.rule == "at-rest-key-missing"
    assert refused.value.article == "Rizhao Art.29, 31"
    assert say(refused.value.rule, refused.value.message, "zh").startswith(
        "密钥库中没有协议 AGR-1 的数据密钥："
    )


def test_rotation_rewraps_under_a_new_master_and_can_move_to_sm4(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    keys = {a: store.data_key_or_create(a) for a in ("AGR-1", "AGR-2")}
    first = store.current_master()
    done = KeyStore(tmp_path, "sm4-gcm").rotate()
    assert done.destroyed == [first] and done.rewrapped == 2 and done.algorithm == "sm4-gcm"
    assert [p.stem for p in (tmp_path / "masters").glob("*.json")] == [done.master]
    assert {a: store.data_key(a) for a in keys} == keys


def test_the_key_store_must_lie_outside_the_data_directory(tmp_path: Path) -> None:
    beside = Settings(environment="test", data_dir=tmp_path / "var")
    assert beside.key_store_path == tmp_path / "var-keystore"
    with pytest.raises(ValueError, match="key-store-apart"):
        Settings(environment="test", data_dir=tmp_path, key_store_dir=tmp_path / "keys")
