"""The caller's inbox: read messages, mark one or all read (HTMX)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from marketplace.notifications import service as inbox
from marketplace.notifications.models import Notification
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging, RowId
from web.pages.base import is_htmx, render


@get("/inbox", guards=[requires_login], include_in_schema=False)
async def inbox_page(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, page: Paging
) -> Template:
    assert actor.user_id is not None
    notes, total = await inbox.inbox(
        session=db, user_id=actor.user_id, limit=page.limit, offset=page.offset
    )
    return await render(request, db, "inbox/list.html", notes=notes, total=total, page=page)


@post("/inbox/{notification_id:int}/read", guards=[requires_login], include_in_schema=False)
async def inbox_mark_read(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, notification_id: RowId
) -> Response[Any] | Template:
    assert actor.user_id is not None
    await inbox.mark_read(session=db, user_id=actor.user_id, notification_id=notification_id)
    if not is_htmx(request):
        return Redirect("/inbox", status_code=HTTP_303_SEE_OTHER)
    # mark_read has checked ownership; reload past the identity map's stale copy.
    note = await db.get(Notification, notification_id, populate_existing=True)
    return await render(request, db, "inbox/_message.html", note=note, oob=True)


@post("/inbox/read-all", guards=[requires_login], include_in_schema=False)
async def inbox_mark_all_read(
    request: Request[Any, Any, Any], db: Db, actor: CurrentActor, page: Paging
) -> Response[Any] | Template:
    assert actor.user_id is not None
    await inbox.mark_read(session=db, user_id=actor.user_id, notification_id=None)
    if not is_htmx(request):
        return Redirect("/inbox", status_code=HTTP_303_SEE_OTHER)
    notes, total = await inbox.inbox(
        session=db, user_id=actor.user_id, limit=page.limit, offset=page.offset
    )
    return await render(
        request, db, "inbox/_messages.html", notes=notes, total=total, page=page, oob=True
    )
