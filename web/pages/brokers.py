"""Broker pages: the public application form and status page (no login), officers'
review queues with bulk decisions, the broker profile, and recruitment gaps."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import BaseModel, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, can
from marketplace.brokers import applications, gaps, rules
from marketplace.brokers import service as brokers
from marketplace.brokers.applications import ApplicationInput, Outcome
from marketplace.brokers.models import ApplicationStatus, BrokerStatus, BrokerUpdate
from marketplace.crypto import DataCipher
from marketplace.errors import DomainError, Invalid, NotFound
from marketplace.regions import service as regions
from marketplace.regions.models import CITY_CODE, Region
from web import ratelimit
from web.auth import client_ip, requires_login
from web.deps import Cipher, CurrentActor, Db, Paging, RowId
from web.pages.base import refuse_in_form, render

LABELS: dict[str, Any] = {
    "STATUS_LABELS": rules.STATUS_LABELS,
    "DECISION_LABELS": rules.DECISION_LABELS,
    "BACKGROUND_LABELS": rules.BACKGROUND_LABELS,
    "BROKER_STATUS_LABELS": rules.BROKER_STATUS_LABELS,
    "ACTION_LABELS": rules.ACTION_LABELS,
    "STEP_LABELS": rules.ROLE_STEP_LABELS,
    "ACTOR_LABELS": {
        "applicant": "申请人",
        "system": "系统（考试）",
        "village_officer": "村（社区）",
        "township_officer": "乡镇（街道）",
        "district_admin": "区县人力社保局",
        "city_admin": "市人力社保局",
    },
    "yuan": lambda fen: "" if fen is None else f"{fen / 100:.2f}",
}


def _checked(value: Any) -> bool:
    return value not in (None, "", "0", "false", "off", False)


class ApplyForm(BaseModel):
    name: str = ""
    id_number: str = ""
    phone: str = ""
    district_code: str = ""
    township_code: str = ""
    village_code: str = ""
    background: str = ""
    computer_skills: bool = False
    smartphone_skills: bool = False
    enough_time: bool = False
    not_on_public_payroll: bool = False
    note: str = ""

    @field_validator(
        "computer_skills",
        "smartphone_skills",
        "enough_time",
        "not_on_public_payroll",
        mode="before",
    )
    @classmethod
    def _box(cls, value: Any) -> bool:
        return _checked(value)

    def to_input(self) -> ApplicationInput:
        return ApplicationInput(
            name=self.name,
            id_number=self.id_number,
            phone=self.phone,
            village_code=self.village_code,
            background=self.background,
            computer_skills=self.computer_skills,
            smartphone_skills=self.smartphone_skills,
            enough_time=self.enough_time,
            not_on_public_payroll=self.not_on_public_payroll,
            note=self.note or None,
        )


class TrackForm(BaseModel):
    tracking_code: str = ""
    phone: str = ""


class ResubmitForm(ApplyForm):
    tracking_code: str = ""
    current_phone: str = ""


class DecisionForm(BaseModel):
    decision: str = ""
    comment: str = ""


class BulkForm(BaseModel):
    ids: list[int] = []
    decision: str = ""
    comment: str = ""
    status: str = ""

    @field_validator("ids", mode="before")
    @classmethod
    def _many(cls, value: Any) -> list[Any]:
        if value in (None, ""):
            return []
        return value if isinstance(value, list) else [value]


class BrokerForm(BaseModel):
    key_broker: bool = False
    welfare_post: bool = False
    welfare_post_task_types: str = ""
    welfare_post_monthly_yuan: str = ""
    assigned_villages: str = ""

    @field_validator("key_broker", "welfare_post", mode="before")
    @classmethod
    def _box(cls, value: Any) -> bool:
        return _checked(value)


class StatusForm(BaseModel):
    action: str = ""
    reason: str = ""


async def _children(db: AsyncSession, parent: str) -> list[tuple[str, str]]:
    rows = await db.execute(
        select(col(Region.code), col(Region.name))
        .where(col(Region.parent_code) == parent)
        .order_by(col(Region.code))
    )
    return [(code, name) for code, name in rows.all()]


async def _picker(db: AsyncSession, district: str, township: str, village: str) -> dict[str, Any]:
    return {
        "districts": await _children(db, CITY_CODE),
        "townships": await _children(db, district)
        if len(district) == 6 and district.isdigit()
        else [],
        "villages": await _children(db, township)
        if len(township) == 9 and township.isdigit()
        else [],
        "picked_district": district,
        "picked_township": township,
        "picked_village": village,
    }


async def _show(
    request: Request[Any, Any, Any], db: AsyncSession, name: str, **ctx: Any
) -> Template:
    return await render(request, db, name, **LABELS, **ctx)


# --- public: apply ------------------------------------------------------------------------


async def _apply_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    form: ApplyForm,
    errors: dict[str, str],
    *,
    status_code: int = 200,
    template: str = "brokers/apply.html",
    **ctx: Any,
) -> Template:
    village = form.village_code
    district = village[:6] if len(village) == 12 else form.district_code
    township = village[:9] if len(village) == 12 else form.township_code
    return await render(
        request,
        db,
        template,
        status_code=status_code,
        **LABELS,
        form=form,
        errors=errors,
        **await _picker(db, district, township, village),
        **ctx,
    )


@get("/apply", include_in_schema=False)
async def apply_page(request: Request[Any, Any, Any], db: Db) -> Template:
    return await _apply_page(request, db, ApplyForm(), {})


@get("/apply/regions", include_in_schema=False)
async def apply_region_picker(
    request: Request[Any, Any, Any],
    db: Db,
    district_code: Annotated[str | None, QueryParameter(max_length=12)] = None,
    township_code: Annotated[str | None, QueryParameter(max_length=12)] = None,
) -> Template:
    """The district → township → village picker, re-rendered when a level changes (HTMX)."""
    district = (district_code or "").strip()
    township = (township_code or "").strip()
    if not township.startswith(district) or len(district) != 6:
        township = ""
    return await render(
        request,
        db,
        "brokers/_region_picker.html",
        **await _picker(db, district, township, ""),
        errors={},
    )


@post("/apply", include_in_schema=False)
async def apply_submit(
    request: Request[Any, Any, Any], db: Db, cipher: Cipher, data: URLEncodedBody[ApplyForm]
) -> Template:
    ratelimit.check(request, ratelimit.SUBMIT)
    try:
        application = await applications.submit(
            session=db, data=data.to_input(), cipher=cipher, ip=client_ip(request.scope)
        )
    except DomainError as exc:
        await db.rollback()
        return await _apply_page(
            request, db, data, {exc.field or "_": exc.message}, status_code=exc.status
        )
    return await _show(request, db, "brokers/apply_done.html", application=application)


# --- public: follow an application ----------------------------------------------------------


@get("/apply/status", include_in_schema=False)
async def apply_status_page(request: Request[Any, Any, Any], db: Db) -> Template:
    return await _show(request, db, "brokers/apply_status.html", form=TrackForm(), errors={})


async def _tracked_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    cipher: DataCipher,
    application: Any,
    *,
    phone: str,
    form: ApplyForm | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    notice: str | None = None,
) -> Template:
    tracked = await applications.to_tracked(db, application, cipher)
    if form is None and application.status == ApplicationStatus.returned:
        form = ApplyForm(
            name=application.name,
            phone=phone,
            village_code=application.village_code,
            background=application.background,
            note=application.note or "",
            computer_skills=application.computer_skills,
            smartphone_skills=application.smartphone_skills,
            enough_time=application.enough_time,
            not_on_public_payroll=application.not_on_public_payroll,
        )
    return await _apply_page(
        request,
        db,
        form or ApplyForm(),
        errors or {},
        status_code=status_code,
        template="brokers/apply_tracked.html",
        tracked=tracked,
        phone=phone,
        notice=notice,
    )


@post("/apply/status", include_in_schema=False)
async def apply_status_lookup(
    request: Request[Any, Any, Any], db: Db, cipher: Cipher, data: URLEncodedBody[TrackForm]
) -> Template:
    """A POST, so the phone number stays out of addresses and logs."""
    ratelimit.check(request, ratelimit.TRACK)
    try:
        application = await applications.track(
            session=db, code=data.tracking_code, phone=data.phone, cipher=cipher
        )
    except NotFound as exc:
        return await _show(
            request,
            db,
            "brokers/apply_status.html",
            form=data,
            errors={"tracking_code": exc.message},
            status_code=404,
        )
    return await _tracked_page(request, db, cipher, application, phone=data.phone)


@post("/apply/resubmit", include_in_schema=False)
async def apply_resubmit(
    request: Request[Any, Any, Any], db: Db, cipher: Cipher, data: URLEncodedBody[ResubmitForm]
) -> Template:
    ratelimit.check(request, ratelimit.TRACK)
    try:
        application = await applications.resubmit(
            session=db,
            code=data.tracking_code,
            phone=data.current_phone,
            data=data.to_input(),
            cipher=cipher,
            ip=client_ip(request.scope),
        )
    except NotFound as exc:
        return await _show(
            request,
            db,
            "brokers/apply_status.html",
            form=TrackForm(tracking_code=data.tracking_code),
            errors={"tracking_code": exc.message},
            status_code=404,
        )
    except DomainError as exc:
        await db.rollback()
        application = await applications.track(
            session=db, code=data.tracking_code, phone=data.current_phone, cipher=cipher
        )
        return await _tracked_page(
            request,
            db,
            cipher,
            application,
            phone=data.current_phone,
            form=data,
            errors={exc.field or "_": exc.message},
            status_code=exc.status,
        )
    return await _tracked_page(
        request, db, cipher, application, phone=data.phone, notice="已重新提交，请等待审核。"
    )


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
