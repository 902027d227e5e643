"""The preview budget of each dataset, what was charged to it, and the stored previews."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from sandbox.db.base import Base, utcnow


class PreviewBudget(Base):
    """The (ε, δ) a provider allows synthetic previews of one dataset to spend, in all.

    Amounts are ledger units (see :mod:`export_review.ledger`): ε in micro-units,
    δ in atto-units. ``max_contributions`` bounds the rows one entity adds to a
    preview's marginals; the provider sets it, it is never learnt from the data.
    """

    __tablename__ = "preview_budgets"

    dataset: Mapped[str] = mapped_column(String(63), primary_key=True)
    epsilon_total: Mapped[int] = mapped_column(BigInteger)
    delta_total: Mapped[int] = mapped_column(BigInteger)
    epsilon_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    delta_spent: Mapped[int] = mapped_column(BigInteger, default=0)
    max_contributions: Mapped[int] = mapped_column(Integer, default=1)
    set_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PreviewCharge(Base):
    """One preview generation paid for, committed before its noise was drawn."""

    __tablename__ = "preview_charges"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    dataset: Mapped[str] = mapped_column(ForeignKey("preview_budgets.dataset"), index=True)
    dataset_version: Mapped[int]
    epsilon: Mapped[int] = mapped_column(BigInteger)
    delta: Mapped[int] = mapped_column(BigInteger)
    mechanisms: Mapped[str] = mapped_column(Text, default="")
    charged_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyntheticPreview(Base):
    """A released preview: the noisy marginals and the synthetic sample drawn from them.

    Stored once per generation for one dataset version; every download serves
    this row, so downloading never spends budget again.
    """

    __tablename__ = "synthetic_previews"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    charge_id: Mapped[int] = mapped_column(ForeignKey("preview_charges.id"), unique=True)
    dataset: Mapped[str] = mapped_column(String(63), index=True)
    dataset_version: Mapped[int]
    epsilon: Mapped[int] = mapped_column(BigInteger)
    delta: Mapped[int] = mapped_column(BigInteger)
    max_contributions: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    #: The DP release itself: per column, how it was released and its noisy counts.
    marginals: Mapped[dict] = mapped_column(JSON)
    #: The synthetic sample as CSV text (label column included, comment line not).
    sample_csv: Mapped[str] = mapped_column(Text)
    sample_sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
