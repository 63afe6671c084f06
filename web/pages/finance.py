"""Finance pages: the dashboard (pools, awaiting funds, pending approvals, batches),
appropriations, batch review, approval and execution, reconciliation with exports.
Every action calls the same billing service as the API; amounts typed in yuan."""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy import select
from sqlmodel import col

from billing import payouts, pool_views, pools, reconciliation
from marketplace.access import require
from marketplace.accounts.models import User
from marketplace.clock import local, utcnow
from marketplace.errors import DomainError, Invalid
from marketplace.funding import FUNDING_SOURCES, funding_label
from web.api.billing import MEDIA_TYPES, config_of, market_side_for
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, RowId
from web.pages.base import refuse_in_form, render

_YUAN = re.compile(r"^\d{1,11}(\.\d{1,2})?$")


def parse_yuan(text: str, field: str = "amount_yuan") -> int:
    """'1234.5' → 123450 fen; at most two decimals, no negatives."""
    cleaned = text.strip().replace(",", "").replace("，", "")
    if not _YUAN.match(cleaned):
        raise Invalid(field, "请输入金额（元），最多两位小数")
    try:
        fen = int(Decimal(cleaned) * 100)
    except InvalidOperation:
        raise Invalid(field, "请输入金额（元），最多两位小数") from None
    if fen <= 0:
        raise Invalid(field, "金额必须大于 0")
    return fen


def _pool_id(text: str, field: str) -> int:
    if not text.strip().isdigit() or not 0 < int(text) <= 2_147_483_647:
        raise Invalid(field, "请选择资金池")
    return int(text)


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items()}


async def _dashboard(
    request: Request[Any, Any, Any],
    db: Any,
    actor: Any,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    notice: str | None = None,
    form: dict[str, str] | None = None,
) -> Template:
    require(actor, "ledger.view")
    config = config_of(request)
    found = await pools.list_pools(db, actor)
    views = [await pools.to_public(db, p) for p in found]
    waiting = await pool_views.awaiting_summary(db, [p.id for p in views])
    pending, decided = await pool_views.describe_requests(db, actor, config=config)
    batches, _ = await payouts.list_batches(db, actor=actor, limit=20, offset=0)
    return await render(
        request,
        db,
        "finance/dashboard.html",
        status_code=status_code,
        pools=views,
        labels=await pool_views.pool_labels(db, found),
        waiting=waiting,
        pending=pending,
        decided=decided,
        batches=batches,
        errors=errors or {},
        form=form or {},
        notice=notice or request.query_params.get("notice"),
        form_key=uuid.uuid4().hex,
        sources=FUNDING_SOURCES,
        today=local(utcnow()).date().isoformat(),
        can_move=actor.role == "finance",
        me_id=actor.user_id,
        threshold_fen=config.approval_threshold_fen,
    )


