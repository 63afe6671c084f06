"""Authentication (cookie for pages, bearer token for the API) and the guards.

The middleware only resolves who is calling; guards decide. Authorisation rules
themselves live in ``marketplace.access``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy.exc import OperationalError

from marketplace.access import Actor
from marketplace.accounts import service as accounts
from marketplace.accounts.models import AuthSession, User
from marketplace.db import unit_of_work
from marketplace.errors import Unauthenticated
from web import proxies

log = logging.getLogger(__name__)
SESSION_COOKIE = "laowu_session"
API_PREFIX = "/api/"


@dataclass(frozen=True)
class Principal:
    user: User
    actor: Actor
    auth: AuthSession


def client_ip(scope: Scope) -> str | None:
    """The caller's address, through a trusted proxy too (web/proxies.py)."""
    return proxies.client_ip(scope)


def _credentials(scope: Scope) -> tuple[str, str] | None:
    """(kind, token): the API takes only bearer tokens, pages only the cookie,
    so an API call can never ride on a browser's ambient cookie (no CSRF there)."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    if scope["path"].startswith(API_PREFIX):
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        return ("bearer", token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return "cookie", value
    return None


class AuthMiddleware(ASGIMiddleware):
    """Put the calling ``Principal`` (or None) into ``scope['user']``."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["user"] = None
        scope["auth"] = None
        creds = _credentials(scope) if scope["type"] == "http" else None
        if creds is not None:
            state = scope["litestar_app"].state
            kind, token = creds
            try:
                async with state.sessions() as session:
                    resolved = await accounts.resolve(session=session, token=token, kind=kind)
            except Unauthenticated as exc:
                scope["auth_error"] = exc.message  # type: ignore[typeddict-unknown-key]
            else:
                if resolved.needs_touch and resolved.auth.id is not None:
                    await _touch(state, resolved.auth.id, resolved.user.id)
                user = resolved.user
                scope["user"] = Principal(
                    user=user,
                    actor=accounts.actor_for(user, ip=client_ip(scope)),
                    auth=resolved.auth,
                )
                scope["auth"] = resolved.auth
        await next_app(scope, receive, send)


async def _touch(state: Any, auth_id: int, user_id: int | None) -> None:
    """Bookkeeping (idle timeout, the day's activity), not the caller's request: when
    the database cannot take the write now (SQLite busy past its timeout under load),
    the request goes on and the next one touches again."""
    try:
        async with unit_of_work(state.sessions) as session:
            await accounts.touch(session=session, auth_id=auth_id, user_id=user_id)
    except OperationalError as exc:
        log.warning("session touch deferred: %s", exc.orig if exc.orig is not None else exc)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException(connection.scope.get("auth_error") or "请先登录")
    return user


def requires_login(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    principal_of(connection)
