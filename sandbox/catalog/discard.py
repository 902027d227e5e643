"""What a rejected or withdrawn catalogue proposal leaves behind: nothing.

A proposed version's Parquet file is written when the provider publishes, before
the authority has looked at it. When the proposal is rejected or withdrawn, that
version never becomes the dataset's data, and data the authority did not approve
for the catalogue (Shanghai Art.12; Wuxi Art.11-12) should not stay on the
platform: its file is deleted.

No column marks the row: a version is discarded exactly when a rejected or
withdrawn :class:`CatalogReview` names it (:func:`discarded_version_ids`). A
proposed version belongs to one review only, and was never published, so
provisioning, previews and the catalogue (which read published versions) never
reach it; the backup leaves it out by the same query.

The deletion follows the transaction that records the decision, so the file and
the database never disagree in the direction that matters:

1. after the status change is flushed, the file is renamed aside (same folder,
   hidden name). If that fails the refusal rolls the whole decision back: the
   review is still under review and its file still there;
2. when the transaction commits, the aside file is deleted;
3. when it rolls back instead (a later error, a failed commit, a session closed
   without committing), the file is renamed back, so a review still under way
   keeps its data.

Only a failure of step 2, after the commit, can leave something behind: a hidden
``.vN.parquet.discarded`` file that no row points at. It is logged; deleting that
file by hand is safe, since nothing reads it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import Select, event, select
from sqlalchemy.orm import Session, SessionTransaction

from sandbox.catalog.models import CatalogReview, DatasetVersion, ReviewStatus
from sandbox.errors import SandboxError

log = logging.getLogger("sandbox.catalog")

#: A review closed with one of these never publishes its version: the file goes.
DISCARDING: frozenset[ReviewStatus] = frozenset({ReviewStatus.rejected, ReviewStatus.withdrawn})


def discarded_version_ids() -> Select[tuple[int]]:
    """The ids of versions proposed with a rejected or withdrawn review (their file is gone)."""
    return select(CatalogReview.version_id).where(
        CatalogReview.status.in_(DISCARDING), CatalogReview.version_id.is_not(None)
    )


def is_discarded(session: Session, version: DatasetVersion) -> bool:
    """Whether ``version``'s file was deleted with its rejected or withdrawn proposal."""
    return (
        session.scalar(discarded_version_ids().where(CatalogReview.version_id == version.id))
        is not None
    )


def discard_proposed_version(
    session: Session, review: CatalogReview, *, article: str
) -> str | None:
    """Delete the Parquet file of ``review``'s proposed version when the transaction commits.

    Call it after the review's new status is flushed. Returns the file's name, or None
    when the review proposed no data (a class change alone) or the file is already gone.
    Refuses (``catalog-review-discard``) when the file cannot be moved aside; the caller's
    transaction then rolls back and nothing has changed.
    """
    if review.version_id is None:
        return None
    version = session.get_one(DatasetVersion, review.version_id)
    path = Path(version.path)
    aside = path.with_name(f".{path.name}.discarded")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SandboxError(
            f"catalogue review {review.id}: the proposed version v{version.version}'s file "
            f"could not be removed ({exc.strerror}); nothing was changed, try again",
            rule="catalog-review-discard",
            article=article,
        ) from exc
    _settle_with_transaction(session, path, aside)
    return path.name


def _settle_with_transaction(session: Session, path: Path, aside: Path) -> None:
    """Delete ``aside`` when the outermost transaction commits; otherwise put it back."""
    state = {"committed": False, "settled": False}

    def committed(sess: Session) -> None:
        if state["settled"] or sess.in_nested_transaction():
            return
        state["committed"] = True
        try:
            aside.unlink(missing_ok=True)
        except OSError as exc:  # committed already: report, never undo the decision
            log.warning("discarded version file %s was not deleted: %s", aside, exc)

    def ended(sess: Session, tx: SessionTransaction) -> None:
        if state["settled"] or tx.parent is not None:
            return
        state["settled"] = True
        if not state["committed"] and aside.exists():
            os.replace(aside, path)

    event.listen(session, "after_commit", committed)
    event.listen(session, "after_transaction_end", ended)
