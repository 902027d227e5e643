"""The authority's copy of the signed checkpoints: what catches a truncated record.

The operator holds the signing key, so checkpoints stored in the platform's database
prove nothing about its tail: delete the last events, delete their checkpoints, sign the
shorter head. What the operator cannot rewrite is the file the authority downloaded
earlier (``GET /api/audit/checkpoints``, ``/authority/checkpoints``): each checkpoint in
it names an event and its hash, and the record must still hold that event with that hash.

The file is JSON Lines, one checkpoint per line with its public key and the key's
fingerprint; it is read back as JSON Lines, a JSON array, or one checkpoint object (what
``sandbox audit checkpoint --out`` writes), so downloads can simply be concatenated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.audit.checkpoint import SignedCheckpoint, fingerprint_hex, signed
from sandbox.audit.models import AuditCheckpoint
from sandbox.audit.verify import Problem, VerifyResult
from sandbox.errors import ValidationFailed

RULE = "audit-checkpoints-file"


def authority_entry(checkpoint: SignedCheckpoint) -> dict[str, Any]:
    """One checkpoint as the authority keeps it: signed fields, key and key fingerprint."""
    return {**checkpoint.to_json(), "key_fingerprint": fingerprint_hex(checkpoint.public_key)}


def checkpoints_after(session: Session, public_key: str, after: int = 0) -> list[SignedCheckpoint]:
    """The stored checkpoints past ``seq`` ``after``, oldest first, with the platform's key:
    what a download hands over (``after`` lets the authority fetch only new ones)."""
    rows = session.scalars(
        select(AuditCheckpoint).where(AuditCheckpoint.seq > after).order_by(AuditCheckpoint.seq)
    )
    return [signed(row, public_key) for row in rows]


def checkpoints_jsonl(checkpoints: Iterable[SignedCheckpoint]) -> str:
    """The JSON Lines text of a download: one checkpoint per line, in the order given."""
    return "".join(
        json.dumps(authority_entry(checkpoint), sort_keys=True) + "\n" for checkpoint in checkpoints
    )


def read_checkpoints(path: Path) -> list[SignedCheckpoint]:
    """Every checkpoint in the authority's file; refused, naming the line, if malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ValidationFailed(
            f"{path}: not a readable checkpoints file ({exc})", rule=RULE
        ) from exc
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, list):
        items = [(f"{path}[{i}]", item) for i, item in enumerate(whole)]
    elif isinstance(whole, dict):
        items = [(str(path), whole)]
    else:
        items = list(_json_lines(path, text))
    if not items:
        raise ValidationFailed(f"{path}: holds no checkpoint", rule=RULE)
    return [_entry(item, source=source) for source, item in items]


def split_by_key(
    checkpoints: Iterable[SignedCheckpoint], platform_fingerprint: str
) -> tuple[list[SignedCheckpoint], list[Problem]]:
    """The checkpoints signed by the platform's key, and a problem for every other one:
    a checkpoint that verifies under some other key proves nothing about this record."""
    kept, problems = [], []
    for checkpoint in checkpoints:
        try:
            found = fingerprint_hex(checkpoint.public_key)
        except ValueError:
            found = "(a public_key that is not hex)"
        if found == platform_fingerprint:
            kept.append(checkpoint)
        else:
            problems.append(
                Problem(
                    checkpoint.seq,
                    "checkpoint",
                    f"the authority's checkpoint at seq {checkpoint.seq} is signed by key "
                    f"{found}, not the platform's key {platform_fingerprint}",
                )
            )
    return kept, problems


def with_problems(result: VerifyResult, problems: list[Problem]) -> VerifyResult:
    """``result`` with more problems, in ``seq`` order."""
    merged = sorted([*result.problems, *problems], key=lambda problem: problem.seq)
    return VerifyResult(ok=not merged, count=result.count, problems=merged)


def platform_fingerprint(text: str) -> str:
    """A key named as ``sha256:<hex>`` (as ``/keys`` shows it) or as the raw public key in
    hex (as checkpoints carry it), as its fingerprint."""
    value = text.strip().lower()
    digits = value.removeprefix("sha256:")
    if len(digits) == 64 and all(c in "0123456789abcdef" for c in digits):
        return value if value.startswith("sha256:") else fingerprint_hex(digits)
    raise ValidationFailed(
        f"{text!r} names no key: give sha256:<64 hex digits> or the 64-hex-digit public key",
        rule="audit-key",
    )


def _json_lines(path: Path, text: str) -> Iterable[tuple[str, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{number}", json.loads(line)
        except ValueError as exc:
            raise ValidationFailed(
                f"{path}:{number}: not a JSON checkpoint ({exc.args[0]})", rule=RULE
            ) from exc


def _entry(item: Any, *, source: str) -> SignedCheckpoint:
    """A checkpoint, its ``key_fingerprint`` (when given) checked against its key."""
    stated = None
    if isinstance(item, Mapping) and "key_fingerprint" in item:
        item = dict(item)
        stated = item.pop("key_fingerprint")
    try:
        checkpoint = SignedCheckpoint.from_json(item, source=source)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, rule=RULE) from exc
    if stated is not None:
        try:
            actual = fingerprint_hex(checkpoint.public_key)
        except ValueError:
            actual = "(a public_key that is not hex)"
        if stated != actual:
            raise ValidationFailed(
                f"{source}: key_fingerprint {stated!r} is not the fingerprint of the "
                f"checkpoint's public_key ({actual})",
                rule=RULE,
            )
    return checkpoint
