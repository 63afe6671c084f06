"""Ledger tables. Amounts are positive integer fen with an explicit side.

The database guards them (``billing/ledger/ddl.py``, installed by migration 0010):
postings and posted entries are never updated or deleted, an entry is checked to
balance and to stay inside one ledger when it is posted, account balances follow the
postings, and a no-overdraft account's balance can never go below zero.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Index
from sqlmodel import Field, SQLModel

from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class Ledger(StrEnum):
    subsidy = "subsidy"  # public money: fund pools, subsidies, payouts
    market = "market"  # fees paid by employers through Stripe


class Side(StrEnum):
    debit = "debit"
    credit = "credit"


class EntryStatus(StrEnum):
    open = "open"  # postings being added; counts nowhere
    posted = "posted"  # balanced and applied to account balances; immutable


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_account"
    __table_args__ = (
        CheckConstraint("ledger IN ('subsidy', 'market')", name="ck_ledger_account_ledger"),
        CheckConstraint("normal_side IN ('debit', 'credit')", name="ck_ledger_account_side"),
        CheckConstraint("currency = 'cny'", name="ck_ledger_account_currency"),
        # The no-overdraft rule held by the database itself: the balance column is
        # maintained by the posting trigger, so no writer can take it below zero.
        CheckConstraint("NOT no_overdraft OR balance_fen >= 0", name="ck_ledger_account_overdraft"),
    )

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=96, unique=True)  # e.g. pool:500103:employment_subsidy:available
    ledger: str = Field(max_length=8)
    kind: str = Field(max_length=32, index=True)
    name: str = Field(max_length=128)
    normal_side: str = Field(max_length=8)
    no_overdraft: bool = False
    currency: str = Field(default="cny", max_length=3)
    district_code: str | None = Field(default=None, max_length=6, index=True)
    source: str | None = Field(default=None, max_length=40)
    broker_id: int | None = Field(default=None, foreign_key="broker.id", index=True)
    # Signed by the normal side; written only by the database trigger on posting.
    balance_fen: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entry"
    __table_args__ = (
        CheckConstraint("ledger IN ('subsidy', 'market')", name="ck_ledger_entry_ledger"),
        CheckConstraint("status IN ('open', 'posted')", name="ck_ledger_entry_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=160, unique=True)
    content_hash: str = Field(max_length=64)
    ledger: str = Field(max_length=8)
    kind: str = Field(max_length=32, index=True)
    memo: str = Field(default="", max_length=500)
    # A correcting entry names the one it undoes; an entry is reversed at most once.
    reversal_of_id: int | None = Field(default=None, foreign_key="ledger_entry.id", unique=True)
    status: str = Field(default=EntryStatus.open, max_length=8)
    effective_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")


class LedgerPosting(SQLModel, table=True):
    __tablename__ = "ledger_posting"
    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="ck_ledger_posting_amount"),
        CheckConstraint("side IN ('debit', 'credit')", name="ck_ledger_posting_side"),
        # Balances as of a date and the reconciliation read (account, time) ranges;
        # side, amount and entry ride along so the table itself is not visited.
        Index(
            "ix_ledger_posting_account_at_cover",
            "account_id",
            "effective_at",
            "side",
            "amount_fen",
            "entry_id",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="ledger_entry.id", index=True)
    account_id: int = Field(foreign_key="ledger_account.id")
    side: str = Field(max_length=8)
    amount_fen: int = Field(sa_type=BigInteger)
    # The entry's effective time, copied so balances as of a date read one index.
    effective_at: datetime = Field(sa_type=UTCDateTime)


class AccountPublic(SQLModel):
    id: int
    code: str
    ledger: str
    kind: str
    name: str
    balance_fen: int


class PostingPublic(SQLModel):
    id: int
    entry_id: int
    entry_kind: str
    memo: str
    side: str
    amount_fen: int
    effective_at: datetime
    reversal_of_id: int | None
