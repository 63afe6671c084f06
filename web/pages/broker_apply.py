"""Public broker pages (no login): the application form, the status page by
tracking code and phone, and correcting a returned application."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, post
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.brokers import applications
from marketplace.brokers.models import ApplicationStatus
from marketplace.crypto import DataCipher
from marketplace.errors import DomainError, NotFound
from marketplace.regions.models import CITY_CODE, Region
from web import ratelimit
from web.auth import client_ip
from web.deps import Cipher, Db
from web.pages.base import render
from web.pages.broker_forms import LABELS, ApplyForm, ResubmitForm, TrackForm
from web.pages.broker_forms import show as _show


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
