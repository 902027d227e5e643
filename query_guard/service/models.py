"""The query log: one row per query the service answered or refused.

The audit record holds the authoritative, hash-chained account of every query
(Shanghai Art.19-20, 44); this table is its operational index. It counts the
rows returned per agreement (THREAT_MODEL: in record mode every row returned is
counted against the agreement) and keeps the query's shape so the early
warnings can compare a query with the ones before it (R12). It never holds
query text or data values.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow


class QueryLog(Base):
    __tablename__ = "query_log"
    __table_args__ = (
        Index("ix_query_log_agreement_at", "agreement_id", "at"),
        Index("ix_query_log_agreement_shape", "agreement_id", "shape", "terms_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(64))
    researcher: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The guard's decision (allow, rewrite, block), or ``error`` when the engine failed.
    action: Mapped[str] = mapped_column(String(8))
    #: The agreement's mode when the query ran (aggregate or record).
    mode: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    duration_ms: Mapped[int] = mapped_column(default=0)
    #: Keyed hash of the query with its WHERE clauses taken out (None when unparseable).
    shape: Mapped[str | None] = mapped_column(String(64), default=None)
    #: Keyed hashes of the WHERE clauses' conjuncts, sorted.
    where_terms: Mapped[list] = mapped_column(JSON, default=list)
    #: Digest of ``where_terms`` (:func:`query_guard.service.fingerprint.terms_key`), so
    #: that queries with the same conditions are one row to the differencing warning.
    terms_key: Mapped[str | None] = mapped_column(String(64), default=None)
    #: The audit event that records this query, in rows logged before the outbox (revision
    #: 0003); since then the event is linked after the commit and names this row instead
    #: (``details.query_log``).
    audit_seq: Mapped[int | None] = mapped_column(BigInteger, default=None)
