"""Organisation pages: an employer or agency registers itself; the district admin
verifies it (a queue of pending ones), links accounts and records authorisations;
an employer authorises the agencies that recruit for it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.access import Actor, can
from marketplace.errors import DomainError, Forbidden, Invalid
from marketplace.organizations import service as orgs
from marketplace.organizations.models import (
    KIND_LABELS,
    STATUS_LABELS,
    AuthorizationCreate,
    MemberAdd,
    Organization,
    OrganizationCreate,
    OrganizationKind,
    OrganizationStatus,
    VerifyRequest,
)
from marketplace.regions.models import Region
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging, RowId
from web.pages.base import field_errors, is_htmx, refuse_in_form, render

STATUS_TAGS = {"pending": "tag-warn", "verified": "tag-ok", "rejected": "tag-off"}
LABELS: dict[str, Any] = {
    "KIND_LABELS": KIND_LABELS,
    "ORG_STATUS": STATUS_LABELS,
    "ORG_TAGS": STATUS_TAGS,
}


class OrganizationForm(BaseModel):
    kind: str = "employer"
    name: str = ""
    credit_code: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    address: str = ""
    licence_no: str = ""
    region_code: str = ""


class VerifyForm(BaseModel):
    decision: str = ""
    reason: str = ""


class AuthorizationForm(BaseModel):
    agency_id: str = ""
    document_ref: str = ""
    valid_from: str = ""
    valid_until: str = ""


class MemberForm(BaseModel):
    user_id: str = ""


def _id(text: str, field: str) -> int:
    raw = text.strip()
    if not raw.isdigit() or len(raw) > 9:
        raise Invalid(field, "请填写编号（数字）")
    return int(raw)


async def _show(
    request: Request[Any, Any, Any], db: AsyncSession, name: str, **context: Any
) -> Template:
    return await render(request, db, name, **LABELS, **context)


@get("/organizations", guards=[requires_login], include_in_schema=False)
async def organizations_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    status: Annotated[str | None, QueryParameter(max_length=16)] = None,
    q: Annotated[str | None, QueryParameter(max_length=50)] = None,
) -> Template:
    """Administrators start on the pending ones (the verification queue)."""
    verifier = can(actor, "organization.verify")
    chosen = (
        status
        if status in STATUS_LABELS
        else (None if status == "all" or not verifier else "pending")
    )
    items, total = await orgs.list_organizations(
        session=db,
        actor=actor,
        limit=page.limit,
        offset=page.offset,
        status=OrganizationStatus(chosen) if chosen else None,
        q=(q or "").strip() or None,
    )
    return await _show(
        request,
        db,
        "organizations/_results.html" if is_htmx(request) else "organizations/list.html",
        items=items,
        total=total,
        page=page,
        query={k: v for k, v in (("status", status), ("q", q)) if v},
        status=chosen or "all",
        q=q or "",
        verifier=verifier,
        may_register=can(actor, "organization.register"),
        mine=await orgs.organization_of(db, actor),
    )


async def _form_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    form: OrganizationForm,
    errors: dict[str, str],
    *,
    first: bool = False,
    status_code: int = 200,
) -> Template:
    return await _show(
        request,
        db,
        "organizations/form.html",
        status_code=status_code,
        form=form,
        errors=errors,
        first=first,
        kinds=[("employer", KIND_LABELS[OrganizationKind.employer])]
        if actor.role == "employer"
        else list(KIND_LABELS.items()),
    )


@get("/organizations/new", guards=[requires_login], include_in_schema=False)
async def organization_new(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    first: Annotated[bool, QueryParameter()] = False,
) -> Template:
    if not can(actor, "organization.register"):
        raise Forbidden("您的角色不能登记单位")
    kind = "agency" if actor.role == "agency" and first else "employer"
    form = OrganizationForm(
        kind=kind, region_code=actor.region_code if len(actor.region_code) >= 6 else ""
    )
    return await _form_page(request, db, actor, form, {}, first=first)


@post("/organizations", guards=[requires_login], include_in_schema=False)
async def organization_create(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    data: URLEncodedBody[OrganizationForm],
) -> Response[Any] | Template:
    try:
        org = await orgs.register(
            session=db,
            actor=actor,
            data=OrganizationCreate.model_validate(
                {
                    **data.model_dump(),
                    "licence_no": data.licence_no.strip() or None,
                    "region_code": data.region_code.strip() or None,
                }
            ),
        )
    except ValidationError as exc:
        errors, status = field_errors(exc), 422
    except DomainError as exc:
        errors, status = {exc.field or "_": exc.message}, exc.status
    else:
        return Redirect(f"/organizations/{org.id}?saved=created", status_code=HTTP_303_SEE_OTHER)
    await refuse_in_form(request, db, status)
    return await _form_page(request, db, actor, data, errors, status_code=status)


NOTICES = {
    "created": "已登记，等待区县人力社保局核验。核验前岗位只能保存为草稿。",
    "verified": "已通过核验。",
    "rejected": "已退回，单位会收到原因。",
    "authorized": "授权已登记。",
    "member": "账号已关联到本单位。",
}


async def _org_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    organization_id: int,
    *,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    org = await orgs.get(db, actor, organization_id)
    mine = await orgs.organization_of(db, actor)
    member = mine is not None and mine.id == org.id
    may_verify = can(actor, "organization.verify", region_code=org.region_code)
    may_manage = can(actor, "organization.manage_members", region_code=org.region_code)
    may_authorize = org.kind == "employer" and (member or may_manage)
    grants = (
        await orgs.authorizations(session=db, actor=actor, organization_id=organization_id)
        if member or may_manage or mine is not None
        else []
    )
    partners = {g.agency_id for g in grants} | {g.employer_id for g in grants}
    names = {
        o.id: o.name
        for o in (
            await db.execute(select(Organization).where(col(Organization.id).in_(partners or {0})))
        ).scalars()
    }
    region = await db.get(Region, org.region_code)
    return await _show(
        request,
        db,
        "organizations/detail.html",
        status_code=status_code,
        org=org,
        member=member,
        may_verify=may_verify and org.status != OrganizationStatus.verified,
        may_manage=may_manage,
        may_authorize=may_authorize,
        members=await orgs.members(session=db, actor=actor, organization_id=organization_id)
        if member or may_manage
        else [],
        grants=grants,
        names=names,
        region_name=region.name if region else org.region_code,
        notice=notice,
        errors=errors or {},
    )


@get("/organizations/{organization_id:int}", guards=[requires_login], include_in_schema=False)
async def organization_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    organization_id: RowId,
    saved: Annotated[str | None, QueryParameter(max_length=16)] = None,
) -> Template:
    return await _org_page(request, db, actor, organization_id, notice=NOTICES.get(saved or ""))


async def _act(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    organization_id: int,
    action: Any,
    done: str,
) -> Response[Any] | Template:
    try:
        await action()
    except ValidationError as exc:
        await refuse_in_form(request, db, 422)
        return await _org_page(
            request, db, actor, organization_id, errors=field_errors(exc), status_code=422
        )
    except DomainError as exc:
        await refuse_in_form(request, db, exc)
        return await _org_page(
            request,
            db,
            actor,
            organization_id,
            errors={exc.field or "_": exc.message},
            status_code=exc.status,
        )
    return Redirect(
        f"/organizations/{organization_id}?saved={done}", status_code=HTTP_303_SEE_OTHER
    )


@post(
    "/organizations/{organization_id:int}/verify", guards=[requires_login], include_in_schema=False
)
async def organization_verify(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    organization_id: RowId,
    data: URLEncodedBody[VerifyForm],
) -> Response[Any] | Template:
    approve = data.decision == "approve"

    async def action() -> None:
        await orgs.verify(
            session=db,
            actor=actor,
            organization_id=organization_id,
            data=VerifyRequest(approve=approve, reason=data.reason.strip()[:500] or None),
        )

    return await _act(
        request, db, actor, organization_id, action, "verified" if approve else "rejected"
    )


@post(
    "/organizations/{organization_id:int}/authorizations",
    guards=[requires_login],
    include_in_schema=False,
)
async def organization_authorize(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    organization_id: RowId,
    data: URLEncodedBody[AuthorizationForm],
) -> Response[Any] | Template:
    async def action() -> None:
        await orgs.authorize(
            session=db,
            actor=actor,
            employer_id=organization_id,
            data=AuthorizationCreate.model_validate(
                {
                    "agency_id": _id(data.agency_id, "agency_id"),
                    "document_ref": data.document_ref.strip(),
                    "valid_from": data.valid_from.strip() or None,
                    "valid_until": data.valid_until.strip() or None,
                }
            ),
        )

    return await _act(request, db, actor, organization_id, action, "authorized")


@post(
    "/organizations/{organization_id:int}/members", guards=[requires_login], include_in_schema=False
)
async def organization_add_member(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    organization_id: RowId,
    data: URLEncodedBody[MemberForm],
) -> Response[Any] | Template:
    async def action() -> None:
        await orgs.add_member(
            session=db,
            actor=actor,
            organization_id=organization_id,
            data=MemberAdd(user_id=_id(data.user_id, "user_id")),
        )

    return await _act(request, db, actor, organization_id, action, "member")
