"""The home page's messages: the newest five, how many in all, and the unread count in
the header badge and the inbox tile (counted together in one query)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlmodel import col

from marketplace.clock import utcnow
from marketplace.db import unit_of_work
from marketplace.notifications import service as inbox
from marketplace.notifications.models import Notification
from tests.web.test_pages import VILLAGE, page_login

Client = AsyncTestClient[Litestar]


async def test_home_shows_the_newest_messages_and_what_is_unread(
    client: Client, make_account: Any, sessions: Any
) -> None:
    broker = await make_account("broker", VILLAGE)
    await page_login(client, broker)
    empty = (await client.get("/")).text
    assert "最新消息" not in empty
    assert 'id="unread-count" hidden>0<' in empty
    assert "没有未读消息" in empty

    async with unit_of_work(sessions) as session:
        for n in range(1, 8):
            await inbox.send(session=session, user_id=broker.id, title=f"第{n}条通知")
    async with unit_of_work(sessions) as session:  # the two oldest were read
        await session.execute(
            update(Notification)
            .where(col(Notification.title).in_(["第1条通知", "第2条通知"]))
            .values(read_at=utcnow())
        )
    page = (await client.get("/")).text
    assert "最新消息" in page
    assert [n for n in range(1, 8) if f"第{n}条通知" in page] == [3, 4, 5, 6, 7]
    assert "共 7 条" in page
    assert 'id="unread-count">5<' in page
    assert "5 条未读" in page
