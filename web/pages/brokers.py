"""Broker pages for officers: review queues with bulk decisions, an application with
its decision form (and the new broker's login, once), brokers, profile, gaps."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, can
from marketplace.brokers import applications, gaps, rules
from marketplace.brokers import service as brokers
from marketplace.brokers.applications import Outcome
from marketplace.brokers.models import ApplicationStatus, BrokerStatus, BrokerUpdate
from marketplace.crypto import DataCipher
from marketplace.errors import Invalid
from marketplace.regions import service as regions
from marketplace.regions.models import Region
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Paging, RowId
from web.pages.base import refuse_in_form
from web.pages.broker_forms import BrokerForm, BulkForm, DecisionForm, StatusForm
from web.pages.broker_forms import show as _show

# --- officers: review queues ------------------------------------------------------------------


def _default_status(actor: Actor) -> str:
    mine = rules.states_for_role(actor.role)
    return mine[0] if mine else ApplicationStatus.submitted


@get("/broker-applications", guards=[requires_login], include_in_schema=False)
async def queue_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    page: Paging,
    status: Annotated[str | None, QueryParameter(max_length=24)] = None,
    region_code: Annotated[str | None, QueryParameter(max_length=12)] = None,
) -> Template:
    chosen = status if status in set(ApplicationStatus) else _default_status(actor)
    region = (region_code or "").strip() or None
    if region is not None and not region.isdigit():
        raise Invalid("region_code", "区划代码只能是数字")
    counts = await applications.counts(session=db, actor=actor, region_code=region)
    items, total = await applications.list_applications(
        session=db,
        actor=actor,
        status=chosen,
        region_code=region,
        limit=page.limit,
        offset=page.offset,
    )
    names = await _village_names(db, {a.village_code for a in items})
    return await _show(
        request,
        db,
        "brokers/queue.html",
        counts=counts,
        status=chosen,
        region_code=region or "",
        rows=[await applications.to_public(db, a, cipher) for a in items],
        names=names,
        total=total,
        page=page,
        query={"status": chosen, **({"region_code": region} if region else {})},
        my_states=rules.states_for_role(actor.role),
        can_decide=can(actor, "broker_application.decide")
        and chosen in rules.states_for_role(actor.role),
        decisions=_decisions_for(chosen),
    )


def _decisions_for(status: str) -> list[tuple[str, str]]:
    labels = {"approve": "同意", "reject": "不予通过", "return": "退回补充材料"}
    if status == ApplicationStatus.district_approved:
        labels["approve"] = "同意，安排培训"
    if status == ApplicationStatus.exam_passed:
        labels["approve"] = "认证为劳务经纪人"
    return [
        (d, label)
        for d, label in labels.items()
        if (status, rules.Decision(d)) in rules.TRANSITIONS
    ]


async def _village_names(db: AsyncSession, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await db.execute(
        select(col(Region.code), col(Region.name)).where(col(Region.code).in_(codes))
    )
    return {code: name for code, name in rows.all()}


@post("/broker-applications/decisions", guards=[requires_login], include_in_schema=False)
async def queue_bulk_decide(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    data: URLEncodedBody[BulkForm],
) -> Template:
    if not data.ids:
        raise Invalid("ids", "请先勾选要处理的申请")
    results = await applications.decide_many(
        session=db,
        actor=actor,
        application_ids=data.ids,
        decision=data.decision,
        comment=data.comment or None,
        cipher=cipher,
    )
    outcomes = [r.outcome for r in results if r.outcome is not None]
    return await _show(
        request,
        db,
        "brokers/decided.html",
        results=results,
        outcomes=outcomes,
        decision=data.decision,
        back=f"/broker-applications?status={data.status}"
        if data.status
        else "/broker-applications",
    )


@get("/broker-applications/{application_id:int}", guards=[requires_login], include_in_schema=False)
async def application_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    application_id: RowId,
) -> Template:
    return await _application(request, db, actor, cipher, application_id)


async def _application(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    cipher: DataCipher,
    application_id: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    outcome: Outcome | None = None,
    form: DecisionForm | None = None,
) -> Template:
    application = await applications.get(session=db, actor=actor, application_id=application_id)
    public = await applications.to_public(db, application, cipher, with_history=True)
    village = await regions.get(session=db, code=application.village_code)
    step_role = rules.REVIEW_ROLE.get(application.status)
    return await _show(
        request,
        db,
        "brokers/application.html",
        status_code=status_code,
        app=public,
        village=village,
        errors=errors or {},
        form=form or DecisionForm(),
        outcome=outcome,
        my_step=step_role is not None and step_role == actor.role,
        step_role=rules.REVIEW_ROLE_LABELS.get(step_role) if step_role else None,
        decisions=_decisions_for(application.status),
    )


@post(
    "/broker-applications/{application_id:int}/decisions",
    guards=[requires_login],
    include_in_schema=False,
)
async def application_decide(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    application_id: RowId,
    data: URLEncodedBody[DecisionForm],
) -> Template | Response[Any]:
    try:
        outcome = await applications.decide(
            session=db,
            actor=actor,
            application_id=application_id,
            decision=data.decision,
            comment=data.comment or None,
            cipher=cipher,
        )
    except Invalid as exc:
        await refuse_in_form(request, db, exc)
        return await _application(
            request,
            db,
            actor,
            cipher,
            application_id,
            errors={exc.field or "_": exc.message},
            status_code=exc.status,
            form=data,
        )
    if outcome.initial_password:
        # Shown once, now: nothing stores the password in clear.
        return await _application(request, db, actor, cipher, application_id, outcome=outcome)
    return Redirect(
        f"/broker-applications/{application_id}?decided=1", status_code=HTTP_303_SEE_OTHER
    )


# --- brokers ----------------------------------------------------------------------------------


@get("/brokers", guards=[requires_login], include_in_schema=False)
async def brokers_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    region_code: Annotated[str | None, QueryParameter(max_length=12)] = None,
    status: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template | Response[Any]:
    region = (region_code or "").strip() or None
    if region is not None and not region.isdigit():
        raise Invalid("region_code", "区划代码只能是数字")
    chosen = status if status in set(BrokerStatus) else None
    items, total = await brokers.list_brokers(
        session=db,
        actor=actor,
        region_code=region,
        status=chosen,
        limit=page.limit,
        offset=page.offset,
    )
    if actor.role == "broker" and items:
        return Redirect(f"/brokers/{items[0].id}", status_code=HTTP_303_SEE_OTHER)
    return await _show(
        request,
        db,
        "brokers/list.html",
        rows=[await brokers.to_public(db, b) for b in items],
        total=total,
        page=page,
        region_code=region or "",
        status=chosen or "",
        query={k: v for k, v in (("region_code", region), ("status", chosen)) if v},
    )


@get("/brokers/gaps", guards=[requires_login], include_in_schema=False)
async def gaps_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    district_code: Annotated[str | None, QueryParameter(max_length=6)] = None,
) -> Template:
    summary = await gaps.district_summary(session=db, actor=actor)
    chosen = district_code or (actor.region_code[:6] if len(actor.region_code) >= 6 else None)
    villages = (
        await gaps.village_gaps(session=db, actor=actor, district_code=chosen) if chosen else None
    )
    return await _show(
        request,
        db,
        "brokers/gaps.html",
        summary=summary,
        district_code=chosen or "",
        district_name=next((d.name for d in summary if d.code == chosen), chosen or ""),
        villages=villages,
    )


async def _profile(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    broker_id: int,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> Template:
    broker = await brokers.get(session=db, actor=actor, broker_id=broker_id)
    public = await brokers.to_public(db, broker)
    return await _show(
        request,
        db,
        "brokers/profile.html",
        status_code=status_code,
        broker=public,
        names=await _village_names(db, set(public.villages)),
        history=await brokers.status_history(session=db, broker_id=broker_id),
        can_edit=can(actor, "broker.update", region_code=broker.village_code),
        actions=[
            (a.value, rules.ACTION_LABELS[a.value])
            for a, (allowed, _) in rules.STATUS_ACTIONS.items()
            if broker.status in allowed
        ],
        errors=errors or {},
        notice=notice,
    )


@get("/brokers/{broker_id:int}", guards=[requires_login], include_in_schema=False)
async def broker_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    broker_id: RowId,
    saved: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template:
    notice = {"flags": "已保存。", "status": "状态已变更，已通知经纪人。"}.get(saved or "")
    return await _profile(request, db, actor, broker_id, notice=notice)


def _yuan_to_fen(text: str) -> int | None:
    value = text.strip()
    if not value:
        return None
    try:
        fen = round(float(value) * 100)
    except ValueError:
        raise Invalid(
            "welfare_post_monthly_fen", "岗位补贴应为金额（元），如 800 或 800.50"
        ) from None
    if fen < 0:
        raise Invalid("welfare_post_monthly_fen", "岗位补贴不能为负数")
    return fen


def _split(text: str) -> list[str]:
    for sep in ("，", "、", "\n", ";", "；"):
        text = text.replace(sep, ",")
    return [part.strip() for part in text.split(",") if part.strip()]


@post("/brokers/{broker_id:int}", guards=[requires_login], include_in_schema=False)
async def broker_update(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    broker_id: RowId,
    data: URLEncodedBody[BrokerForm],
) -> Template | Response[Any]:
    try:
        await brokers.update(
            session=db,
            actor=actor,
            broker_id=broker_id,
            data=BrokerUpdate(
                key_broker=data.key_broker,
                welfare_post=data.welfare_post,
                welfare_post_task_types=_split(data.welfare_post_task_types),
                welfare_post_monthly_fen=_yuan_to_fen(data.welfare_post_monthly_yuan),
                assigned_villages=_split(data.assigned_villages),
            ),
        )
    except Invalid as exc:
        await refuse_in_form(request, db, exc)
        return await _profile(
            request, db, actor, broker_id, errors={exc.field or "_": exc.message}, status_code=422
        )
    return Redirect(f"/brokers/{broker_id}?saved=flags", status_code=HTTP_303_SEE_OTHER)


@post("/brokers/{broker_id:int}/status", guards=[requires_login], include_in_schema=False)
async def broker_status(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    broker_id: RowId,
    data: URLEncodedBody[StatusForm],
) -> Template | Response[Any]:
    try:
        await brokers.change_status(
            session=db, actor=actor, broker_id=broker_id, action=data.action, reason=data.reason
        )
    except Invalid as exc:
        await refuse_in_form(request, db, exc)
        return await _profile(
            request, db, actor, broker_id, errors={exc.field or "_": exc.message}, status_code=422
        )
    return Redirect(f"/brokers/{broker_id}?saved=status", status_code=HTTP_303_SEE_OTHER)
