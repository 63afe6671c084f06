"""What every page handler shares: the layout context and the login guard."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.notifications import service as inbox
from web.auth import Principal


async def render(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    name: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """Render a page with the header's user and unread count filled in."""
    principal = request.scope.get("user")
    unread = 0
    if isinstance(principal, Principal) and principal.user.id is not None:
        unread = await inbox.unread_count(session=db, user_id=principal.user.id)
    return Template(
        name,
        context={
            "me": principal.user if isinstance(principal, Principal) else None,
            "unread": unread,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )
