"""Receipt codes: how someone without an account reads the answer to what they sent.

The code is shown once, when the case is submitted; only its SHA-256 is kept,
so the database alone does not let anyone read another person's answer.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.errors import NotFound

T = TypeVar("T", bound=Any)


def new_receipt() -> tuple[str, str]:
    """A fresh code and the hash to store."""
    code = secrets.token_urlsafe(12)
    return code, receipt_hash(code)


def receipt_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def find_by_receipt(session: Session, model: type[T], code: str) -> T:
    """The case ``code`` was issued for; a wrong code reveals nothing."""
    found = session.scalar(select(model).where(model.receipt_hash == receipt_hash(code)))
    if found is None:
        raise NotFound("no case has this receipt code; check it and try again", rule="receipt")
    return found
