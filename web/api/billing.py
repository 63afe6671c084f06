"""Billing API: fund pools, appropriations and transfers (maker-checker), ledger
postings, payout batches, reconciliation, broker earnings and bank accounts.

Every POST that moves money needs an ``Idempotency-Key`` header (docs/billing.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post, put
from litestar.params import HeaderParameter, JSONBody, QueryParameter
from litestar.response import Response
from pydantic import BaseModel, Field

from billing import bank, earnings, payouts, pools, reconciliation
from billing.config import BillingConfig
from billing.ledger import service as ledger
from billing.ledger.models import LedgerAccount, PostingPublic
from marketplace.access import in_scope, require
from marketplace.errors import NotFound
from marketplace.regions.models import CITY_CODE
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Paging, RowId

IdempotencyKey = Annotated[
    str | None, HeaderParameter(name="Idempotency-Key", description="动账请求的唯一键（必填）")
]
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def config_of(request: Request[Any, Any, Any]) -> BillingConfig:
    cfg: BillingConfig = request.app.state.settings.billing
    return cfg


class PoolIn(BaseModel):
    district_code: str = Field(pattern=r"^\d{6}$", description="区县代码")
    source: str = Field(min_length=1, max_length=40, description="资金来源代码")


async def market_side_for(
    request: Request[Any, Any, Any], db: Any, actor: Any, rep: reconciliation.Report
) -> reconciliation.MarketSide | None:
    """The market ledger against Stripe's balance transactions: for city-level finance
    and auditors (market accounts belong to no district), when Stripe is configured."""
    stripe = request.app.state.settings.stripe
    if not stripe.api_key or not in_scope(actor, CITY_CODE):
        return None
    from billing.stripe import StripeClient

    async with StripeClient(api_key=stripe.api_key, api_base=stripe.api_base) as client:
        return await reconciliation.market_side(db, client=client, start=rep.start, end=rep.end)


class FundPoolsController(Controller):
    path = "/api/v1/fund-pools"
    tags = ["资金池"]
    guards = [requires_login]

    @get("/")
    async def list_pools(self, db: Db, actor: CurrentActor) -> Paged[pools.PoolPublic]:
        found = await pools.list_pools(db, actor)
        return Paged(items=[await pools.to_public(db, p) for p in found], total=len(found))

    @post("/")
    async def open_pool(
        self, db: Db, actor: CurrentActor, data: JSONBody[PoolIn]
    ) -> pools.PoolPublic:
        require(actor, "fund.appropriate", region_code=data.district_code)
        pool = await pools.ensure_pool(db, data.district_code, data.source)
        return await pools.to_public(db, pool)

    @post("/{pool_id:int}/appropriations")
    async def appropriate(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        actor: CurrentActor,
        pool_id: RowId,
        data: JSONBody[pools.AppropriationIn],
        idempotency_key: IdempotencyKey = None,
    ) -> pools.AppropriationPublic:
        a = await pools.appropriate(
            db,
            actor=actor,
            pool_id=pool_id,
            data=data,
            key=idempotency_key,
            config=config_of(request),
        )
        return pools.appropriation_public(a)

    @post("/{pool_id:int}/transfers")
    async def transfer(
        self,
        db: Db,
        actor: CurrentActor,
        pool_id: RowId,
        data: JSONBody[pools.TransferIn],
        idempotency_key: IdempotencyKey = None,
    ) -> pools.TransferPublic:
        t = await pools.request_transfer(
            db, actor=actor, pool_id=pool_id, data=data, key=idempotency_key
        )
        return pools.transfer_public(t)


class ApprovalsController(Controller):
    """The checker's side of maker-checker: a different finance user decides."""

    path = "/api/v1"
    tags = ["资金池"]
    guards = [requires_login]

    @post("/appropriations/{appropriation_id:int}/approve")
    async def approve_appropriation(
        self,
        db: Db,
        actor: CurrentActor,
        appropriation_id: RowId,
        idempotency_key: IdempotencyKey = None,
    ) -> pools.AppropriationPublic:
        pools.check_key(idempotency_key)
        a = await pools.approve_appropriation(db, actor=actor, appropriation_id=appropriation_id)
        return pools.appropriation_public(a)

    @post("/transfers/{transfer_id:int}/approve")
    async def approve_transfer(
        self,
        db: Db,
        actor: CurrentActor,
        transfer_id: RowId,
        idempotency_key: IdempotencyKey = None,
    ) -> pools.TransferPublic:
        pools.check_key(idempotency_key)
        t = await pools.approve_transfer(db, actor=actor, transfer_id=transfer_id)
        return pools.transfer_public(t)

    @get("/ledger/accounts/{account_id:int}/postings")
    async def postings(
        self, db: Db, actor: CurrentActor, account_id: RowId, page: Paging
    ) -> Paged[PostingPublic]:
        account = await db.get(LedgerAccount, account_id)
        if account is None or not in_scope(actor, account.district_code or CITY_CODE):
            require(actor, "ledger.view")
            raise NotFound("账户不存在", field="account_id")
        # Market accounts belong to no district: city-level finance and auditors only.
        require(actor, "ledger.view", region_code=account.district_code or CITY_CODE)
        rows, total = await ledger.list_postings(
            db, account_id, limit=page.limit, offset=page.offset
        )
        return Paged(
            items=[
                PostingPublic(
                    id=p.id or 0,
                    entry_id=p.entry_id,
                    entry_kind=e.kind,
                    memo=e.memo,
                    side=p.side,
                    amount_fen=p.amount_fen,
                    effective_at=p.effective_at,
                    reversal_of_id=e.reversal_of_id,
                )
                for p, e in rows
            ],
            total=total,
        )

    @get("/reconciliation")
    async def reconciliation(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        actor: CurrentActor,
        period: Annotated[str, QueryParameter(description="YYYY-MM 或 YYYY")],
        district_code: Annotated[str | None, QueryParameter(pattern=r"^\d{2,6}$")] = None,
        file_format: Annotated[
            Literal["json", "csv", "xlsx"], QueryParameter(name="format")
        ] = "json",
    ) -> Response[Any]:
        rep = await reconciliation.report(
            db, actor=actor, period=period, district_code=district_code
        )
        market = await market_side_for(request, db, actor, rep)
        if file_format == "json":
            payload = rep.model_dump(mode="json")
            payload["market_mismatches"] = None if market is None else market.mismatch_list()
            return Response(payload)
        content = (
            reconciliation.to_csv(rep, market)
            if file_format == "csv"
            else reconciliation.to_xlsx(rep, market)
        )
        return Response(
            content,
            media_type=MEDIA_TYPES[file_format],
            headers={
                "Content-Disposition": f"attachment; filename=reconciliation-{period}.{file_format}"
            },
        )

    @get("/brokers/{broker_id:int}/earnings")
    async def broker_earnings(
        self, db: Db, actor: CurrentActor, broker_id: RowId
    ) -> earnings.Earnings:
        return await earnings.statement(db, actor=actor, broker_id=broker_id)

    @get("/me/bank-account")
    async def my_bank_account(self, db: Db, actor: CurrentActor) -> bank.BankAccountPublic:
        row = await bank.get_own(db, actor)
        if row is None:
            raise NotFound("尚未登记银行账户", field="bank_account")
        return bank.to_public(row)

    @put("/me/bank-account")
    async def set_bank_account(
        self, db: Db, actor: CurrentActor, cipher: Cipher, data: JSONBody[bank.BankAccountIn]
    ) -> bank.BankAccountPublic:
        return bank.to_public(await bank.set_own(db, actor=actor, cipher=cipher, data=data))


