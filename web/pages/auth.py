"""Login (password, then the TOTP step or enrolment), and logout, for browsers."""

from __future__ import annotations

import hashlib
import hmac
import time
from io import BytesIO
from typing import Any

import segno
from litestar import Request, Response, get, post
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from pydantic import BaseModel

from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.errors import DomainError
from web.auth import SESSION_COOKIE, Principal, client_ip
from web.deps import Cipher, Db
from web.pages.base import render

PENDING_SECONDS = 300


class LoginForm(BaseModel):
    username: str = ""
    password: str = ""
    next: str = "/"


class SecondStepForm(BaseModel):
    pending: str = ""
    otp: str = ""
    next: str = "/"


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def pending_token(secret: str, user: User) -> str:
    """Proof that the password step passed, for five minutes, for this password."""
    payload = f"{user.id}.{int(time.time()) + PENDING_SECONDS}.{user.password_hash[-16:]}"
    return f"{payload}.{_sign(secret, payload)}"


async def _pending_user(secret: str, token: str, db: Db) -> User | None:
    payload, _, signature = token.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 3 or not hmac.compare_digest(_sign(secret, payload), signature):
        return None
    user_id, expires, fragment = parts
    if not user_id.isdigit() or not expires.isdigit() or int(expires) < time.time():
        return None
    user = await db.get(User, int(user_id))
    if user is None or user.password_hash[-16:] != fragment:
        return None
    return user


def qr_svg(uri: str) -> str:
    buffer = BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False, svgns=True)
    return buffer.getvalue().decode()


def _with_session(target: str, token: str, secure: bool) -> Response[Any]:
    response = Redirect(_safe_next(target))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
        max_age=12 * 3600,
    )
    return response


@get("/login", name="login", include_in_schema=False)
async def login_page(
    request: Request[Any, Any, Any], db: Db, next: FromQuery[str] = "/"
) -> Template:
    return await render(request, db, "auth/login.html", next=_safe_next(next), error=None)


@post("/login", include_in_schema=False)
async def login_submit(
    request: Request[Any, Any, Any],
    db: Db,
    cipher: Cipher,
    data: URLEncodedBody[LoginForm],
) -> Response[Any] | Template:
    settings = request.app.state.settings
    try:
        user = await accounts.check_password_step(
            session=db,
            username=data.username.strip(),
            password=data.password,
            ip=client_ip(request.scope),
        )
        if accounts.needs_second_factor(user):
            return await _second_step(request, db, cipher, user, data.next, error=None)
        done = await accounts.finish_login(
            session=db,
            user=user,
            otp=None,
            kind="cookie",
            ip=client_ip(request.scope),
            cipher=cipher,
        )
    except DomainError as exc:
        # Returning (not raising) lets the request commit the failure count and audit entry.
        return await render(
            request,
            db,
            "auth/login.html",
            status_code=exc.status,
            next=data.next,
            error=exc.message,
            username=data.username,
        )
    return _with_session(data.next, done.token, settings.security.secure_cookies)


async def _second_step(
    request: Request[Any, Any, Any],
    db: Db,
    cipher: Cipher,
    user: User,
    next_url: str,
    error: str | None,
    status_code: int = 200,
) -> Template:
    enrol = None
    if user.totp_secret_enc is None or not user.totp_confirmed:
        uri, secret = await accounts.start_totp_enrolment(
            session=db, user=user, ip=client_ip(request.scope), cipher=cipher
        )
        enrol = {"uri": uri, "secret": secret, "qr": qr_svg(uri)}
    return await render(
        request,
        db,
        "auth/otp.html",
        status_code=status_code,
        next=next_url,
        error=error,
        pending=pending_token(request.app.state.settings.security.secret_key, user),
        enrol=enrol,
    )


@post("/login/otp", include_in_schema=False)
async def otp_submit(
    request: Request[Any, Any, Any],
    db: Db,
    cipher: Cipher,
    data: URLEncodedBody[SecondStepForm],
) -> Response[Any] | Template:
    settings = request.app.state.settings
    user = await _pending_user(settings.security.secret_key, data.pending, db)
    if user is None:
        return await render(
            request,
            db,
            "auth/login.html",
            status_code=401,
            next=data.next,
            error="登录步骤已过期，请重新输入用户名和密码",
        )
    try:
        done = await accounts.finish_login(
            session=db,
            user=user,
            otp=data.otp,
            kind="cookie",
            ip=client_ip(request.scope),
            cipher=cipher,
        )
    except DomainError as exc:
        # Returning (not raising) lets the request commit the failure count and audit entry.
        return await render(
            request,
            db,
            "auth/otp.html",
            status_code=exc.status,
            next=data.next,
            error=exc.message,
            pending=data.pending,
            enrol=None,
        )
    return _with_session(data.next, done.token, settings.security.secure_cookies)


@post("/logout", include_in_schema=False)
async def logout_submit(request: Request[Any, Any, Any], db: Db) -> Response[Any]:
    principal = request.scope.get("user")
    if isinstance(principal, Principal) and principal.auth.id is not None:
        await accounts.logout(session=db, actor=principal.actor, auth_id=principal.auth.id)
    response = Redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
