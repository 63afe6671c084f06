"""A broker's earnings on the phone (subsidies and market income side by side, and
the bank account payouts go to); finance and auditors open any broker in their
region with ?broker_id=. The employer's fee payment page."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy import select
from sqlmodel import col

from billing import bank, earnings, fee_cards, fees
from marketplace.access import Role, require
from marketplace.errors import DomainError, Invalid
from marketplace.tasks.models import ServiceTask, TaskType
from web.api.stripe_fees import _call_stripe, stripe_client
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, RowId
from web.pages.base import refuse_in_form, render


async def _earnings_page(
    request: Request[Any, Any, Any],
    db: Any,
    actor: Any,
    broker_id: int | None,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    require(actor, "earnings.view")
    account = None
    if actor.role == Role.broker:
        own = await bank.broker_of(db, actor)
        broker_id = own.id
        row = await bank.get_own(db, actor)
        account = bank.to_public(row) if row else None
    if broker_id is None:
        raise Invalid("broker_id", "请指定经纪人编号（broker_id）")
    statement = await earnings.statement(db, actor=actor, broker_id=broker_id)
    codes = {i.task_type_code for i in statement.subsidies if i.task_type_code}
    type_names = dict(
        (
            await db.execute(
                select(col(TaskType.code), col(TaskType.name)).where(col(TaskType.code).in_(codes))
            )
        ).all()
    )
    task_ids = {i.task_id for i in statement.subsidies if i.task_id is not None}
    known_tasks = set(
        (
            await db.execute(select(col(ServiceTask.id)).where(col(ServiceTask.id).in_(task_ids)))
        ).scalars()
    )
    return await render(
        request,
        db,
        "finance/earnings.html",
        status_code=status_code,
        s=statement,
        type_names=type_names,
        known_tasks=known_tasks,
        account=account,
        is_broker=actor.role == Role.broker,
        errors=errors or {},
        saved=request.query_params.get("saved") == "1",
    )


@get("/earnings", guards=[requires_login], include_in_schema=False)
async def earnings_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    broker_id: Annotated[int | None, QueryParameter(ge=1, le=2_147_483_647)] = None,
) -> Template:
    return await _earnings_page(request, db, actor, broker_id)


@post("/earnings/bank", guards=[requires_login], include_in_schema=False)
async def earnings_bank(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, cipher: Cipher
) -> Response[Any] | Template:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        data = bank.BankAccountIn(
            account_name=form.get("account_name", "").strip() or "-",
            bank_name=form.get("bank_name", "").strip() or "-",
            account_no=form.get("account_no", "").strip() or "-",
        )
        if "-" in (data.account_name, data.bank_name):
            raise Invalid(
                "account_name" if data.account_name == "-" else "bank_name", "请填写户名和开户行"
            )
        await bank.set_own(db, actor=actor, cipher=cipher, data=data)
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _earnings_page(request, db, actor, None, errors=errors, status_code=exc.status)
    return Redirect("/earnings?saved=1", status_code=HTTP_303_SEE_OTHER)


def _fee_context(request: Request[Any, Any, Any]) -> dict[str, Any]:
    stripe = request.app.state.settings.stripe
    # The card form needs both keys: the publishable one for Stripe.js, the secret one
    # for our calls; without them the page says so instead of showing a dead form.
    return {
        "stripe_js_url": stripe.js_url,
        "publishable_key": stripe.publishable_key if stripe.api_key else None,
    }


@get("/fees/{placement_id:int}", guards=[requires_login], include_in_schema=False)
async def fee_page(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, placement_id: RowId
) -> Template:
    fee = await fees.get_fee(db, actor=actor, placement_id=placement_id)
    return await render(
        request,
        db,
        "finance/fee.html",
        fee=fees.to_public(fee),
        errors={},
        **_fee_context(request),
    )


async def _json_refusal(
    request: Request[Any, Any, Any], db: Any, exc: DomainError
) -> Response[Any]:
    await refuse_in_form(request, db, exc)
    return Response({"detail": exc.message, "field": exc.field}, status_code=exc.status)


@post("/fees/{placement_id:int}/card", guards=[requires_login], include_in_schema=False)
async def fee_card_start(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, placement_id: RowId
) -> Response[Any]:
    """The card form's first step: a SetupIntent's client secret for Stripe.js."""
    try:
        async with stripe_client(request) as client:
            setup = await _call_stripe(
                fee_cards.start_card_payment(
                    db, actor=actor, client=client, placement_id=placement_id
                )
            )
    except DomainError as exc:
        return await _json_refusal(request, db, exc)
    return Response(setup.model_dump(), status_code=200)


@post("/fees/{placement_id:int}/card/charge", guards=[requires_login], include_in_schema=False)
async def fee_card_charge(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, placement_id: RowId
) -> Response[Any]:
    """The second step: charge the card Stripe.js set up (only its Stripe id comes here)."""
    try:
        body = await request.json()
        setup_id = body.get("setup_intent_id") if isinstance(body, dict) else None
        if not isinstance(setup_id, str) or not setup_id.startswith("seti_"):
            raise Invalid("setup_intent_id", "缺少银行卡验证编号")
        async with stripe_client(request) as client:
            charge = await _call_stripe(
                fee_cards.charge_card(
                    db,
                    actor=actor,
                    client=client,
                    placement_id=placement_id,
                    setup_intent_id=setup_id,
                )
            )
    except DomainError as exc:
        return await _json_refusal(request, db, exc)
    except ValueError:
        return await _json_refusal(request, db, Invalid("setup_intent_id", "请求内容不是 JSON"))
    return Response(charge.model_dump(), status_code=200)


FEE_STATUS = {
    "due": "待付款",
    "processing": "等待银行卡付款确认",
    "succeeded": "已付款",
    "refunded": "已全额退款",
}


@get("/fees/{placement_id:int}/status", guards=[requires_login], include_in_schema=False)
async def fee_status(db: Db, actor: CurrentActor, placement_id: RowId) -> Response[dict[str, Any]]:
    """What the page polls after paying: booked only once our webhook has run."""
    fee = await fees.get_fee(db, actor=actor, placement_id=placement_id)
    return Response(
        {
            "status": fee.status,
            "label": FEE_STATUS.get(fee.status, fee.status),
            "booked": fee.entry_id is not None,
            "amount_fen": fee.amount_fen,
            "refunded_fen": fee.refunded_fen,
        },
        headers={"Cache-Control": "no-store"},
    )
