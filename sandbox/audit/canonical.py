"""One byte-exact encoding of events, so a hash means the same on every database.

Canonical JSON here is: keys sorted, no whitespace (``separators=(",", ":")``),
non-ASCII characters kept as UTF-8 (``ensure_ascii=False``). Values are
normalised first so that only JSON's own types reach the encoder:

* ``str``, ``int``, ``bool``, ``None`` as themselves; tuples as lists;
* finite ``float`` as Python's shortest round-trip repr (``0.1`` stays ``0.1``);
  NaN and infinities are refused, since JSON has no spelling for them;
* ``Decimal`` as its string (``Decimal("1.50")`` → ``"1.50"``), so no amount is
  ever rounded through binary floating point;
* ``datetime`` as an instant in UTC, ``2026-01-02T03:04:05.000006Z`` (naive
  values are taken to be UTC, which is what the platform stores); ``date`` as
  ``2026-01-02``;
* ``StrEnum``/``IntEnum`` members by their value.

Dictionary keys must be strings. Anything else is refused with the path of the
offending value, rather than silently stringified into something a verifier
could not reproduce.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sandbox.errors import ValidationFailed

#: The predecessor of the first event.
GENESIS_HASH = "0" * 64


def format_instant(moment: datetime) -> str:
    """An instant as ISO-8601 UTC text with microseconds and ``Z``.

    Fixed width and stored as text, so the bytes are the same on SQLite and
    PostgreSQL and sort in time order.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value`` (see the module docstring)."""
    return _dumps(_normalise(value, "$"))


def canonical_bytes(value: Any) -> bytes:
    """The canonical JSON of ``value`` as UTF-8 bytes: what gets hashed and signed."""
    return canonical_json(value).encode("utf-8")


def is_canonical(text: str) -> bool:
    """Whether ``text`` is exactly the canonical JSON of what it decodes to."""
    try:
        return _dumps(json.loads(text)) == text
    except (ValueError, RecursionError):
        return False


def event_hash(
    *, prev_hash: str, seq: int, at: str, actor: str, action: str, object: str, details: str
) -> str:
    """``sha256(prev_hash || canonical({seq, at, actor, action, object, details}))`` in hex.

    ``details`` is given as its canonical JSON text (as stored), and spliced in
    unchanged: the payload's keys sort as action, actor, at, details, object,
    seq, so this is the canonical text of the whole object without decoding
    details again. ``prev_hash`` enters as its 64 ASCII hex characters, so each
    hash commits to every event before it.
    """
    head = _dumps({"action": action, "actor": actor, "at": at})
    tail = _dumps({"object": object, "seq": seq})
    payload = f'{head[:-1]},"details":{details},{tail[1:]}'
    return hashlib.sha256(prev_hash.encode("ascii") + payload.encode("utf-8")).hexdigest()


def _dumps(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _normalise(value: Any, path: str) -> Any:
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, Enum):
        return _normalise(value.value, path)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationFailed(f"{path} is {value!r}; the record only holds finite numbers")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationFailed(f"{path} is {value!r}; the record only holds finite numbers")
        return str(value)
    if isinstance(value, datetime):
        return format_instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise ValidationFailed(
                    f"{path} has key {key!r} of type {type(key).__name__}; keys must be strings"
                )
        return {key: _normalise(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_normalise(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise ValidationFailed(
        f"{path} is a {type(value).__name__}; the record holds str, int, float, bool, None, "
        "Decimal, date, datetime, lists and dicts with string keys"
    )
