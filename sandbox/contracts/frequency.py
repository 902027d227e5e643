"""Update frequencies and when a dataset published at one becomes stale (R2, R14)."""

from __future__ import annotations

from datetime import timedelta

#: Frequency -> how long after a version was published the next one is due.
FREQUENCIES: dict[str, timedelta | None] = {
    "realtime": timedelta(days=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=31),
    "quarterly": timedelta(days=92),
    "semiannual": timedelta(days=183),
    "annual": timedelta(days=366),
    "irregular": None,
    "static": None,
}


def due_after(frequency: str) -> timedelta | None:
    """How long a published version stays current; ``None`` means it never goes stale."""
    return FREQUENCIES[frequency]
