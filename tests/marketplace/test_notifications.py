"""The in-app inbox: fed by outbox events, read by its owner only."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from marketplace.db import unit_of_work
from marketplace.dispatcher import drain
from marketplace.errors import NotFound
from marketplace.events import OutboxDelivery, OutboxEvent, emit
from marketplace.notifications import service as inbox
from marketplace.notifications.models import Notification
from tests.conftest import WUXI, YUZHONG
from web.wiring import build_registry

Sessions = async_sessionmaker[AsyncSession]
VILLAGE = "500103001003"
WELCOME = "欢迎使用劳务经纪人服务平台"


async def _messages(sessions: Sessions, user_id: int) -> list[Notification]:
    async with sessions() as session:
        rows, _ = await inbox.inbox(session=session, user_id=user_id, limit=50, offset=0)
        return rows


async def _unread(sessions: Sessions, user_id: int) -> int:
    async with sessions() as session:
        return await inbox.unread_count(session=session, user_id=user_id)


async def test_new_account_gets_a_welcome_through_the_outbox(
    sessions: Sessions, make_account
) -> None:
    account = await make_account("broker", VILLAGE)
    assert await _messages(sessions, account.id) == []  # not before the dispatcher runs
    report = await drain(sessions, build_registry())
    assert report.delivered >= 1
    messages = await _messages(sessions, account.id)
    assert [m.title for m in messages] == [WELCOME]
    assert messages[0].source_event_id is not None
    assert messages[0].read_at is None
    assert await _unread(sessions, account.id) == 1


async def test_redelivery_does_not_duplicate(sessions: Sessions, make_account) -> None:
    account = await make_account("employer", YUZHONG)
    await drain(sessions, build_registry())
    # Pretend the dispatcher died after the handler ran but before it recorded that:
    # the event is open again and has no delivery row.
    async with unit_of_work(sessions) as session:
        await session.execute(update(OutboxEvent).values(processed_at=None))
        await session.execute(OutboxDelivery.__table__.delete())  # type: ignore[attr-defined]
    report = await drain(sessions, build_registry())
    assert report.delivered >= 1
    assert [m.title for m in await _messages(sessions, account.id)] == [WELCOME]


async def test_send_for_the_same_event_twice_is_a_no_op(sessions: Sessions, make_account) -> None:
    account = await make_account("agency", YUZHONG)
    async with unit_of_work(sessions) as session:
        event = await emit(session, "user.created", {"user_id": account.id})
        await inbox.on_user_created(session, event)
        await inbox.on_user_created(session, event)
        again = await inbox.send(
            session=session, user_id=account.id, title="x", source_event_id=event.id
        )
    assert again is None
    async with sessions() as session:
        count = (
            await session.execute(
                select(func.count())
                .select_from(Notification)
                .where(col(Notification.source_event_id) == event.id)
            )
        ).scalar_one()
    assert count == 1


async def test_lock_and_password_events_reach_the_inbox(sessions: Sessions, make_account) -> None:
    account = await make_account("broker", VILLAGE)
    async with unit_of_work(sessions) as session:
        await emit(session, "account.locked", {"user_id": account.id})
        await emit(session, "user.password_changed", {"user_id": account.id})
    await drain(sessions, build_registry())
    titles = [m.title for m in await _messages(sessions, account.id)]
    assert titles == ["您的密码已修改", "账号因多次登录失败已临时锁定", WELCOME]  # newest first


async def test_mark_read_own_only(sessions: Sessions, make_account) -> None:
    mine = await make_account("broker", VILLAGE)
    theirs = await make_account("employer", WUXI)
    async with unit_of_work(sessions) as session:
        first = await inbox.send(session=session, user_id=mine.id, title="一")
        second = await inbox.send(session=session, user_id=mine.id, title="二")
        other = await inbox.send(session=session, user_id=theirs.id, title="别人的")
    assert first is not None
    assert second is not None
    assert other is not None
    assert await _unread(sessions, mine.id) == 2

    async with unit_of_work(sessions) as session:
        assert (
            await inbox.mark_read(session=session, user_id=mine.id, notification_id=first.id) == 1
        )
    async with unit_of_work(sessions) as session:  # again: already read, nothing to do
        assert (
            await inbox.mark_read(session=session, user_id=mine.id, notification_id=first.id) == 0
        )
    assert await _unread(sessions, mine.id) == 1

    for foreign in (other.id, 999_999):

        async def attempt(notification_id: int | None = foreign) -> None:
            async with unit_of_work(sessions) as session:
                await inbox.mark_read(
                    session=session, user_id=mine.id, notification_id=notification_id
                )

        with pytest.raises(NotFound) as caught:
            await attempt()
        assert caught.value.field == "id"
    assert await _unread(sessions, theirs.id) == 1  # untouched

    async with unit_of_work(sessions) as session:
        assert await inbox.mark_read(session=session, user_id=mine.id, notification_id=None) == 1
    assert await _unread(sessions, mine.id) == 0
    assert await _unread(sessions, theirs.id) == 1
    async with sessions() as session:
        rows, total = await inbox.inbox(
            session=session, user_id=mine.id, limit=10, offset=0, unread_only=True
        )
    assert (rows, total) == ([], 0)


async def test_inbox_api(client, sessions: Sessions, make_account, login) -> None:
    mine = await make_account("broker", VILLAGE)
    theirs = await make_account("broker", "500103001006")
    await drain(sessions, build_registry())
    async with unit_of_work(sessions) as session:
        extra = await inbox.send(session=session, user_id=mine.id, title="新任务", link="/tasks/1")
    assert extra is not None
    headers = await login(mine)

    assert (await client.get("/api/v1/notifications")).status_code == 401
    listed = await client.get("/api/v1/notifications", headers=headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 2
    assert [item["title"] for item in body["items"]] == ["新任务", WELCOME]
    assert set(body["items"][0]) == {"id", "title", "body", "link", "created_at", "read_at"}
    page = await client.get("/api/v1/notifications?limit=1&offset=1", headers=headers)
    assert [item["title"] for item in page.json()["items"]] == [WELCOME]
    assert page.json()["total"] == 2

    read = await client.post(f"/api/v1/notifications/{extra.id}/read", headers=headers)
    assert read.status_code == 200, read.text
    assert read.json() == {"marked": 1, "unread": 1}
    unread = await client.get("/api/v1/notifications?unread=true", headers=headers)
    assert [item["title"] for item in unread.json()["items"]] == [WELCOME]

    their_messages = await _messages(sessions, theirs.id)
    foreign = await client.post(
        f"/api/v1/notifications/{their_messages[0].id}/read", headers=headers
    )
    assert foreign.status_code == 404
    assert foreign.json()["detail"]
    assert (
        await client.post("/api/v1/notifications/424242/read", headers=headers)
    ).status_code == 404
    assert await _unread(sessions, theirs.id) == 1

    read_all = await client.post("/api/v1/notifications/read-all", headers=headers)
    assert read_all.status_code == 200
    assert read_all.json() == {"marked": 1, "unread": 0}
    assert await _unread(sessions, mine.id) == 0
    assert await _unread(sessions, theirs.id) == 1
