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

from billing import bank, earnings, fees
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
        publishable=request.app.state.settings.stripe.api_base,
        errors={},
    )


@post("/fees/{placement_id:int}/pay", guards=[requires_login], include_in_schema=False)
async def fee_pay(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, placement_id: RowId
) -> Response[Any] | Template:
    try:
        await fees.get_fee(db, actor=actor, placement_id=placement_id)
        async with stripe_client(request) as client:
            await _call_stripe(
                fees.create_intent(
                    db,
                    actor=actor,
                    client=client,
                    placement_id=placement_id,
                    key=f"page-{placement_id}",
                )
            )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        fee = await fees.get_fee(db, actor=actor, placement_id=placement_id)
        return await render(
            request,
            db,
            "finance/fee.html",
            status_code=exc.status,
            fee=fees.to_public(fee),
            errors=errors,
        )
    return Redirect(f"/fees/{placement_id}", status_code=HTTP_303_SEE_OTHER)