@get("/finance", guards=[requires_login], include_in_schema=False)
async def finance_home(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    return await _dashboard(request, db, actor)


@post("/finance/pools", guards=[requires_login], include_in_schema=False)
async def finance_open_pool(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    data = await _form(request)
    district = data.get("district_code", "").strip()
    try:
        require(actor, "fund.appropriate", region_code=district or None)
        if not re.fullmatch(r"\d{6}", district):
            raise Invalid("district_code", "请输入 6 位区县代码")
        await pools.ensure_pool(db, district, data.get("source", ""))
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _dashboard(request, db, actor, errors=errors, status_code=exc.status)
    return Redirect("/finance?notice=资金池已开立", status_code=HTTP_303_SEE_OTHER)


def _document_no(data: dict[str, str], what: str) -> str:
    """The form's 文号, with the field error the form shows (AppropriationIn and
    TransferIn hold the same limits for the API)."""
    document_no = data.get("document_no", "").strip()
    if not document_no:
        raise Invalid("document_no", f"请填写{what}文号")
    if len(document_no) > 64:
        raise Invalid("document_no", "文号不能超过 64 个字")
    return document_no


@post("/finance/appropriations", guards=[requires_login], include_in_schema=False)
async def finance_appropriate(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    data = await _form(request)
    try:
        pool_id = _pool_id(data.get("pool_id", ""), "pool_id")
        amount = parse_yuan(data.get("amount_yuan", ""))
        try:
            when = date.fromisoformat(data.get("date", ""))
        except ValueError:
            raise Invalid("date", "请选择拨款日期") from None
        document_no = _document_no(data, "拨款")
        a = await pools.appropriate(
            db,
            actor=actor,
            pool_id=pool_id,
            data=pools.AppropriationIn(
                amount_fen=amount,
                document_no=document_no,
                date=when,
                note=data.get("note", "").strip()[:500],
            ),
            key=data.get("form_key"),
            config=config_of(request),
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _dashboard(
            request, db, actor, errors=errors, status_code=exc.status, form=data
        )
    notice = (
        "拨款已入账" if a.status == "posted" else "金额超过审核线，已提交，待另一位财务人员审核"
    )
    return Redirect(f"/finance?notice={notice}", status_code=HTTP_303_SEE_OTHER)


@post(
    "/finance/appropriations/{appropriation_id:int}/approve",
    guards=[requires_login],
    include_in_schema=False,
)
async def finance_approve_appropriation(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, appropriation_id: RowId
) -> Response[Any] | Template:
    data = await _form(request)
    try:
        await pools.approve_appropriation(
            db,
            actor=actor,
            appropriation_id=appropriation_id,
            reject=data.get("decision") == "reject",
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _dashboard(request, db, actor, errors=errors, status_code=exc.status)
    return Redirect("/finance?notice=已处理拨款申请", status_code=HTTP_303_SEE_OTHER)


@post("/finance/transfers", guards=[requires_login], include_in_schema=False)
async def finance_request_transfer(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    """调剂申请: waits for a second finance user, like the API's transfers."""
    data = await _form(request)
    try:
        source = _pool_id(data.get("from_pool_id", ""), "from_pool_id")
        target = _pool_id(data.get("to_pool_id", ""), "to_pool_id")
        amount = parse_yuan(data.get("amount_yuan", ""))
        document_no = _document_no(data, "调剂")
        await pools.request_transfer(
            db,
            actor=actor,
            pool_id=source,
            data=pools.TransferIn(
                to_pool_id=target,
                amount_fen=amount,
                document_no=document_no,
                note=data.get("note", "").strip()[:500],
            ),
            key=data.get("form_key"),
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _dashboard(
            request, db, actor, errors=errors, status_code=exc.status, form=data
        )
    return Redirect(
        "/finance?notice=调剂申请已提交，待另一位财务人员审核", status_code=HTTP_303_SEE_OTHER
    )


@post(
    "/finance/transfers/{transfer_id:int}/approve", guards=[requires_login], include_in_schema=False
)
async def finance_approve_transfer(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, transfer_id: RowId
) -> Response[Any] | Template:
    data = await _form(request)
    try:
        await pools.approve_transfer(
            db, actor=actor, transfer_id=transfer_id, reject=data.get("decision") == "reject"
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _dashboard(request, db, actor, errors=errors, status_code=exc.status)
    return Redirect("/finance?notice=已处理调剂申请", status_code=HTTP_303_SEE_OTHER)


@post("/finance/batches", guards=[requires_login], include_in_schema=False)
async def finance_build_batch(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor
) -> Response[Any] | Template:
    data = await _form(request)
    try:
        district, period = data.get("district_code", "").strip(), data.get("period", "").strip()
        if not re.fullmatch(r"\d{6}", district):
            raise Invalid("district_code", "请输入 6 位区县代码")
        if not re.fullmatch(payouts.PERIOD_PATTERN, period):
            raise Invalid("period", "期间格式应为 YYYY-MM")
        batch = await payouts.build(
            db,
            actor=actor,
            data=payouts.BatchIn(district_code=district, period=period),
            key=data.get("form_key"),
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _dashboard(request, db, actor, errors=errors, status_code=exc.status)
    return Redirect(f"/finance/batches/{batch.id}", status_code=HTTP_303_SEE_OTHER)


async def _batch_page(
    request: Request[Any, Any, Any],
    db: Any,
    actor: Any,
    batch_id: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    review = await payouts.review(db, actor=actor, batch_id=batch_id)
    people = [u for u in (review.created_by, review.approved_by) if u is not None]
    names = dict(
        (
            await db.execute(
                select(col(User.id), col(User.display_name)).where(col(User.id).in_(people))
            )
        ).all()
    )
    return await render(
        request,
        db,
        "finance/batch.html",
        status_code=status_code,
        batch=review,
        names=names,
        errors=errors or {},
        label=funding_label,
        can_move=actor.role == "finance",
        me_id=actor.user_id,
    )


@get("/finance/batches/{batch_id:int}", guards=[requires_login], include_in_schema=False)
async def finance_batch(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, batch_id: RowId
) -> Template:
    return await _batch_page(request, db, actor, batch_id)


@post("/finance/batches/{batch_id:int}/approve", guards=[requires_login], include_in_schema=False)
async def finance_batch_approve(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, batch_id: RowId
) -> Response[Any] | Template:
    try:
        await payouts.approve(db, actor=actor, batch_id=batch_id)
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _batch_page(
            request, db, actor, batch_id, errors=errors, status_code=exc.status
        )
    return Redirect(f"/finance/batches/{batch_id}", status_code=HTTP_303_SEE_OTHER)


@post("/finance/batches/{batch_id:int}/execute", guards=[requires_login], include_in_schema=False)
async def finance_batch_execute(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, batch_id: RowId
) -> Response[Any] | Template:
    data = await _form(request)
    refs = {
        int(k[4:]): v.strip()
        for k, v in data.items()
        if k.startswith("ref_") and k[4:].isdigit() and v.strip()
    }
    try:
        await payouts.execute(
            db,
            actor=actor,
            batch_id=batch_id,
            data=payouts.ExecuteIn(mode=data.get("mode", "online"), references=refs),
        )
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _batch_page(
            request, db, actor, batch_id, errors=errors, status_code=exc.status
        )
    except ValueError:
        errors = await refuse_in_form(request, db, Invalid("mode", "执行方式只能是线上或线下"))
        return await _batch_page(request, db, actor, batch_id, errors=errors, status_code=422)
    return Redirect(f"/finance/batches/{batch_id}", status_code=HTTP_303_SEE_OTHER)


@get("/finance/batches/{batch_id:int}/bank-file", guards=[requires_login], include_in_schema=False)
async def finance_bank_file(
    db: Db, actor: CurrentActor, cipher: Cipher, batch_id: RowId
) -> Response[bytes]:
    text = await payouts.bank_file(db, actor=actor, batch_id=batch_id, cipher=cipher)
    return Response(
        ("\ufeff" + text).encode(),
        media_type=MEDIA_TYPES["csv"],
        headers={"Content-Disposition": f"attachment; filename=payout-{batch_id}.csv"},
    )


@get("/finance/reconciliation", guards=[requires_login], include_in_schema=False)
async def finance_reconciliation(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    period: Annotated[str | None, QueryParameter(max_length=7)] = None,
    district_code: Annotated[str | None, QueryParameter(pattern=r"^\d{2,6}$")] = None,
    file_format: Annotated[
        str | None, QueryParameter(name="format", pattern=r"^(csv|xlsx)$")
    ] = None,
) -> Response[Any] | Template:
    require(actor, "reconciliation.view")
    chosen = period or local(utcnow()).strftime("%Y-%m")
    errors: dict[str, str] = {}
    rep = None
    try:
        rep = await reconciliation.report(
            db, actor=actor, period=chosen, district_code=district_code
        )
    except DomainError as exc:
        errors = {exc.field or "_": exc.message}
    if rep is not None and file_format:
        market = await market_side_for(request, db, actor, rep)
        body = (
            reconciliation.to_csv(rep, market)
            if file_format == "csv"
            else reconciliation.to_xlsx(rep, market)
        )
        return Response(
            body,
            media_type=MEDIA_TYPES[file_format],
            headers={
                "Content-Disposition": f"attachment; filename=reconciliation-{chosen}.{file_format}"
            },
        )
    return await render(
        request,
        db,
        "finance/reconciliation.html",
        status_code=422 if errors else 200,
        report=rep,
        period=chosen,
        district_code=district_code or "",
        errors=errors,
        label=funding_label,
    )
