"""Outbox handlers that tell brokers, in their inbox, what happened to their record.

Applicants have no account before certification: their decisions are shown on the
public status page (tracking code + phone) from the decision history instead.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.brokers import rules
from marketplace.brokers.models import Broker
from marketplace.events import OutboxEvent
from marketplace.notifications import service as notifications


async def on_broker_certified(session: AsyncSession, event: OutboxEvent) -> None:
    broker = await session.get(Broker, int(event.payload["broker_id"]))
    if broker is None or broker.user_id is None:
        return
    await notifications.send(
        session=session,
        user_id=broker.user_id,
        title="您已通过认证，成为劳务经纪人",
        body=(
            f"经纪人编号 {broker.broker_no}。请在首次登录后修改初始密码，"
            "并到“我的档案”核对服务的村（社区）。"
        ),
        link=f"/brokers/{broker.id}",
        source_event_id=event.id,
    )


async def on_broker_status_changed(session: AsyncSession, event: OutboxEvent) -> None:
    broker = await session.get(Broker, int(event.payload["broker_id"]))
    if broker is None or broker.user_id is None:
        return
    new = str(event.payload["new_status"])
    label = rules.BROKER_STATUS_LABELS.get(new, new)
    await notifications.send(
        session=session,
        user_id=broker.user_id,
        title=f"您的经纪人状态已变更为“{label}”",
        body=f"原因：{event.payload.get('reason') or '（未填写）'}。如有异议，请联系所在区县人力社保局。",
        link=f"/brokers/{broker.id}",
        source_event_id=event.id,
    )


HANDLERS = {
    "broker.certified": on_broker_certified,
    "broker.status_changed": on_broker_status_changed,
}
