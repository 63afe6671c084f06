"""User management for administrators: list, create, edit."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.params import FromQuery, QueryParameter, URLEncodedBody
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.access import MANAGEABLE_ROLES, Actor, Role, require
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User, UserCreate, UserUpdate
from marketplace.errors import DomainError
from web.auth import requires_login
from web.deps import Cipher, CurrentActor, Db, Paging, RowId
from web.pages.base import field_errors, refuse_in_form, render


class CreateForm(BaseModel):
    username: str = ""
    display_name: str = ""
    role: str = ""
    region_code: str = ""
    password: str = ""


class EditForm(BaseModel):
    display_name: str = ""
    role: str = ""
    region_code: str = ""
    is_active: str = ""  # "1" or "0"; absent for one's own account
    reset_totp: str = ""  # checkbox: "1" when ticked
    password: str = ""


def _manageable(actor: Actor) -> list[str]:
    roles = MANAGEABLE_ROLES.get(Role(actor.role), frozenset())
    return [role.value for role in Role if role in roles]


@get("/users", guards=[requires_login], include_in_schema=False)
async def users_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    role: Annotated[str | None, QueryParameter(max_length=32)] = None,
    region_code: Annotated[str | None, QueryParameter(max_length=12)] = None,
) -> Template:
    users, total = await accounts.list_users(
        session=db,
        actor=actor,
        limit=page.limit,
        offset=page.offset,
        role=role or None,
        region_code=(region_code or "").strip() or None,
    )
    query = {k: v for k, v in (("role", role), ("region_code", region_code)) if v}
    return await render(
        request,
        db,
        "users/list.html",
        users=users,
        total=total,
        page=page,
        query=query,
        role=role or "",
        region_code=region_code or "",
    )


@get("/users/new", guards=[requires_login], include_in_schema=False)
async def user_new(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    require(actor, "user.create")
    form = CreateForm(region_code=actor.region_code)
    return await _create_form(request, db, actor, form, {})


async def _create_form(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    form: CreateForm,
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    return await render(
        request,
        db,
        "users/new.html",
        status_code=status_code,
        form=form,
        errors=errors,
        roles=_manageable(actor),
    )


@post("/users", guards=[requires_login], include_in_schema=False)
async def user_create(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    cipher: Cipher,
    data: URLEncodedBody[CreateForm],
) -> Response[Any] | Template:
    try:
        create = UserCreate(
            username=data.username.strip(),
            display_name=data.display_name.strip(),
            role=data.role,
            region_code=data.region_code.strip(),
            password=data.password,
        )
    except ValidationError as exc:
        await refuse_in_form(request, db, 422)
        return await _create_form(request, db, actor, data, field_errors(exc), 422)
    try:
        user, _ = await accounts.create_user(session=db, actor=actor, data=create, cipher=cipher)
    except DomainError as exc:
        errors = await refuse_in_form(request, db, exc)
        return await _create_form(request, db, actor, data, errors, exc.status)
    return Redirect(f"/users/{user.id}?created=1", status_code=HTTP_303_SEE_OTHER)


async def _edit_form(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    actor: Actor,
    user: User,
    *,
    form: EditForm | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    form = form or EditForm(
        display_name=user.display_name,
        role=user.role,
        region_code=user.region_code,
        is_active="1" if user.is_active else "0",
    )
    roles = _manageable(actor)
    if user.role not in roles:
        roles = [user.role, *roles]
    return await render(
        request,
        db,
        "users/edit.html",
        status_code=status_code,
        user=user,
        form=form,
        errors=errors or {},
        notice=notice,
        roles=roles,
        is_self=user.id == actor.user_id,
    )


@get("/users/{user_id:int}", guards=[requires_login], include_in_schema=False)
async def user_edit(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    user_id: RowId,
    created: FromQuery[bool] = False,
    saved: FromQuery[bool] = False,
) -> Template:
    require(actor, "user.view")
    user = await accounts.get_user(session=db, actor=actor, user_id=user_id)
    notice = "账号已创建。" if created else ("已保存。" if saved else None)
    return await _edit_form(request, db, actor, user, notice=notice)


def _changes(user: User, data: EditForm) -> UserUpdate:
    """Only what the form changed: an unchanged role or region is not a request to
    set it (one may not set one's own, even to the same value)."""
    changes: dict[str, Any] = {}
    if data.display_name.strip() != user.display_name:
        changes["display_name"] = data.display_name.strip()
    if data.role and data.role != user.role:
        changes["role"] = data.role
    if data.region_code.strip() and data.region_code.strip() != user.region_code:
        changes["region_code"] = data.region_code.strip()
    if data.is_active in ("0", "1") and (data.is_active == "1") != user.is_active:
        changes["is_active"] = data.is_active == "1"
    if data.reset_totp == "1":
        changes["reset_totp"] = True
    if data.password:
        changes["password"] = data.password
    return UserUpdate(**changes)


@post("/users/{user_id:int}", guards=[requires_login], include_in_schema=False)
async def user_update(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    user_id: RowId,
    data: URLEncodedBody[EditForm],
) -> Response[Any] | Template:
    require(actor, "user.update")
    user = await accounts.get_user(session=db, actor=actor, user_id=user_id)
    try:
        changes = _changes(user, data)
        await accounts.update_user(session=db, actor=actor, user_id=user_id, data=changes)
    except ValidationError as exc:
        errors, status = field_errors(exc), 422
    except DomainError as exc:
        errors, status = {exc.field or "_": exc.message}, exc.status
    else:
        return Redirect(f"/users/{user_id}?saved=1", status_code=HTTP_303_SEE_OTHER)
    await refuse_in_form(request, db, status)
    # The rollback expired the account; read it again as it is stored.
    user = await accounts.get_user(session=db, actor=actor, user_id=user_id)
    return await _edit_form(request, db, actor, user, form=data, errors=errors, status_code=status)
