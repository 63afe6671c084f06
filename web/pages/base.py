"""What every page handler shares: the layout context, HTMX detection, form errors."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace import audit
from marketplace.errors import DomainError
from marketplace.notifications import service as inbox
from web.auth import Principal
from web.errors import REFUSALS


async def render(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    name: str,
    *,
    status_code: int = 200,
    unread: int | None = None,
    **context: Any,
) -> Template:
    """Render a page with the header's user and unread count filled in (``unread``:
    the count, when the handler has read it already)."""
    principal = request.scope.get("user")
    if unread is None:
        unread = 0
        if isinstance(principal, Principal) and principal.user.id is not None:
            unread = await inbox.unread_count(session=db, user_id=principal.user.id)
    return Template(
        name,
        context={
            "me": principal.user if isinstance(principal, Principal) else None,
            "unread": unread,
            "path": request.url.path,
            "htmx": is_htmx(request),
            **context,
        },
        status_code=status_code,
    )


def render_fragment(request: Request[Any, Any, Any], name: str, **context: Any) -> Markup:
    """A part of a page rendered on its own, escaped like any page, to be kept and put
    into pages as ``{{ body }}`` (already safe, so not escaped again). It sees only
    ``context``: nothing of the visitor (no CSRF token, no signed-in user)."""
    engine = request.app.template_engine
    if engine is None:
        raise RuntimeError("no template engine configured")
    html = engine.get_template(name).render(**context)  # autoescaped, as every page
    return Markup(html)  # noqa: S704 (escaped by the template engine just above)


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


async def refuse_in_form(
    request: Request[Any, Any, Any], db: AsyncSession, exc: DomainError | int
) -> dict[str, str]:
    """Undo a failed write and audit the refusal, so the form can be shown again
    with the error beside its field (the global handler would show an error page).

    Mirrors ``web.errors.audit_refusal``, which only sees raised errors.
    """
    await db.rollback()
    status = exc if isinstance(exc, int) else exc.status
    principal = request.scope.get("user")
    if isinstance(principal, Principal):
        route = request.scope.get("path_template") or request.url.path
        params = request.scope.get("path_params") or {}
        await audit.record(
            session=db,
            actor=principal.actor,
            action=f"{request.method} {route}"[:64],
            object_type="http",
            object_id=str(next(iter(params.values()))) if params else None,
            region_code=principal.actor.region_code,
            outcome=REFUSALS.get(status, "error"),
            detail={"status": status},
        )
    return {} if isinstance(exc, int) else {exc.field or "_": exc.message}


_PYDANTIC_WORDS = {
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "string_pattern_mismatch": "只能包含字母、数字、下划线、点和连字符",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "int_parsing": "请输入整数",
    "missing": "必填",
}


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors, keyed by field, in words a user reads."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "_"
        template = _PYDANTIC_WORDS.get(error["type"])
        ctx = error.get("ctx") or {}
        try:
            message = template.format(**ctx) if template else "输入有误"
        except (KeyError, IndexError):
            message = "输入有误"
        errors.setdefault(field, message)
    return errors
