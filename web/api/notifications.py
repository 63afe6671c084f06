"""The caller's own inbox."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.params import FromQuery
from litestar.status_codes import HTTP_200_OK
from pydantic import BaseModel

from marketplace.notifications import service as inbox
from marketplace.notifications.models import NotificationPublic
from web.api.schemas import Paged
from web.auth import requires_login
from web.deps import CurrentActor, Db, Paging, RowId


class Marked(BaseModel):
    marked: int
    unread: int


class NotificationsController(Controller):
    path = "/api/v1/notifications"
    tags = ["消息"]
    guards = [requires_login]

    @get("/")
    async def list_notifications(
        self, db: Db, actor: CurrentActor, page: Paging, unread: FromQuery[bool] = False
    ) -> Paged[NotificationPublic]:
        assert actor.user_id is not None
        rows, total = await inbox.inbox(
            session=db,
            user_id=actor.user_id,
            limit=page.limit,
            offset=page.offset,
            unread_only=unread,
        )
        return Paged(
            items=[NotificationPublic.model_validate(r, from_attributes=True) for r in rows],
            total=total,
        )

    @post("/{notification_id:int}/read", status_code=HTTP_200_OK)
    async def mark_read(self, db: Db, actor: CurrentActor, notification_id: RowId) -> Marked:
        assert actor.user_id is not None
        marked = await inbox.mark_read(
            session=db, user_id=actor.user_id, notification_id=notification_id
        )
        return Marked(
            marked=marked, unread=await inbox.unread_count(session=db, user_id=actor.user_id)
        )

    @post("/read-all", status_code=HTTP_200_OK)
    async def mark_all_read(self, db: Db, actor: CurrentActor) -> Marked:
        assert actor.user_id is not None
        marked = await inbox.mark_read(session=db, user_id=actor.user_id, notification_id=None)
        return Marked(marked=marked, unread=0)
