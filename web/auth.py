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
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.access import Actor
from marketplace.accounts import service as accounts
from marketplace.accounts.models import AuthSession, User
from marketplace.db import unit_of_work
from marketplace.errors import Unauthenticated
from web import proxies

log = logging.getLogger(__name__)
SESSION_COOKIE = "laowu_session"
API_PREFIX = "/api/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    """Put the calling ``Principal`` (or None) into ``scope['user']``.

    A read (GET, HEAD, OPTIONS) that carries credentials keeps the session that looked
    the caller up for the handler (``scope['laowu_db']``, given out by
    ``web.deps.provide_db``): one database session and transaction per request instead
    of two. It is closed once the response has been sent. A write looks the caller up
    in a session of its own and the handler opens its ``BEGIN IMMEDIATE`` one: on
    SQLite a read transaction must not turn into a writer (docs/operations.md).
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        scope["user"] = None
        scope["auth"] = None
        creds = _credentials(scope) if scope["type"] == "http" else None
        if creds is None:
            await next_app(scope, receive, send)
            return
        state = scope["litestar_app"].state
        if scope.get("method") in SAFE_METHODS:
            async with state.sessions() as session:
                scope["laowu_db"] = session  # type: ignore[typeddict-unknown-key]
                await _authenticate(scope, state, session, creds)
                await next_app(scope, receive, send)
            return
        async with state.sessions() as session:
            await _authenticate(scope, state, session, creds)
        await next_app(scope, receive, send)


def request_session(scope: Scope) -> AsyncSession | None:
    """The session the middleware opened for this read request, if it did."""
    session = scope.get("laowu_db")
    return session if isinstance(session, AsyncSession) else None


async def _authenticate(
    scope: Scope, state: Any, session: AsyncSession, creds: tuple[str, str]
) -> None:
    kind, token = creds
    try:
        resolved = await accounts.resolve(session=session, token=token, kind=kind)
    except Unauthenticated as exc:
        scope["auth_error"] = exc.message  # type: ignore[typeddict-unknown-key]
        return
    if resolved.needs_touch and resolved.auth.id is not None:
        # End the lookup's transaction first: the touch takes a connection of its own,
        # and a request must never hold one connection while it waits for a second
        # (a full PostgreSQL pool would wait on itself). The handler's queries then
        # start a new transaction in the same session.
        await session.commit()
        await _touch(state, resolved.auth.id, resolved.user.id)
    user = resolved.user
    scope["user"] = Principal(
        user=user, actor=accounts.actor_for(user, ip=client_ip(scope)), auth=resolved.auth
    )
    scope["auth"] = resolved.auth


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


async def requires_login(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Guards are ``async def`` though they never wait: Litestar runs a plain ``def``
    guard in its thread pool, a thread hand-off on every request."""
    principal_of(connection)
