"""Truncating the record is caught, even when the operator re-signs (issue 12, item 3).

The head is signed every N events or T seconds and when ``serve`` stops; the authority
downloads the checkpoints (API and page, authority only) and keeps them; ``sandbox audit
verify --checkpoints FILE`` checks the record against that copy. The operator, who holds
the signing key, deletes the tail, appends and signs a new head: the authority's older
file names a head the rewritten record no longer has.

On SQLite and PostgreSQL (the fixtures in ``conftest.py``), real HTTP through FastAPI's
TestClient, the real CLI, and one real ``sandbox serve`` process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from sandbox.accounts.models import User
from sandbox.apps.platform import create_app
from sandbox.audit.anchor_timer import CheckpointTimer
from sandbox.audit.anchoring import (
    Uncovered,
    checkpoint_due,
    checkpoint_if_due,
    read_uncovered,
    sign_head,
)
from sandbox.audit.authority_copy import (
    authority_entry,
    checkpoints_jsonl,
    read_checkpoints,
)
from sandbox.audit.canonical import canonical_bytes
from sandbox.audit.checkpoint import (
    SignedCheckpoint,
    fingerprint_hex,
    load_signing_key,
    public_key_hex,
)
from sandbox.audit.models import AuditCheckpoint, AuditEvent
from sandbox.cli.audit import audit_app
from sandbox.db.base import make_engine, make_sessionmaker, transaction
from sandbox.db.schema import ensure_schema
from sandbox.db.sealed import platform_engine
from sandbox.errors import ValidationFailed
from sandbox.settings import Settings
from tests.audit.conftest import append, postgres_schema
from tests.control_plane.conftest import login, make_users
from tests.web.test_pages import csrf_token, sign_in
from tests.workspaces.hub import free_port

runner = CliRunner()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _cli(*args: str) -> Result:
    return runner.invoke(audit_app, list(args))


def _checkpoint_seqs(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(AuditCheckpoint.seq).order_by(AuditCheckpoint.seq)))


def _signed_bytes(seq: int, digest: str, at: str) -> bytes:
    """What a checkpoint's signature covers (as sandbox/audit/checkpoint.py signs it)."""
    return canonical_bytes({"seq": seq, "hash": digest, "at": at})


def _sql(factory: sessionmaker[Session], statement: str) -> None:
    with transaction(factory) as session:
        session.execute(text(statement))


# --- When the head is signed ---------------------------------------------------------------


def test_the_head_is_due_after_n_events() -> None:
    due = checkpoint_due(
        Uncovered(head=1999, covered=1000, oldest_at=T0), now=T0, every_events=1000,
        every_seconds=300,
    )  # fmt: skip
    assert due is None
    due = checkpoint_due(
        Uncovered(head=2000, covered=1000, oldest_at=T0), now=T0, every_events=1000,
        every_seconds=300,
    )  # fmt: skip
    assert due == "1000 events not under a checkpoint (every 1000 events)"


def test_the_head_is_due_when_its_oldest_unsigned_event_is_t_seconds_old() -> None:
    tail = Uncovered(head=3, covered=2, oldest_at=T0)
    assert checkpoint_due(tail, now=T0 + timedelta(seconds=299.9), every_events=0,
                          every_seconds=300) is None  # fmt: skip
    due = checkpoint_due(tail, now=T0 + timedelta(seconds=300), every_events=0, every_seconds=300)
    assert due == "the oldest event not under a checkpoint is 300 s old (every 300 s)"


def test_nothing_is_due_with_nothing_unsigned_or_with_the_triggers_off() -> None:
    late = T0 + timedelta(days=1)
    signed_head = Uncovered(head=7, covered=7, oldest_at=None)
    assert checkpoint_due(signed_head, now=late, every_events=1, every_seconds=1) is None
    assert checkpoint_due(Uncovered(0, 0, None), now=late, every_events=1, every_seconds=1) is None
    tail = Uncovered(head=5000, covered=0, oldest_at=T0)
    assert checkpoint_due(tail, now=late, every_events=0, every_seconds=0) is None


