"""The audit log view for auditors, and the hash-chain check."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import Template

from marketplace.access import require
from marketplace.audit import service as audit
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging
from web.pages.base import is_htmx, render


@get("/audit", guards=[requires_login], include_in_schema=False)
async def audit_page(
    request: Request[Any, Any, Any],
    db: Db,
    actor: CurrentActor,
    page: Paging,
    action: Annotated[str | None, QueryParameter(max_length=64)] = None,
) -> Template:
    require(actor, "audit.view")
    rows, total = await audit.list_entries(
        session=db,
        region_prefix=actor.region_code,
        limit=page.limit,
        offset=page.offset,
        action=action or None,
    )
    return await render(
        request,
        db,
        "audit/list.html",
        rows=rows,
        total=total,
        page=page,
        action=action or "",
        query={"action": action} if action else {},
    )


@get("/audit/verify", guards=[requires_login], include_in_schema=False)
async def audit_verify(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    """The result alone for HTMX; a whole page when scripts are off."""
    require(actor, "audit.view")
    result = await audit.verify(session=db)
    name = "audit/_verify.html" if is_htmx(request) else "audit/verify.html"
    return await render(request, db, name, result=result)
