"""Billing tables beside the ledger: fund pools, appropriations and transfers
(maker-checker), subsidies, payout batches, brokers' bank accounts, market fees and
the Stripe events seen. Amounts are integer fen; every money movement is a ledger
entry these rows point to."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

import marketplace.models  # noqa: F401  (the tables these refer to)
from marketplace.clock import utcnow
from marketplace.db import UTCDateTime


class FundPool(SQLModel, table=True):
    """One per district and funding source; its money lives in two no-overdraft
    accounts: ``available`` and ``reserved`` (earmarked for subsidies not yet paid)."""

    __tablename__ = "fund_pool"
    __table_args__ = (UniqueConstraint("district_code", "source"),)

    id: int | None = Field(default=None, primary_key=True)
    district_code: str = Field(foreign_key="region.code", max_length=12, index=True)
    source: str = Field(max_length=40)
    available_account_id: int = Field(foreign_key="ledger_account.id")
    reserved_account_id: int = Field(foreign_key="ledger_account.id")
    appropriated_account_id: int = Field(foreign_key="ledger_account.id")
    paid_account_id: int = Field(foreign_key="ledger_account.id")
    reversed_account_id: int = Field(foreign_key="ledger_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RequestStatus(StrEnum):
    pending = "pending"  # waits for a second finance user
    posted = "posted"
    rejected = "rejected"


class Appropriation(SQLModel, table=True):
    """拨款: money arriving in a pool under a finance document number (文号)."""

    __tablename__ = "fund_appropriation"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="ck_fund_appropriation_amount"),)

    id: int | None = Field(default=None, primary_key=True)
    pool_id: int = Field(foreign_key="fund_pool.id", index=True)
    amount_fen: int = Field(sa_type=BigInteger)
    document_no: str = Field(max_length=64)
    document_date: date
    note: str = Field(default="", max_length=500)
    status: str = Field(default=RequestStatus.posted, max_length=16)
    idempotency_key: str = Field(max_length=160, unique=True)
    request_hash: str = Field(max_length=64)
    requested_by: int | None = Field(default=None, foreign_key="user_account.id")
    approved_by: int | None = Field(default=None, foreign_key="user_account.id")
    entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PoolTransfer(SQLModel, table=True):
    """调剂: money moved between two pools; always needs a second finance user."""

    __tablename__ = "fund_transfer"
    __table_args__ = (CheckConstraint("amount_fen > 0", name="ck_fund_transfer_amount"),)

    id: int | None = Field(default=None, primary_key=True)
    from_pool_id: int = Field(foreign_key="fund_pool.id", index=True)
    to_pool_id: int = Field(foreign_key="fund_pool.id", index=True)
    amount_fen: int = Field(sa_type=BigInteger)
    document_no: str = Field(max_length=64)
    note: str = Field(default="", max_length=500)
    status: str = Field(default=RequestStatus.pending, max_length=16)
    idempotency_key: str = Field(max_length=160, unique=True)
    request_hash: str = Field(max_length=64)
    requested_by: int | None = Field(default=None, foreign_key="user_account.id")
    approved_by: int | None = Field(default=None, foreign_key="user_account.id")
    entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SubsidyStatus(StrEnum):
    awaiting_funds = "awaiting_funds"  # approved, the pool lacks the money: queued
    pending = "pending"  # reserved from the pool, not yet payable
    payable = "payable"  # reserved and payable: the next payout batch takes it
    paid = "paid"
    voided = "voided"  # reversed before payment: reservation released
    reversed = "reversed"  # reversed after payment: a receivable the next payout nets
    covered = "covered"  # the broker's public-welfare post pays for this task type


SUBSIDY_LABELS = {
    SubsidyStatus.awaiting_funds: "待拨款",
    SubsidyStatus.pending: "已预留",
    SubsidyStatus.payable: "待支付",
    SubsidyStatus.paid: "已支付",
    SubsidyStatus.voided: "已作废",
    SubsidyStatus.reversed: "已追回",
    SubsidyStatus.covered: "公益性岗位已覆盖",
}


class Subsidy(SQLModel, table=True):
    __tablename__ = "subsidy"
    __table_args__ = (
        UniqueConstraint("origin_key"),
        Index("ix_subsidy_pool_status", "pool_id", "status", "approved_at"),
        Index("ix_subsidy_broker_status", "broker_id", "status"),
        CheckConstraint("amount_fen >= 0", name="ck_subsidy_amount"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # task:<submission_id> or welfare:<broker_id>:<YYYY-MM>: one subsidy per origin.
    origin_key: str = Field(max_length=96)
    kind: str = Field(default="task", max_length=16)  # task | welfare_post
    event_id: int | None = Field(default=None, foreign_key="outbox_event.id")
    task_id: int | None = None
    submission_id: int | None = None
    task_type_code: str | None = Field(default=None, max_length=64)
    period: str | None = Field(default=None, max_length=7)  # welfare post month
    broker_id: int = Field(foreign_key="broker.id")
    pool_id: int = Field(foreign_key="fund_pool.id")
    district_code: str = Field(max_length=6)
    source: str = Field(max_length=40)
    quantity: int = 0
    rate_fen: int = Field(default=0, sa_type=BigInteger)
    amount_fen: int = Field(sa_type=BigInteger)
    status: str = Field(max_length=16)
    approved_at: datetime = Field(sa_type=UTCDateTime)
    reserved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    payable_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    voided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reason: str | None = Field(default=None, max_length=500)
    batch_id: int | None = Field(default=None, foreign_key="payout_batch.id", index=True)
    reserve_entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
    release_entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
    pay_entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
    receivable_entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class BatchStatus(StrEnum):
    draft = "draft"  # built, under review
    approved = "approved"  # a second finance user approved
    executing = "executing"
    executed = "executed"


class PayoutBatch(SQLModel, table=True):
    __tablename__ = "payout_batch"
    __table_args__ = (UniqueConstraint("district_code", "period", "sequence"),)

    id: int | None = Field(default=None, primary_key=True)
    district_code: str = Field(max_length=6, index=True)
    period: str = Field(max_length=7)  # YYYY-MM: subsidies approved up to its end
    sequence: int = 1
    status: str = Field(default=BatchStatus.draft, max_length=16)
    mode: str | None = Field(default=None, max_length=8)  # online | offline
    idempotency_key: str = Field(max_length=160, unique=True)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    approved_by: int | None = Field(default=None, foreign_key="user_account.id")
    executed_by: int | None = Field(default=None, foreign_key="user_account.id")
    gross_fen: int = Field(default=0, sa_type=BigInteger)
    netted_fen: int = Field(default=0, sa_type=BigInteger)
    net_fen: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    approved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    executed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PayoutLine(SQLModel, table=True):
    """One broker in a batch: gross payable, receivables netted, the transfer."""

    __tablename__ = "payout_line"
    __table_args__ = (UniqueConstraint("batch_id", "broker_id"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="payout_batch.id", index=True)
    broker_id: int = Field(foreign_key="broker.id")
    gross_fen: int = Field(sa_type=BigInteger)
    netted_fen: int = Field(default=0, sa_type=BigInteger)
    net_fen: int = Field(sa_type=BigInteger)
    status: str = Field(default="pending", max_length=16)  # pending | paid
    reference: str | None = Field(default=None, max_length=128)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BrokerBankAccount(SQLModel, table=True):
    """A broker's bank account for payouts: personal data, stored encrypted."""

    __tablename__ = "broker_bank_account"

    id: int | None = Field(default=None, primary_key=True)
    broker_id: int = Field(foreign_key="broker.id", unique=True)
    account_name: str = Field(max_length=64)
    bank_name: str = Field(max_length=64)
    account_no_enc: str = Field(max_length=255)
    account_no_last4: str = Field(max_length=4)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: int | None = Field(default=None, foreign_key="user_account.id")


