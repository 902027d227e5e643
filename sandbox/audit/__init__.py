"""The tamper-evident record of opening and use (R7; Shanghai Art.19–20, 44).

Every change the platform makes is appended, in the same transaction, as one
event of a hash chain (:mod:`.record`); :func:`.advance.advance` commits a change
with its events and links them into the chain before answering: on PostgreSQL through an
outbox, just after the commit (:mod:`.outbox`), on SQLite in the commit itself, with fault
points a test kills the process at (:mod:`.faults`).
:mod:`.verify` re-walks the chain and
names each event that was edited, deleted, reordered or inserted; signed
checkpoints (:mod:`.checkpoint`) that the authority keeps catch an operator who
rewrites the whole chain consistently, and the authority's copy of them
(:mod:`.authority_copy`), signed often enough (:mod:`.anchoring`), one who deletes its
tail and re-signs; :mod:`.export` hands the record to the
authority as a file that the same verifier checks offline.
"""