class PayoutBatchesController(Controller):
    path = "/api/v1/payout-batches"
    tags = ["发放批次"]
    guards = [requires_login]

    @post("/")
    async def build(
        self,
        db: Db,
        actor: CurrentActor,
        data: JSONBody[payouts.BatchIn],
        idempotency_key: IdempotencyKey = None,
    ) -> payouts.BatchPublic:
        batch = await payouts.build(db, actor=actor, data=data, key=idempotency_key)
        assert batch.id is not None
        return await payouts.review(db, actor=actor, batch_id=batch.id)

    @get("/")
    async def list_batches(
        self, db: Db, actor: CurrentActor, page: Paging
    ) -> Paged[payouts.BatchPublic]:
        rows, total = await payouts.list_batches(
            db, actor=actor, limit=page.limit, offset=page.offset
        )
        return Paged(items=[payouts.to_public(b) for b in rows], total=total)

    @get("/{batch_id:int}")
    async def review(self, db: Db, actor: CurrentActor, batch_id: RowId) -> payouts.BatchPublic:
        return await payouts.review(db, actor=actor, batch_id=batch_id)

    @post("/{batch_id:int}/approve")
    async def approve(
        self, db: Db, actor: CurrentActor, batch_id: RowId, idempotency_key: IdempotencyKey = None
    ) -> payouts.BatchPublic:
        pools.check_key(idempotency_key)
        await payouts.approve(db, actor=actor, batch_id=batch_id)
        return await payouts.review(db, actor=actor, batch_id=batch_id)

    @post("/{batch_id:int}/execute")
    async def execute(
        self,
        db: Db,
        actor: CurrentActor,
        batch_id: RowId,
        data: JSONBody[payouts.ExecuteIn],
        idempotency_key: IdempotencyKey = None,
    ) -> payouts.BatchPublic:
        pools.check_key(idempotency_key)
        await payouts.execute(db, actor=actor, batch_id=batch_id, data=data)
        return await payouts.review(db, actor=actor, batch_id=batch_id)

    @get("/{batch_id:int}/bank-file")
    async def bank_file(
        self, db: Db, actor: CurrentActor, cipher: Cipher, batch_id: RowId
    ) -> Response[bytes]:
        text = await payouts.bank_file(db, actor=actor, batch_id=batch_id, cipher=cipher)
        return Response(
            ("\ufeff" + text).encode(),
            media_type=MEDIA_TYPES["csv"],
            headers={"Content-Disposition": f"attachment; filename=payout-{batch_id}.csv"},
        )


def _fee_routes() -> list[Any]:
    from web.api.stripe_fees import PlacementFeesController, stripe_webhook

    return [PlacementFeesController, stripe_webhook]


BILLING_CONTROLLERS = [
    FundPoolsController,
    ApprovalsController,
    PayoutBatchesController,
    *_fee_routes(),
]