class MarketFee(SQLModel, table=True):
    """A placement fee an employer owes; booked only when Stripe says it succeeded."""

    __tablename__ = "market_fee"

    id: int | None = Field(default=None, primary_key=True)
    placement_id: int = Field(unique=True)
    event_id: int | None = Field(default=None, foreign_key="outbox_event.id")
    job_id: int | None = None
    organization_id: int | None = None
    broker_id: int | None = Field(default=None, foreign_key="broker.id")
    amount_fen: int = Field(sa_type=BigInteger)
    broker_share_bp: int = 0
    status: str = Field(default="due", max_length=16)  # due | processing | succeeded | refunded
    payment_intent_id: str | None = Field(default=None, max_length=64, unique=True)
    client_secret: str | None = Field(default=None, max_length=128)
    charge_id: str | None = Field(default=None, max_length=64)
    refunded_fen: int = Field(default=0, sa_type=BigInteger)
    entry_id: int | None = Field(default=None, foreign_key="ledger_entry.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class StripeEvent(SQLModel, table=True):
    """Every Stripe webhook event id we processed: processed once, whatever arrives."""

    __tablename__ = "stripe_event"

    id: str = Field(primary_key=True, max_length=64)
    type: str = Field(max_length=64)
    object_id: str | None = Field(default=None, max_length=64)
    created: int = 0
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WelfarePostRun(SQLModel, table=True):
    """A month whose public-welfare post subsidies the scheduled duty booked, written
    in the same transaction as them: the duty books each month once, after it ends."""

    __tablename__ = "welfare_post_run"

    period: str = Field(primary_key=True, max_length=7)  # YYYY-MM
    source: str = Field(max_length=40)
    booked: int = 0
    ran_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
