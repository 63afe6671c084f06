"""Which ledger accounts exist, by code, and the normal side of each kind."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from billing.ledger import service as ledger
from billing.ledger.models import Ledger, LedgerAccount, Side
from marketplace.funding import funding_label


async def receivable(
    session: AsyncSession, broker_id: int, district_code: str, source: str
) -> LedgerAccount:
    """What a broker owes a pool after a subsidy was reversed once paid."""
    return await ledger.ensure_account(
        session,
        code=f"broker:{broker_id}:receivable:{district_code}:{source}",
        ledger=Ledger.subsidy,
        kind="broker_receivable",
        name=f"经纪人 {broker_id} 应追回（{district_code} {funding_label(source)}）",
        normal_side=Side.debit,
        district_code=district_code,
        source=source,
        broker_id=broker_id,
    )


async def market_accounts(session: AsyncSession, broker_id: int | None) -> dict[str, LedgerAccount]:
    """The market ledger: Stripe clearing, platform revenue, and the broker's part."""
    found = {
        "clearing": await ledger.ensure_account(
            session,
            code="market:stripe_clearing",
            ledger=Ledger.market,
            kind="stripe_clearing",
            name="Stripe 清算",
            normal_side=Side.debit,
        ),
        "platform": await ledger.ensure_account(
            session,
            code="market:platform_revenue",
            ledger=Ledger.market,
            kind="platform_revenue",
            name="平台服务费收入",
            normal_side=Side.credit,
        ),
    }
    if broker_id is not None:
        found["broker"] = await ledger.ensure_account(
            session,
            code=f"market:broker:{broker_id}",
            ledger=Ledger.market,
            kind="broker_market_payable",
            name=f"经纪人 {broker_id} 市场收入",
            normal_side=Side.credit,
            broker_id=broker_id,
        )
    return found
