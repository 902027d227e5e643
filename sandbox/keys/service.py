"""What an operator does to the key store, with its audit event.

Rotation is the operator's one move on keys: it never shows a key, and the record says
which master key replaced which, and how many data keys it now wraps (R7).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.audit.record import record
from sandbox.keys.store import Rotation, key_store
from sandbox.permissions import require_role
from sandbox.settings import Settings


def rotate_master_key(*, session: Session, settings: Settings, actor: User) -> Rotation:
    """Wrap every data key under a new master key, destroy the old ones, record ``key.rotate``."""
    require_role(actor, Role.operator)
    done = key_store(settings).rotate()
    record(
        session,
        actor=actor.username,
        action="key.rotate",
        object=f"master-key:{done.master}",
        details={
            "algorithm": done.algorithm,
            "destroyed": done.destroyed,
            "rewrapped": done.rewrapped,
        },
    )
    return done
