"""Sending and reading inbox messages, and the outbox handlers that feed the inbox."""

from __future__ import annotations

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from marketplace.clock import utcnow
from marketplace.db import fetch_page
from marketplace.errors import NotFound
from marketplace.events import OutboxEvent
from marketplace.notifications.models import Notification


async def send(
    *,
    session: AsyncSession,
    user_id: int,
    title: str,
    body: str = "",
    link: str | None = None,
    source_event_id: int | None = None,
) -> Notification | None:
    """Add a message; a second send for the same user and event is a no-op."""
    if source_event_id is not None:
        existing = (
            await session.execute(
                select(col(Notification.id)).where(
                    col(Notification.user_id) == user_id,
                    col(Notification.source_event_id) == source_event_id,
                )
            )
        ).first()
        if existing is not None:
            return None
    note = Notification(
        user_id=user_id, title=title, body=body, link=link, source_event_id=source_event_id
    )
    session.add(note)
    await session.flush()
    return note


# Every signed-in page shows the unread count, and the home page the newest messages:
# these statements are built once (docs/operations.md, "Statements built once").
_UNREAD = (
    select(func.count())
    .select_from(Notification)
    .where(col(Notification.user_id) == bindparam("user_id"), col(Notification.read_at).is_(None))
)
_COUNTS = select(
    func.count(),
    func.coalesce(func.sum(case((col(Notification.read_at).is_(None), 1), else_=0)), 0),
).where(col(Notification.user_id) == bindparam("user_id"))
_RECENT = (
    select(Notification)
    .where(col(Notification.user_id) == bindparam("user_id"))
    .order_by(col(Notification.id).desc())
    .limit(bindparam("limit"))
)


async def unread_count(*, session: AsyncSession, user_id: int) -> int:
    return (await session.execute(_UNREAD, {"user_id": user_id})).scalar_one()


async def counts(*, session: AsyncSession, user_id: int) -> tuple[int, int]:
    """How many messages the user has, and how many of them are unread: one query."""
    total, unread = (await session.execute(_COUNTS, {"user_id": user_id})).one()
    return int(total), int(unread)


async def recent(*, session: AsyncSession, user_id: int, limit: int) -> list[Notification]:
    """The user's newest messages, without counting them (``counts``)."""
    rows = await session.execute(_RECENT, {"user_id": user_id, "limit": limit})
    return list(rows.scalars())


async def inbox(
    *, session: AsyncSession, user_id: int, limit: int, offset: int, unread_only: bool = False
) -> tuple[list[Notification], int]:
    where = [col(Notification.user_id) == user_id]
    if unread_only:
        where.append(col(Notification.read_at).is_(None))
    return await fetch_page(
        session,
        Notification,
        where,
        order_by=col(Notification.id).desc(),
        limit=limit,
        offset=offset,
    )


async def mark_read(*, session: AsyncSession, user_id: int, notification_id: int | None) -> int:
    """Mark one message (or, with ``None``, all) read; only the owner's messages."""
    stmt = update(Notification).where(
        col(Notification.user_id) == user_id, col(Notification.read_at).is_(None)
    )
    if notification_id is not None:
        note = await session.get(Notification, notification_id)
        if note is None or note.user_id != user_id:
            raise NotFound("消息不存在", field="id")
        stmt = stmt.where(col(Notification.id) == notification_id)
    result = await session.execute(stmt.values(read_at=utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


# Outbox handlers: each event a user should hear about becomes one inbox message.


async def on_user_created(session: AsyncSession, event: OutboxEvent) -> None:
    await send(
        session=session,
        user_id=int(event.payload["user_id"]),
        title="欢迎使用劳务经纪人服务平台",
        body="您的账号已开通。请妥善保管密码；如未本人操作，请联系所在区县人力社保局。",
        link="/",
        source_event_id=event.id,
    )


async def on_account_locked(session: AsyncSession, event: OutboxEvent) -> None:
    await send(
        session=session,
        user_id=int(event.payload["user_id"]),
        title="账号因多次登录失败已临时锁定",
        body="连续 5 次密码错误，账号锁定 15 分钟。如非本人操作，请尽快修改密码并联系管理员。",
        source_event_id=event.id,
    )


async def on_password_changed(session: AsyncSession, event: OutboxEvent) -> None:
    await send(
        session=session,
        user_id=int(event.payload["user_id"]),
        title="您的密码已修改",
        body="其他设备上的登录已全部退出。如非本人操作，请立即联系管理员。",
        source_event_id=event.id,
    )


HANDLERS = {
    "user.created": on_user_created,
    "account.locked": on_account_locked,
    "user.password_changed": on_password_changed,
}
