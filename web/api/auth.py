"""Logging in and out over the API, the second factor, and the caller's own account."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from pydantic import BaseModel, Field

from marketplace.accounts import service as accounts
from marketplace.accounts.models import (
    LoginRequest,
    LoginResponse,
    TotpEnrolRequest,
    TotpEnrolResponse,
    UserPublic,
)
from web.auth import client_ip, requires_login
from web.deps import Cipher, CurrentPrincipal, Db


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(max_length=256)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["认证"]

    @post("/login", status_code=HTTP_200_OK)
    async def login(
        self, request: Request[Any, Any, Any], db: Db, cipher: Cipher, data: JSONBody[LoginRequest]
    ) -> LoginResponse:
        """用户名、密码（及管理、财务、审计角色的动态验证码）换取 API 令牌。"""
        done = await accounts.login(
            session=db,
            username=data.username,
            password=data.password,
            otp=data.otp,
            kind="bearer",
            ip=client_ip(request.scope),
            cipher=cipher,
        )
        return LoginResponse(
            access_token=done.token,
            expires_in=accounts.seconds_left(done.auth),
            user=accounts.to_public(done.user),
        )

    @post("/totp/enrol", status_code=HTTP_200_OK)
    async def enrol_totp(
        self,
        request: Request[Any, Any, Any],
        db: Db,
        cipher: Cipher,
        data: JSONBody[TotpEnrolRequest],
    ) -> TotpEnrolResponse:
        """首次登录绑定动态验证码：返回 otpauth URI，用第一个验证码登录即完成绑定。"""
        uri, secret = await accounts.enrol_totp(
            session=db,
            username=data.username,
            password=data.password,
            ip=client_ip(request.scope),
            cipher=cipher,
        )
        return TotpEnrolResponse(otpauth_uri=uri, secret=secret)

    @post("/logout", status_code=HTTP_204_NO_CONTENT, guards=[requires_login])
    async def logout(self, db: Db, principal: CurrentPrincipal) -> None:
        assert principal.auth.id is not None
        await accounts.logout(session=db, actor=principal.actor, auth_id=principal.auth.id)


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["认证"]
    guards = [requires_login]

    @get("/")
    async def me(self, principal: CurrentPrincipal) -> UserPublic:
        return accounts.to_public(principal.user)

    @post("/password", status_code=HTTP_204_NO_CONTENT)
    async def change_password(
        self, db: Db, principal: CurrentPrincipal, data: JSONBody[PasswordChange]
    ) -> None:
        """修改本人密码；其他设备上的登录随即失效。"""
        await accounts.change_own_password(
            session=db,
            actor=principal.actor,
            current=data.current_password,
            new=data.new_password,
            keep_token_hash=principal.auth.token_hash,
        )
