"""Re-walking the chain, and naming every event that is not as it was recorded.

One code path checks the database and an exported file alike:
:func:`verify_events` takes any iterable of stored event dicts in ``seq``
order, so the authority verifies an export offline with exactly the code the
platform runs. Memory stays bounded however long the record is: events are
streamed, and only a bounded window of recent hashes is remembered.

What each kind of problem means:

``gap``
    ``seq`` numbers are missing: events were deleted.
``edited``
    the event's content no longer gives its stored hash (an edited actor,
    action, object, details, time or link).
``reordered``
    the event's content is intact but belongs at another ``seq``: events were
    swapped, moved, or something was inserted before it.
``broken-link``
    the event is intact but its ``prev_hash`` is not the hash of the event
    before it: that event was rewritten with a recomputed hash, or events
    between them were removed and renumbered.
``checkpoint``
    a signed checkpoint does not verify, does not match the event at its
    ``seq``, or points past the end of the record. A consistently rewritten
    chain shows up only here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.audit.canonical import GENESIS_HASH, event_hash, is_canonical
from sandbox.audit.checkpoint import SignedCheckpoint
from sandbox.audit.models import AuditEvent

#: Events fetched from the database per query.
BATCH_SIZE = 5000
#: How many recent hashes (and unplaced events) are remembered to recognise a
#: reordered event; beyond this distance a moved event is reported as edited.
WINDOW = 10_000


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str
    message: str


@dataclass
class VerifyResult:
    ok: bool
    count: int
    problems: list[Problem] = field(default_factory=list)


def verify_chain(session: Session, checkpoints: Iterable[SignedCheckpoint] = ()) -> VerifyResult:
    """Verify the record in the database, and each given checkpoint against it."""
    return verify_events(stream_events(session), checkpoints)


def verify_events(
    events: Iterable[Mapping[str, Any]], checkpoints: Iterable[SignedCheckpoint] = ()
) -> VerifyResult:
    """Verify stored event dicts (``AuditEvent.as_dict()`` form) given in ``seq`` order."""
    walk = _Walk(checkpoints)
    for event in events:
        walk.step(event)
    return walk.finish()


def stream_events(session: Session, upto: int | None = None) -> Iterator[dict[str, Any]]:
    """Stored events as dicts in ``seq`` order (up to ``upto``), a batch per query.

    Plain rows, not ORM objects, so nothing accumulates in the session.
    """
    table = AuditEvent.__table__
    after = 0
    while True:
        query = select(table).where(table.c.seq > after)
        if upto is not None:
            query = query.where(table.c.seq <= upto)
        batch = session.execute(query.order_by(table.c.seq).limit(BATCH_SIZE)).mappings().all()
        if not batch:
            return
        for row in batch:
            yield dict(row)
        after = batch[-1]["seq"]


class _Walk:
    """The state of one pass over the chain."""

    def __init__(self, checkpoints: Iterable[SignedCheckpoint]) -> None:
        self.problems: list[Problem] = []
        self.count = 0
        self.expected_seq = 1
        self.last_hash = GENESIS_HASH
        self.last_ok = True
        #: stored hash -> the seq its event verified at, for recent events.
        self.placed: OrderedDict[str, int] = OrderedDict()
        #: prev_hash -> event whose content did not verify and whose predecessor is
        #: not yet seen; a later event may turn out to be that predecessor.
        self.unplaced: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
        self.checkpoints: dict[int, list[SignedCheckpoint]] = {}
        for checkpoint in checkpoints:
            problem = checkpoint.signature_problem()
            if problem:
                self._report(checkpoint.seq, "checkpoint", problem)
            else:
                self.checkpoints.setdefault(checkpoint.seq, []).append(checkpoint)

    def step(self, event: Mapping[str, Any]) -> None:
        self.count += 1
        seq = event["seq"]
        gap = seq != self.expected_seq
        if gap:
            first, last = self.expected_seq, seq - 1
            missing = (
                None if first > last else f"seq {first}" + (f"..{last}" if last > first else "")
            )
            self._report(
                seq,
                "gap",
                f"{missing} missing before seq {seq}: events were deleted"
                if missing
                else f"seq {seq} follows seq {self.expected_seq - 1}: the record is out of order",
            )
        content_ok = _hash_at(event, seq) == event["hash"]
        if content_ok:
            self._place(event, seq)
        else:
            self._diagnose(event)
        if content_ok and not gap and self.last_ok and event["prev_hash"] != self.last_hash:
            self._report(
                seq,
                "broken-link",
                f"seq {seq}'s prev_hash is not the hash of seq {seq - 1}: seq {seq - 1} was "
                "rewritten with a recomputed hash, or events were removed and renumbered",
            )
        for checkpoint in self.checkpoints.pop(seq, ()):
            if checkpoint.hash != event["hash"]:
                self._report(
                    seq,
                    "checkpoint",
                    f"the checkpoint signed at {checkpoint.at} says seq {seq} has hash "
                    f"{checkpoint.hash}, the record says {event['hash']}: the record was "
                    "rewritten up to here",
                )
        self.expected_seq = max(self.expected_seq, seq + 1)
        self.last_hash = event["hash"]
        self.last_ok = content_ok and not gap

    def finish(self) -> VerifyResult:
        for event in self.unplaced.values():
            self._report_edited(event)
        end = self.expected_seq - 1
        for seq, checkpoints in self.checkpoints.items():
            missing = f"seq {end + 1}" + (f"..{seq}" if seq > end + 1 else "")
            for checkpoint in checkpoints:
                self._report(
                    seq,
                    "checkpoint",
                    f"the checkpoint signed at {checkpoint.at} covers seq {seq}, but the "
                    f"record ends at seq {end}: {missing} missing, events were removed",
                )
        self.problems.sort(key=lambda problem: problem.seq)
        return VerifyResult(ok=not self.problems, count=self.count, problems=self.problems)

    def _diagnose(self, event: Mapping[str, Any]) -> None:
        """Tell an edited event from an intact one that sits at the wrong ``seq``."""
        predecessor = self.placed.get(event["prev_hash"])
        if predecessor is None and event["prev_hash"] == GENESIS_HASH:
            predecessor = 0
        if predecessor is None:
            self._remember(self.unplaced, event["prev_hash"], event, on_overflow=True)
        elif predecessor + 1 != event["seq"] and _hash_at(event, predecessor + 1) == event["hash"]:
            self._report_moved(event, predecessor + 1)
        else:
            self._report_edited(event)

    def _place(self, event: Mapping[str, Any], at_seq: int) -> None:
        """Remember where ``event`` verified; place any event waiting for it."""
        while True:
            self._remember(self.placed, event["hash"], at_seq)
            waiting = self.unplaced.pop(event["hash"], None)
            if waiting is None:
                return
            if _hash_at(waiting, at_seq + 1) != waiting["hash"]:
                self._report_edited(waiting)
                return
            self._report(
                waiting["seq"],
                "reordered",
                f"seq {waiting['seq']} holds the event recorded as seq {at_seq + 1}: events "
                "were reordered, or inserted or deleted before it",
            )
            event, at_seq = waiting, at_seq + 1

    def _report_moved(self, event: Mapping[str, Any], original_seq: int) -> None:
        self._report(
            event["seq"],
            "reordered",
            f"seq {event['seq']} holds the event recorded as seq {original_seq}: events "
            "were reordered, or inserted or deleted before it",
        )
        self._place(event, original_seq)

    def _report_edited(self, event: Mapping[str, Any]) -> None:
        self._report(
            event["seq"],
            "edited",
            f"seq {event['seq']} does not match its hash: its actor, action, object, "
            "details, time or prev_hash was changed after it was recorded",
        )

    def _remember(
        self, memory: OrderedDict, key: str, value: Any, on_overflow: bool = False
    ) -> None:
        memory[key] = value
        if len(memory) > WINDOW:
            _, dropped = memory.popitem(last=False)
            if on_overflow:
                self._report_edited(dropped)

    def _report(self, seq: int, kind: str, message: str) -> None:
        self.problems.append(Problem(seq, kind, message))


def _hash_at(event: Mapping[str, Any], seq: int) -> str | None:
    """The hash ``event``'s content would have at ``seq``; ``None`` if it is malformed.

    Stored details must be canonical JSON text, so a change of formatting alone
    is caught too.
    """
    if not is_canonical(event["details"]):
        return None
    try:
        return event_hash(
            prev_hash=event["prev_hash"],
            seq=seq,
            at=event["at"],
            actor=event["actor"],
            action=event["action"],
            object=event["object"],
            details=event["details"],
        )
    except (TypeError, UnicodeError):
        return None
