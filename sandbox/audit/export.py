"""The record as a file the authority keeps and verifies offline.

The file is JSON Lines. The first line is the header
``{"format": "sandbox-audit-record/1", "checkpoint": {...}}`` with a checkpoint
signed over the last exported event; every following line is one event exactly
as stored (``seq, at, actor, action, object, details, prev_hash, hash``, with
``details`` the stored canonical JSON text). :func:`verify_export` runs the
same :func:`sandbox.audit.verify.verify_events` the platform runs on its
database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from sandbox.audit.checkpoint import SignedCheckpoint, make_checkpoint, public_key_hex, signed
from sandbox.audit.verify import VerifyResult, stream_events, verify_events
from sandbox.db.base import transaction
from sandbox.errors import ValidationFailed

FORMAT = "sandbox-audit-record/1"
EVENT_FIELDS = {
    "seq": int,
    "at": str,
    "actor": str,
    "action": str,
    "object": str,
    "details": str,
    "prev_hash": str,
    "hash": str,
}


def export_record(
    factory: sessionmaker[Session], key: Ed25519PrivateKey, out: Path
) -> SignedCheckpoint:
    """Checkpoint the head, then write it and every event up to it to ``out``.

    The checkpoint commits in a short transaction of its own; the events are
    then streamed outside any write lock, so appenders are not held up by a
    long export.
    """
    with transaction(factory) as session:
        checkpoint = signed(make_checkpoint(session, key), public_key_hex(key))
    with factory() as session, out.open("w", encoding="utf-8") as handle:
        header = {"format": FORMAT, "checkpoint": checkpoint.to_json()}
        handle.write(json.dumps(header, ensure_ascii=False) + "\n")
        for event in stream_events(session, upto=checkpoint.seq):
            handle.write(json.dumps(event, ensure_ascii=False) + "\n")
    return checkpoint


def verify_export(path: Path, checkpoints: Iterable[SignedCheckpoint] = ()) -> VerifyResult:
    """Verify an exported file against its own checkpoint and any the authority kept."""
    with path.open(encoding="utf-8") as handle:
        lines = iter(enumerate(handle, start=1))
        header = _header(path, next(lines, (1, "")))
        events = (_event(path, number, line) for number, line in lines)
        return verify_events(events, [header, *checkpoints])


def _header(path: Path, numbered: tuple[int, str]) -> SignedCheckpoint:
    data = _json_line(path, *numbered)
    if data.get("format") != FORMAT or "checkpoint" not in data:
        raise ValidationFailed(
            f"{path}:1: not an audit record export; the first line must be "
            f'{{"format": "{FORMAT}", "checkpoint": {{...}}}}'
        )
    return SignedCheckpoint.from_json(data["checkpoint"], source=f"{path}:1")


def _event(path: Path, number: int, line: str) -> dict[str, Any]:
    data = _json_line(path, number, line)
    if set(data) != set(EVENT_FIELDS):
        raise ValidationFailed(
            f"{path}:{number}: an event has exactly the fields {sorted(EVENT_FIELDS)}, "
            f"got {sorted(data)}"
        )
    for name, kind in EVENT_FIELDS.items():
        if not isinstance(data[name], kind) or isinstance(data[name], bool):
            raise ValidationFailed(f"{path}:{number}: event field {name} must be {kind.__name__}")
    return data


def _json_line(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ValidationFailed(f"{path}:{number}: not a JSON line ({exc})") from exc
    if not isinstance(data, dict):
        raise ValidationFailed(f"{path}:{number}: expected a JSON object")
    return data