def test_checkpoints_are_made_every_n_events(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """Checked after every append, as the timer does: one checkpoint per 5 events."""
    for _ in range(23):
        append(factory, 1)
        checkpoint_if_due(
            factory, tmp_path / "keys", now=datetime.now(UTC), every_events=5, every_seconds=0
        )
    assert _checkpoint_seqs(factory) == [5, 10, 15, 20]
    with factory() as session:
        tail = read_uncovered(session)
    assert (tail.head, tail.covered, tail.count) == (23, 20, 3)


def test_a_checkpoint_is_made_once_the_oldest_unsigned_event_is_t_seconds_old(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    append(factory, 3)
    with factory() as session:
        oldest = read_uncovered(session).oldest_at
    assert oldest is not None
    keys = tmp_path / "keys"
    early = oldest + timedelta(seconds=299)
    assert checkpoint_if_due(factory, keys, now=early, every_events=0, every_seconds=300) is None
    made = checkpoint_if_due(
        factory, keys, now=oldest + timedelta(seconds=300), every_events=0, every_seconds=300
    )
    assert made is not None and made.seq == 3
    assert _checkpoint_seqs(factory) == [3]


def test_the_timer_signs_the_head_when_it_stops(
    db_url: str, factory: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = Settings(
        environment="test", data_dir=tmp_path / "var", database_url=db_url,
        checkpoint_every_events=1_000_000, checkpoint_every_seconds=1_000_000,
    )  # fmt: skip
    timer = CheckpointTimer.from_settings(settings)
    assert timer is not None
    timer.start()
    append(factory, 7)
    final = timer.stop()
    assert final is not None and final.seq == 7
    assert _checkpoint_seqs(factory) == [7]
    off = settings.model_copy(update={"checkpoint_every_events": 0, "checkpoint_every_seconds": 0})
    assert CheckpointTimer.from_settings(off) is None


def test_serve_signs_the_head_when_it_is_stopped(tmp_path: Path) -> None:
    """A real ``sandbox serve``: events appended through HTTP (failed sign-ins) stand under
    no checkpoint until SIGTERM, and are under one after it."""
    port, data_dir = free_port(), tmp_path / "var"
    env = {
        **os.environ,
        "SANDBOX_DATA_DIR": str(data_dir),
        "SANDBOX_ENVIRONMENT": "development",
        "SANDBOX_PORT": str(port),
        "SANDBOX_DUTIES_INTERVAL": "0",
        "SANDBOX_CHECKPOINT_EVERY_EVENTS": "1000000",
        "SANDBOX_CHECKPOINT_EVERY_SECONDS": "1000000",
    }
    env.pop("SANDBOX_DATABASE_URL", None)
    sandbox = str(Path(sys.executable).with_name("sandbox"))
    proc = subprocess.Popen(
        [sandbox, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the platform never answered"
            try:
                if httpx.get(f"{base}/api/catalog").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        for _ in range(3):
            wrong = {"username": "nobody", "password": "wrong"}
            assert httpx.post(f"{base}/api/auth/token", data=wrong).status_code in (401, 403)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, output
    engine = make_engine(f"sqlite:///{(data_dir / 'sandbox.db').resolve()}")
    try:
        with make_sessionmaker(engine)() as session:
            tail = read_uncovered(session)
    finally:
        engine.dispose()
    assert tail.head >= 3 and tail.covered == tail.head, output


# --- The authority's copy: API and page --------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def platform_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The whole platform schema, in a SQLite file or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        database = nullcontext(f"sqlite:///{tmp_path / 'platform.db'}")
    else:
        database = postgres_schema()
    with database as url:
        ensure_schema(url)
        yield url


@pytest.fixture
def settings(platform_url: str, tmp_path: Path) -> Settings:
    return Settings(environment="test", data_dir=tmp_path / "var", database_url=platform_url)


@pytest.fixture
def platform(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = platform_engine(settings)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def users(platform: sessionmaker[Session]) -> dict[str, User]:
    with transaction(platform) as session:
        return make_users(session)


@pytest.fixture
def client(settings: Settings, users: dict[str, User]) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def _anchor(settings: Settings, platform: sessionmaker[Session], events: int, every: int) -> int:
    """Sign the head the users left, then append ``events`` events, checking after each as
    the timer does; the first head's ``seq``, so checkpoints fall at base + k * every."""
    base = sign_head(platform, settings.keys_dir)
    assert base is not None
    for _ in range(events):
        append(platform, 1)
        checkpoint_if_due(
            platform, settings.keys_dir, now=datetime.now(UTC), every_events=every, every_seconds=0
        )
    return base.seq


def test_the_api_gives_the_authority_every_checkpoint_and_refuses_other_roles(
    client: TestClient, settings: Settings, platform: sessionmaker[Session]
) -> None:
    base = _anchor(settings, platform, 14, every=4)
    seqs = _checkpoint_seqs(platform)
    assert seqs == [base, base + 4, base + 8, base + 12]
    got = client.get("/api/audit/checkpoints", headers=login(client, "auth"))
    assert got.status_code == 200, got.text
    entries = got.json()
    assert [e["seq"] for e in entries] == seqs
    public_key = public_key_hex(load_signing_key(settings.keys_dir))
    for entry in entries:
        assert set(entry) == {"seq", "hash", "at", "signature", "public_key", "key_fingerprint"}
        assert entry["public_key"] == public_key
        assert entry["key_fingerprint"] == fingerprint_hex(public_key)
        assert SignedCheckpoint.from_json(
            {k: v for k, v in entry.items() if k != "key_fingerprint"}, source="api"
        ).signature_problem() is None  # fmt: skip
    newer = client.get(f"/api/audit/checkpoints?after={seqs[0]}", headers=login(client, "auth"))
    assert [e["seq"] for e in newer.json()] == seqs[1:]

    for name in ("ops", "alice", "health"):
        refused = client.get("/api/audit/checkpoints", headers=login(client, name))
        assert refused.status_code == 403
        assert refused.json()["rule"] == "role"
        assert "needs the role authority" in refused.json()["error"]
    anonymous = client.get("/api/audit/checkpoints")
    assert anonymous.status_code in (401, 403) and anonymous.json()["rule"] == "auth"


def test_the_page_shows_offers_and_signs_checkpoints_for_the_authority_only(
    client: TestClient, settings: Settings, platform: sessionmaker[Session]
) -> None:
    base = _anchor(settings, platform, 9, every=4)  # base + 9 is not under one
    sign_in(client, "auth")
    home = client.get("/authority")
    assert 'href="/authority/checkpoints" id="menu-checkpoints"' in home.text
    page = client.get("/authority/checkpoints")
    assert page.status_code == 200
    fingerprint = fingerprint_hex(public_key_hex(load_signing_key(settings.keys_dir)))
    assert fingerprint in page.text
    for seq in (base, base + 4, base + 8):
        assert f'data-seq="{seq}"' in page.text
    with platform() as session:
        tail = read_uncovered(session)  # base + 9 and the sign-in
    assert tail.covered == base + 8 and f'id="uncovered">{tail.count} ' in page.text

    download = client.get("/authority/checkpoints.jsonl")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in download.headers["content-disposition"]
    copy = settings.data_dir.parent / "authority.jsonl"
    copy.write_bytes(download.content)
    assert [cp.seq for cp in read_checkpoints(copy)] == [base, base + 4, base + 8]

    token = csrf_token(client, "/authority/checkpoints")
    signed_now = client.post(
        "/authority/checkpoints", data={"csrf_token": token}, follow_redirects=False
    )
    assert signed_now.status_code == 303
    assert _checkpoint_seqs(platform) == [base, base + 4, base + 8, tail.head]
    with platform() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (last.actor, last.action) == ("auth", "audit.checkpoint")
    assert last.object == f"audit:{tail.head}"

    client.cookies.clear()
    sign_in(client, "ops")
    refused = client.get("/authority/checkpoints")
    assert refused.status_code == 403 and "role" in refused.text
    assert client.get("/authority/checkpoints.jsonl").status_code == 403
    assert 'id="menu-checkpoints"' not in client.get("/authority/audit").text


# --- Verifying the record against the authority's copy ----------------------------------------


@dataclass
class Kept:
    """The authority's download, and the ``seq`` of each checkpoint in it."""

    path: Path
    seqs: list[int]


@pytest.fixture
def kept(
    client: TestClient, settings: Settings, platform: sessionmaker[Session], tmp_path: Path
) -> Kept:
    """30 events signed every 10; the authority's download of the four checkpoints."""
    base = _anchor(settings, platform, 30, every=10)
    got = client.get("/api/audit/checkpoints", headers=login(client, "auth"))
    seqs = [e["seq"] for e in got.json()]
    assert seqs == [base, base + 10, base + 20, base + 30]
    path = tmp_path / "authority-checkpoints.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in got.json()), encoding="utf-8")
    return Kept(path, seqs)


def _verify(settings: Settings, kept: Kept, *extra: str) -> Result:
    return _cli(
        "verify", "--db", settings.db_url, "--keys-dir", str(settings.keys_dir),
        "--checkpoints", str(kept.path), *extra,
    )  # fmt: skip


def _head(platform: sessionmaker[Session]) -> int:
    with platform() as session:
        return read_uncovered(session).head


def test_verify_with_the_file_passes_on_an_intact_record(
    settings: Settings, platform: sessionmaker[Session], kept: Kept
) -> None:
    append(platform, 4)  # the record goes on after the download
    result = _verify(settings, kept)
    assert result.exit_code == 0, result.output
    assert f"OK: {_head(platform)} events verified" in result.stdout


def test_verify_with_the_file_names_what_a_truncation_removed(
    settings: Settings, platform: sessionmaker[Session], kept: Kept
) -> None:
    """The operator deletes the last events and their stored checkpoints: the record alone
    still verifies, the authority's copy does not."""
    last = kept.seqs[-1]
    _sql(platform, f"DELETE FROM audit_events WHERE seq > {last - 5}")
    _sql(platform, f"DELETE FROM audit_checkpoints WHERE seq > {last - 5}")
    alone = _cli("verify", "--db", settings.db_url, "--keys-dir", str(settings.keys_dir))
    assert alone.exit_code == 0, alone.output  # what item 3 reported
    result = _verify(settings, kept)
    assert result.exit_code == 1
    assert f"seq {last}: checkpoint:" in result.stdout
    assert (
        f"record ends at seq {last - 5}: seq {last - 4}..{last} missing, events were removed"
    ) in result.stdout
    assert "FAILED: 1 problems" in result.stdout


def test_verify_with_the_file_catches_a_truncation_the_operator_re_signed(
    settings: Settings, platform: sessionmaker[Session], kept: Kept
) -> None:
    """Deleted tail, new events in its place, a new head signed with the platform's key
    (the operator holds it): every stored checkpoint verifies, the authority's does not."""
    cut = kept.seqs[-1] - 6
    _sql(platform, f"DELETE FROM audit_events WHERE seq > {cut}")
    _sql(platform, f"DELETE FROM audit_checkpoints WHERE seq > {cut}")
    append(platform, 9, actor="mallory")
    resigned = _cli("checkpoint", "--db", settings.db_url, "--keys-dir", str(settings.keys_dir))
    assert resigned.exit_code == 0, resigned.output
    alone = _cli("verify", "--db", settings.db_url, "--keys-dir", str(settings.keys_dir))
    assert alone.exit_code == 0, alone.output  # a perfect forgery without the copy

    result = _verify(settings, kept)
    assert result.exit_code == 1
    assert f"seq {kept.seqs[-1]}: checkpoint:" in result.stdout
    assert "the record was rewritten up to here" in result.stdout


def test_verify_fails_on_a_checkpoint_file_with_a_bad_signature(
    settings: Settings, kept: Kept
) -> None:
    lines = kept.path.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[1])
    entry["hash"] = "0" * 64  # the head it names, changed after signing
    lines[1] = json.dumps(entry)
    kept.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _verify(settings, kept)
    assert result.exit_code == 1
    seq = kept.seqs[1]
    assert (
        f"seq {seq}: checkpoint: the signature of the checkpoint at seq {seq} does not verify"
        in (result.stdout)
    )


def test_verify_fails_on_checkpoints_signed_by_another_key(settings: Settings, kept: Kept) -> None:
    """A file signed by some other key, however well, proves nothing about this record."""
    other = Ed25519PrivateKey.generate()
    forged = []
    for cp in read_checkpoints(kept.path):
        signature = other.sign(_signed_bytes(cp.seq, cp.hash, cp.at)).hex()
        forged.append(SignedCheckpoint(cp.seq, cp.hash, cp.at, signature, public_key_hex(other)))
    kept.path.write_text(checkpoints_jsonl(forged), encoding="utf-8")
    result = _verify(settings, kept)
    assert result.exit_code == 1
    first = kept.seqs[0]
    assert (
        f"seq {first}: checkpoint: the authority's checkpoint at seq {first} is signed by key"
    ) in result.stdout
    assert "not the platform's key" in result.stdout


def test_verify_needs_to_know_the_platform_key(
    settings: Settings, platform: sessionmaker[Session], kept: Kept, tmp_path: Path
) -> None:
    """Without the key on disk the authority names it (as /keys shows it); without either,
    a usage error naming the rule."""
    no_keys = ["--keys-dir", str(tmp_path / "nowhere")]
    result = _cli("verify", "--db", settings.db_url, "--checkpoints", str(kept.path), *no_keys)
    assert result.exit_code == 2
    assert "--checkpoints needs the platform's key" in result.stderr
    assert "[audit-key]" in result.stderr

    fingerprint = fingerprint_hex(public_key_hex(load_signing_key(settings.keys_dir)))
    pinned = _cli(
        "verify", "--db", settings.db_url, "--checkpoints", str(kept.path), *no_keys,
        "--key-fingerprint", fingerprint,
    )  # fmt: skip
    assert pinned.exit_code == 0, pinned.output


# --- The file itself -----------------------------------------------------------------------


def test_the_file_reads_as_json_lines_an_array_or_one_checkpoint(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()

    def made(seq: int) -> SignedCheckpoint:
        at, digest = "2026-03-02T09:00:00.000000Z", f"{seq:064x}"
        signature = key.sign(_signed_bytes(seq, digest, at)).hex()
        return SignedCheckpoint(seq, digest, at, signature, public_key_hex(key))

    lines, array, single = tmp_path / "a.jsonl", tmp_path / "b.json", tmp_path / "c.json"
    lines.write_text(checkpoints_jsonl([made(1), made(2)]) + "\n", encoding="utf-8")
    array.write_text(json.dumps([authority_entry(made(3))], indent=2), encoding="utf-8")
    single.write_text(json.dumps(made(4).to_json(), indent=2), encoding="utf-8")
    assert [cp.seq for cp in read_checkpoints(lines)] == [1, 2]
    assert [cp.seq for cp in read_checkpoints(array)] == [3]
    assert [cp.seq for cp in read_checkpoints(single)] == [4]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no checkpoint"),
        ('{"seq": 1}\n{"seq": 2}\nnot json\n', ":3: not a JSON checkpoint"),
        ("[1]", "a checkpoint has exactly the fields"),
    ],
)
def test_an_unreadable_file_is_refused_naming_where(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "kept.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValidationFailed, match=message) as refused:
        read_checkpoints(path)
    assert refused.value.rule == "audit-checkpoints-file"


def test_a_key_fingerprint_that_does_not_name_its_key_is_refused(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    entry = {
        "seq": 1, "hash": "a" * 64, "at": "2026-03-02T09:00:00.000000Z", "signature": "b" * 128,
        "public_key": public_key_hex(key), "key_fingerprint": "sha256:" + "c" * 64,
    }  # fmt: skip
    path = tmp_path / "kept.jsonl"
    path.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="is not the fingerprint of the checkpoint's"):
        read_checkpoints(path)
