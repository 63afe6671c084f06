"""Shared steps of the billing tests: pools with money, finance actors, invariants."""

from __future__ import annotations

from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from billing import pools
from billing.config import BillingConfig
from billing.ledger.models import EntryStatus, LedgerAccount, LedgerEntry, LedgerPosting
from billing.models import FundPool
from marketplace.access import Actor
from marketplace.db import unit_of_work
from marketplace.organizations.models import Organization, OrganizationMember

CONFIG = BillingConfig(approval_threshold_fen=10**12, payable_after_days=30)


def finance(user_id: int | None = None, region: str = "50") -> Actor:
    # user_id None would be the system; tests that need a person pass real user ids.
    return Actor(user_id=user_id, username=f"fin{user_id}", role="finance", region_code=region)


async def fund(
    factory: async_sessionmaker[AsyncSession],
    district: str,
    source: str,
    amount_fen: int,
    *,
    key: str,
    actor: Actor,
) -> FundPool:
    async with unit_of_work(factory) as session:
        pool = await pools.ensure_pool(session, district, source)
        assert pool.id is not None
        await pools.appropriate(
            session,
            actor=actor,
            pool_id=pool.id,
            data=pools.AppropriationIn(
                amount_fen=amount_fen, document_no="渝财社〔2026〕1号", date=date(2026, 1, 5)
            ),
            key=key,
            config=CONFIG,
        )
        return pool


async def check_ledger_invariants(session: AsyncSession) -> None:
    """Debits equal credits (overall and per entry); balances equal the sum of
    postings; no no-overdraft account is below zero."""
    signed = case(
        (col(LedgerPosting.side) == "debit", col(LedgerPosting.amount_fen)),
        else_=-col(LedgerPosting.amount_fen),
    )
    unbalanced = (
        await session.execute(
            select(col(LedgerPosting.entry_id))
            .group_by(col(LedgerPosting.entry_id))
            .having(func.sum(signed) != 0)
        )
    ).all()
    assert unbalanced == []
    open_entries = (
        await session.execute(
            select(func.count())
            .select_from(LedgerEntry)
            .where(col(LedgerEntry.status) != EntryStatus.posted)
        )
    ).scalar_one()
    assert open_entries == 0
    for account in (await session.execute(select(LedgerAccount))).scalars():
        normal = case(
            (col(LedgerPosting.side) == account.normal_side, col(LedgerPosting.amount_fen)),
            else_=-col(LedgerPosting.amount_fen),
        )
        total = (
            await session.execute(
                select(func.coalesce(func.sum(normal), 0)).where(
                    col(LedgerPosting.account_id) == account.id
                )
            )
        ).scalar_one()
        assert account.balance_fen == total, account.code
        if account.no_overdraft:
            assert account.balance_fen >= 0, account.code


async def employer_of(
    session: AsyncSession, user_id: int, *, name: str, credit_code: str
) -> Organization:
    """A verified employer in 渝中区 with ``user_id`` as its member: who owes a fee."""
    org = Organization(
        kind="employer",
        name=name,
        credit_code=credit_code,
        contact_name="王经理",
        contact_phone="023-63000000",
        address="渝中区",
        region_code="500103",
        status="verified",
    )
    session.add(org)
    await session.flush()
    session.add(OrganizationMember(organization_id=org.id or 0, user_id=user_id))
    return org
