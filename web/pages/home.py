"""The home page: what each role does first."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from marketplace.access import can
from marketplace.notifications import service as inbox
from marketplace.regions import service as regions
from web.auth import requires_login
from web.deps import CurrentActor, Db
from web.pages.base import render

# How many children with the largest shortfall the dashboard lists.
WORST_CHILDREN = 5
RECENT_MESSAGES = 5


@get("/", guards=[requires_login], include_in_schema=False)
async def home(request: Request[Any, Any, Any], db: Db, actor: CurrentActor) -> Template:
    region = await regions.get(session=db, code=actor.region_code)
    context: dict[str, Any] = {"region": region, "cov": None, "worst": [], "village": None}
    if can(actor, "coverage.view", region_code=actor.region_code):
        cov = await regions.coverage(session=db, code=actor.region_code)
        context["cov"] = cov
        # Presentation only: the children most in need of brokers, first.
        short = [child for child in cov.children if child.shortfall]
        context["worst"] = sorted(short, key=lambda c: (-c.shortfall, c.code))[:WORST_CHILDREN]
    if actor.role == "broker":
        context["village"] = await regions.public(session=db, code=actor.region_code)
    unread = None
    if actor.user_id is not None:
        # The messages and the header's unread count, counted in one query.
        total, unread = await inbox.counts(session=db, user_id=actor.user_id)
        context["message_total"] = total
        context["messages"] = (
            await inbox.recent(session=db, user_id=actor.user_id, limit=RECENT_MESSAGES)
            if total
            else []
        )
    context["can_manage_users"] = can(actor, "user.view")
    context["can_audit"] = can(actor, "audit.view")
    return await render(request, db, "home.html", unread=unread, **context)
